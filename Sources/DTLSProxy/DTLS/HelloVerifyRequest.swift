/// Builds the HelloVerifyRequest the daemon answers a cookie-less ClientHello with.
public enum HelloVerifyRequest {
    /// DTLS 1.0's version number: RFC 6347 §4.2.1 has servers use it in
    /// HelloVerifyRequest whatever version they will negotiate, as OpenSSL does.
    public static let version: UInt16 = 0xFEFF

    /// The whole datagram: one record holding one HelloVerifyRequest carrying `cookie`.
    public static func datagram(cookie: [UInt8], recordSequenceNumber: UInt64) -> [UInt8] {
        precondition(cookie.count <= 255)
        let bodyLength = 3 + cookie.count
        let fragmentLength = 12 + bodyLength
        var bytes: [UInt8] = []
        bytes.reserveCapacity(DTLSRecordHeader.length + fragmentLength)
        // Record header: handshake, version, epoch 0, the ClientHello's sequence number.
        bytes.append(DTLSRecordHeader.ContentType.handshake.rawValue)
        bytes.append(UInt8(version >> 8)); bytes.append(UInt8(version & 0xFF))
        bytes.append(0); bytes.append(0)
        for shift in stride(from: 40, through: 0, by: -8) {
            bytes.append(UInt8((recordSequenceNumber >> UInt64(shift)) & 0xFF))
        }
        bytes.append(UInt8(fragmentLength >> 8)); bytes.append(UInt8(fragmentLength & 0xFF))
        // Handshake header: hello_verify_request(3), length, message_seq 0, whole fragment.
        bytes.append(3)
        appendUInt24(&bytes, bodyLength)
        bytes.append(0); bytes.append(0)
        appendUInt24(&bytes, 0)
        appendUInt24(&bytes, bodyLength)
        // Body: server_version, cookie<0..255>.
        bytes.append(UInt8(version >> 8)); bytes.append(UInt8(version & 0xFF))
        bytes.append(UInt8(cookie.count))
        bytes.append(contentsOf: cookie)
        return bytes
    }

    private static func appendUInt24(_ bytes: inout [UInt8], _ value: Int) {
        bytes.append(UInt8((value >> 16) & 0xFF))
        bytes.append(UInt8((value >> 8) & 0xFF))
        bytes.append(UInt8(value & 0xFF))
    }
}
