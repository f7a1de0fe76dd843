import NIOCore

/// The PROXY protocol version 2 header (HAProxy's "PROXY protocol" text,
/// section 2.2) that tells a UDP backend the real client address.
///
/// Every datagram to a backend with `proxy_protocol = "v2"` starts with it:
/// the 12-byte signature, version 2 with command PROXY, the address family
/// with transport DGRAM, the client's address and port as source and the
/// listener's as destination, then optional TLVs. The header is the same for
/// every datagram of a session, so it is built once when the session opens.
public enum ProxyProtocolHeader {
    public static let signature: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A]
    /// Version 2 (high nibble), command PROXY (low nibble).
    static let versionAndCommand: UInt8 = 0x21
    /// AF_INET or AF_INET6 (high nibble), SOCK_DGRAM (low nibble).
    static let inetDatagram: UInt8 = 0x12
    static let inet6Datagram: UInt8 = 0x22

    /// The TLV types used here (section 2.2.7), plus one from the range kept for private use.
    public enum TLVType: UInt8 {
        /// The host name the client asked for (SNI).
        case authority = 0x02
        /// TLS/DTLS facts: a client flags byte, a verify result, then sub-TLVs.
        case ssl = 0x20
        case sslVersion = 0x21
        case sslCommonName = 0x22
        case sslCipher = 0x23
        /// The PSK identity the client authenticated with (0xE0: first type for private use).
        case pskIdentity = 0xE0
    }

    /// Bits of the SSL TLV's client byte.
    static let clientSSL: UInt8 = 0x01
    static let clientCertificateConnection: UInt8 = 0x02
    static let clientCertificateSession: UInt8 = 0x04

    /// The header for one session; `destination` is the listener's address.
    /// IPv4 and IPv6 addresses together are both written as IPv6 (the IPv4
    /// one mapped, `::ffff:a.b.c.d`), as a dual-stack socket would see them.
    public static func header(
        source: SocketAddress, destination: SocketAddress, tlvs: [(type: TLVType, value: [UInt8])] = []
    ) -> [UInt8] {
        var body: [UInt8] = []
        let family: UInt8
        switch (addressBytes(source), addressBytes(destination)) {
        case (let src?, let dst?) where src.count == 4 && dst.count == 4:
            family = inetDatagram
            body = src + dst
        case (let src?, let dst?):
            family = inet6Datagram
            body = mapped(src) + mapped(dst)
        default:
            family = inetDatagram
            body = [UInt8](repeating: 0, count: 8)
        }
        for port in [source.port ?? 0, destination.port ?? 0] {
            body += [UInt8(port >> 8 & 0xFF), UInt8(port & 0xFF)]
        }
        var encodedTLVs: [UInt8] = []
        for tlv in tlvs { encodedTLVs += encode(tlv.type, tlv.value) }
        if body.count + encodedTLVs.count <= Int(UInt16.max) { body += encodedTLVs }
        return signature + [versionAndCommand, family, UInt8(body.count >> 8), UInt8(body.count & 0xFF)] + body
    }

    /// The TLVs describing a session: SNI as AUTHORITY, the DTLS facts and
    /// certificate CN in the SSL TLV, the PSK identity in a private TLV.
    public static func sessionTLVs(
        serverName: String?, pskIdentity: String?, commonName: String?, certificatePresented: Bool,
        resumed: Bool, version: String, cipher: String
    ) -> [(type: TLVType, value: [UInt8])] {
        var tlvs: [(type: TLVType, value: [UInt8])] = []
        if let serverName { tlvs.append((.authority, Array(serverName.utf8.prefix(255)))) }
        var client = clientSSL
        if certificatePresented {
            client |= clientCertificateSession
            if !resumed { client |= clientCertificateConnection }
        }
        // verify: 0 means the certificate (if any) verified; sessions only exist for verified clients.
        var ssl: [UInt8] = [client, 0, 0, 0, 0]
        ssl += encode(.sslVersion, Array(version.utf8))
        if let commonName { ssl += encode(.sslCommonName, Array(commonName.utf8.prefix(1024))) }
        ssl += encode(.sslCipher, Array(cipher.utf8))
        tlvs.append((.ssl, ssl))
        if let pskIdentity { tlvs.append((.pskIdentity, Array(pskIdentity.utf8.prefix(1024)))) }
        return tlvs
    }

    private static func encode(_ type: TLVType, _ value: [UInt8]) -> [UInt8] {
        [type.rawValue, UInt8(value.count >> 8 & 0xFF), UInt8(value.count & 0xFF)] + value
    }

    /// 4 bytes for IPv4, 16 for IPv6, in network order; nil for other sockets.
    static func addressBytes(_ address: SocketAddress) -> [UInt8]? {
        switch address {
        case .v4(let v4): return withUnsafeBytes(of: v4.address.sin_addr) { Array($0) }
        case .v6(let v6): return withUnsafeBytes(of: v6.address.sin6_addr) { Array($0) }
        case .unixDomainSocket: return nil
        }
    }

    private static func mapped(_ bytes: [UInt8]) -> [UInt8] {
        bytes.count == 16 ? bytes : [UInt8](repeating: 0, count: 10) + [0xFF, 0xFF] + bytes
    }
}
