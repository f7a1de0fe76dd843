import NIOCore

/// One datagram between two instances of a cluster: a client's record that
/// reached the wrong instance, forwarded to the one that owns its connection
/// ID, or that instance's reply, sent back for the receiving instance to
/// deliver from its own socket (so the client keeps seeing the address it
/// sent to).
///
/// Layout (network byte order):
///
/// ```
/// "DPXC" | version 1 | kind | sender node | 0 | timestamp ms (8) | sequence (8)
/// | listener name length (1) | listener name | family 4 or 6 (1) | address (4 or 16)
/// | port (2) | the client's datagram | HMAC-SHA256 of all before, first 16 bytes
/// ```
///
/// The tag is keyed with a key derived from the cluster's shared secret, so
/// only instances holding it can make one; the timestamp bounds how stale a
/// message may be and the sender's sequence number, checked against a replay
/// window per sender (``ClusterReplayGuard``), refuses one seen before.
struct ClusterMessage: Equatable, Sendable {
    enum Kind: UInt8, Sendable {
        /// A client's datagram, from the instance that received it to the owner of its CID.
        case forward = 1
        /// The owner's datagram for the client, back to the instance that forwarded.
        case reply = 2
    }

    static let magic: [UInt8] = Array("DPXC".utf8)
    static let version: UInt8 = 1
    static let tagLength = 16
    /// Bytes before the listener name: magic, version, kind, node, reserved, timestamp, sequence.
    static let fixedHeaderLength = 24

    var kind: Kind
    var sender: UInt8
    /// Milliseconds since the Unix epoch when the sender made it.
    var timestamp: UInt64
    /// Increasing per sender (its clock in microseconds at start, then one by one).
    var sequence: UInt64
    /// The listener, by name, whose client this is: every instance runs the same listeners.
    var listener: String
    var client: SocketAddress
    var datagram: [UInt8]

    /// Why a message was refused.
    enum Failure: Error, Equatable, Sendable {
        case malformed(String)
        case badTag
    }

    /// The message with its tag, keyed by `key` (``ClusterKey``).
    func sealed(with key: ClusterKey) -> [UInt8] {
        var bytes = Self.magic + [Self.version, kind.rawValue, sender, 0]
        withUnsafeBytes(of: timestamp.bigEndian) { bytes.append(contentsOf: $0) }
        withUnsafeBytes(of: sequence.bigEndian) { bytes.append(contentsOf: $0) }
        let name = Array(listener.utf8.prefix(255))
        bytes.append(UInt8(name.count))
        bytes += name
        let address = ProxyProtocolHeader.addressBytes(client) ?? [0, 0, 0, 0]
        bytes.append(address.count == 16 ? 6 : 4)
        bytes += address
        let port = UInt16(client.port ?? 0)
        bytes += [UInt8(port >> 8), UInt8(port & 0xFF)]
        bytes += datagram
        bytes += key.tag(bytes)
        return bytes
    }

    /// Parses and authenticates `bytes`; the tag is checked before anything is believed.
    static func open(_ bytes: [UInt8], with key: ClusterKey) throws(Failure) -> ClusterMessage {
        guard bytes.count >= fixedHeaderLength + 1 + 1 + 4 + 2 + tagLength else {
            throw .malformed("\(bytes.count) bytes is too short")
        }
        guard Array(bytes[0..<4]) == magic, bytes[4] == version else { throw .malformed("not a cluster message") }
        let body = Array(bytes[..<(bytes.count - tagLength)])
        guard key.verify(body, tag: Array(bytes[(bytes.count - tagLength)...])) else { throw .badTag }
        guard let kind = Kind(rawValue: bytes[5]) else { throw .malformed("unknown kind \(bytes[5])") }
        func integer(at offset: Int) -> UInt64 { bytes[offset..<offset + 8].reduce(0) { $0 << 8 | UInt64($1) } }
        var offset = fixedHeaderLength
        let nameLength = Int(body[offset])
        offset += 1
        guard body.count >= offset + nameLength + 1 else { throw .malformed("listener name past the end") }
        let listener = String(decoding: body[offset..<offset + nameLength], as: UTF8.self)
        offset += nameLength
        let family = body[offset]
        offset += 1
        let addressLength = family == 6 ? 16 : 4
        guard family == 4 || family == 6, body.count >= offset + addressLength + 2 else {
            throw .malformed("bad client address")
        }
        let address = Array(body[offset..<offset + addressLength])
        offset += addressLength
        let port = Int(body[offset]) << 8 | Int(body[offset + 1])
        offset += 2
        guard let client = Self.socketAddress(address, port: port) else { throw .malformed("bad client address") }
        return ClusterMessage(
            kind: kind, sender: bytes[6], timestamp: integer(at: 8), sequence: integer(at: 16), listener: listener,
            client: client, datagram: Array(body[offset...]))
    }

    private static func socketAddress(_ bytes: [UInt8], port: Int) -> SocketAddress? {
        let text: String
        if bytes.count == 4 {
            text = bytes.map(String.init).joined(separator: ".")
        } else {
            text = stride(from: 0, to: 16, by: 2).map {
                String(UInt16(bytes[$0]) << 8 | UInt16(bytes[$0 + 1]), radix: 16)
            }
            .joined(separator: ":")
        }
        return try? SocketAddress(ipAddress: text, port: port)
    }
}

/// The key every cluster message is authenticated with: HMAC-SHA256 keyed by
/// a key derived from `secret_file`, so the file's bytes are never used as a
/// key for anything else. Used only under the cluster link's lock (``HMACSHA256``).
struct ClusterKey: Sendable {
    private let hmac: HMACSHA256

    init(secret: [UInt8]) {
        hmac = HMACSHA256(key: CookieVerifier.hmac(key: secret, data: Array("dtls-proxyd cluster".utf8)))
    }

    func tag(_ bytes: [UInt8]) -> [UInt8] {
        Array(hmac.tag(bytes).prefix(ClusterMessage.tagLength))
    }

    func verify(_ bytes: [UInt8], tag: [UInt8]) -> Bool {
        CookieVerifier.constantTimeEqual(self.tag(bytes), tag)
    }
}
