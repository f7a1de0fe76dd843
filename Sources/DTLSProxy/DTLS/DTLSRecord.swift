/// The 13-byte header of a DTLS record (RFC 6347 §4.1).
///
/// Parsing is done on raw bytes, before any OpenSSL object exists, so the
/// router can classify a datagram (which session, is it a ClientHello)
/// without allocating anything.
public struct DTLSRecordHeader: Equatable, Sendable {
    public static let length = 13

    public enum ContentType: UInt8, Sendable {
        case changeCipherSpec = 20
        case alert = 21
        case handshake = 22
        case applicationData = 23
        case heartbeat = 24
    }

    public var contentType: UInt8
    public var version: UInt16
    public var epoch: UInt16
    /// The 48-bit record sequence number.
    public var sequenceNumber: UInt64
    /// The length of the record's fragment.
    public var fragmentLength: Int

    /// Parses the header at the start of `bytes`; nil when it is not a plausible DTLS record.
    ///
    /// Plausible means: a known content type, a DTLS version (major byte 0xFE),
    /// and a fragment that fits in the bytes given.
    public init?(_ bytes: UnsafeRawBufferPointer) {
        guard bytes.count >= Self.length else { return nil }
        let type = bytes[0]
        guard ContentType(rawValue: type) != nil, bytes[1] == 0xFE else { return nil }
        contentType = type
        version = UInt16(bytes[1]) << 8 | UInt16(bytes[2])
        epoch = UInt16(bytes[3]) << 8 | UInt16(bytes[4])
        var sequence: UInt64 = 0
        for index in 5..<11 { sequence = sequence << 8 | UInt64(bytes[index]) }
        sequenceNumber = sequence
        fragmentLength = Int(bytes[11]) << 8 | Int(bytes[12])
        guard fragmentLength <= bytes.count - Self.length else { return nil }
    }
}

/// What the router needs from a ClientHello before it spends anything on it.
public struct ClientHelloSummary: Equatable, Sendable {
    /// The record sequence number, echoed in the HelloVerifyRequest (RFC 6347 §4.2.1).
    public var recordSequenceNumber: UInt64
    /// The handshake message_seq: 0 for a first ClientHello, 1 after a HelloVerifyRequest.
    public var messageSequence: UInt16
    /// client_version from the ClientHello body.
    public var clientVersion: UInt16
    /// The 32-byte client random; tells a retransmission from a restarted client.
    public var random: [UInt8]
    /// The cookie, empty when the client sent none.
    public var cookie: [UInt8]
}

/// Why a datagram that looked like a ClientHello was not accepted as one.
public enum ClientHelloParseFailure: String, Error, Sendable {
    case notHandshakeRecord = "not_handshake_record"
    case notEpochZero = "not_epoch_zero"
    case notClientHello = "not_client_hello"
    case fragmented = "fragmented_client_hello"
    case truncated = "truncated_client_hello"
}

public enum ClientHelloParser {
    /// Parses the first record of `datagram` as a whole, unfragmented ClientHello.
    ///
    /// The stateless cookie exchange needs the whole ClientHello in one
    /// record, as OpenSSL's `DTLSv1_listen` does; a fragmented one is refused.
    public static func parse(_ datagram: UnsafeRawBufferPointer) -> Result<ClientHelloSummary, ClientHelloParseFailure> {
        guard let header = DTLSRecordHeader(datagram) else { return .failure(.truncated) }
        guard header.contentType == DTLSRecordHeader.ContentType.handshake.rawValue else {
            return .failure(.notHandshakeRecord)
        }
        guard header.epoch == 0 else { return .failure(.notEpochZero) }
        let body = UnsafeRawBufferPointer(rebasing: datagram[DTLSRecordHeader.length..<(DTLSRecordHeader.length + header.fragmentLength)])
        // Handshake header: type(1) length(3) message_seq(2) fragment_offset(3) fragment_length(3).
        guard body.count >= 12 else { return .failure(.truncated) }
        guard body[0] == 1 else { return .failure(.notClientHello) }
        let messageLength = uint24(body, 1)
        let messageSequence = UInt16(body[4]) << 8 | UInt16(body[5])
        let fragmentOffset = uint24(body, 6)
        let fragmentLength = uint24(body, 9)
        guard fragmentOffset == 0, fragmentLength == messageLength else { return .failure(.fragmented) }
        guard body.count - 12 >= messageLength else { return .failure(.truncated) }
        let hello = UnsafeRawBufferPointer(rebasing: body[12..<(12 + messageLength)])
        // client_version(2) random(32) session_id<0..32> cookie<0..255> ...
        var cursor = 0
        guard hello.count >= 35 else { return .failure(.truncated) }
        let clientVersion = UInt16(hello[0]) << 8 | UInt16(hello[1])
        let random = Array(hello[2..<34])
        cursor = 34
        let sessionIDLength = Int(hello[cursor])
        guard sessionIDLength <= 32 else { return .failure(.truncated) }
        cursor += 1 + sessionIDLength
        guard cursor < hello.count else { return .failure(.truncated) }
        let cookieLength = Int(hello[cursor])
        cursor += 1
        guard cursor + cookieLength <= hello.count else { return .failure(.truncated) }
        let cookie = Array(hello[cursor..<(cursor + cookieLength)])
        return .success(ClientHelloSummary(
            recordSequenceNumber: header.sequenceNumber,
            messageSequence: messageSequence,
            clientVersion: clientVersion,
            random: random,
            cookie: cookie
        ))
    }

    private static func uint24(_ bytes: UnsafeRawBufferPointer, _ offset: Int) -> Int {
        Int(bytes[offset]) << 16 | Int(bytes[offset + 1]) << 8 | Int(bytes[offset + 2])
    }
}

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
