/// One record's worth of a ClientHello: the whole message, or one fragment of it.
///
/// Clients whose path MTU is small (OpenSSL without a known MTU uses 256
/// bytes) fragment even their ClientHello. OpenSSL's `DTLSv1_listen` refuses
/// such a hello, so the router reassembles it first; see `ClientHelloReassembly`.
public struct ClientHelloFragment: Equatable, Sendable {
    public var recordVersion: UInt16
    public var recordSequenceNumber: UInt64
    public var messageSequence: UInt16
    /// The length of the whole ClientHello message.
    public var messageLength: Int
    public var fragmentOffset: Int
    /// This fragment's bytes of the message body.
    public var bytes: [UInt8]

    public var isWholeMessage: Bool { fragmentOffset == 0 && bytes.count == messageLength }
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
    /// The record is not of the handshake content type.
    case notHandshakeRecord = "not_handshake_record"
    /// A ClientHello comes only in epoch 0.
    case notEpochZero = "not_epoch_zero"
    /// The handshake message is of another type.
    case notClientHello = "not_client_hello"
    /// The message is a fragment; the router puts fragments together first.
    case fragmented = "fragmented_client_hello"
    /// The message or one of its fields ends early.
    case truncated = "truncated_client_hello"
}

public enum ClientHelloParser {
    /// Largest ClientHello the daemon reassembles; real ones are a few hundred bytes.
    public static let maximumMessageLength = 16 * 1024

    /// Parses the first record of `datagram` as a ClientHello or a fragment of one.
    public static func fragment(
        _ datagram: UnsafeRawBufferPointer
    ) -> Result<ClientHelloFragment, ClientHelloParseFailure> {
        guard let header = DTLSRecordHeader(datagram) else { return .failure(.truncated) }
        guard header.contentType == DTLSRecordHeader.ContentType.handshake.rawValue else {
            return .failure(.notHandshakeRecord)
        }
        guard header.epoch == 0 else { return .failure(.notEpochZero) }
        let body = UnsafeRawBufferPointer(
            rebasing: datagram[DTLSRecordHeader.length..<(DTLSRecordHeader.length + header.fragmentLength)])
        // Handshake header: type(1) length(3) message_seq(2) fragment_offset(3) fragment_length(3).
        guard body.count >= 12 else { return .failure(.truncated) }
        guard body[0] == 1 else { return .failure(.notClientHello) }
        let messageLength = uint24(body, 1)
        let fragmentOffset = uint24(body, 6)
        let fragmentLength = uint24(body, 9)
        guard messageLength <= maximumMessageLength, fragmentOffset + fragmentLength <= messageLength else {
            return .failure(.fragmented)
        }
        guard body.count - 12 >= fragmentLength else { return .failure(.truncated) }
        return .success(
            ClientHelloFragment(
                recordVersion: header.version,
                recordSequenceNumber: header.sequenceNumber,
                messageSequence: UInt16(body[4]) << 8 | UInt16(body[5]),
                messageLength: messageLength,
                fragmentOffset: fragmentOffset,
                bytes: Array(body[12..<(12 + fragmentLength)])
            ))
    }

    /// Reads version, random and cookie from a fragment that starts the message.
    ///
    /// These fields sit in the first 300 bytes, so the first fragment of a
    /// fragmented hello is enough to check its cookie.
    public static func summary(of fragment: ClientHelloFragment) -> Result<ClientHelloSummary, ClientHelloParseFailure>
    {
        guard fragment.fragmentOffset == 0 else { return .failure(.fragmented) }
        let hello = fragment.bytes
        // client_version(2) random(32) session_id<0..32> cookie<0..255> ...
        guard hello.count >= 35 else { return .failure(.truncated) }
        var cursor = 34
        let sessionIDLength = Int(hello[cursor])
        guard sessionIDLength <= 32 else { return .failure(.truncated) }
        cursor += 1 + sessionIDLength
        guard cursor < hello.count else { return .failure(.truncated) }
        let cookieLength = Int(hello[cursor])
        cursor += 1
        guard cursor + cookieLength <= hello.count else { return .failure(.truncated) }
        return .success(
            ClientHelloSummary(
                recordSequenceNumber: fragment.recordSequenceNumber,
                messageSequence: fragment.messageSequence,
                clientVersion: UInt16(hello[0]) << 8 | UInt16(hello[1]),
                random: Array(hello[2..<34]),
                cookie: Array(hello[cursor..<(cursor + cookieLength)])
            ))
    }

    /// Parses the first record of `datagram` as a whole, unfragmented ClientHello.
    public static func parse(_ datagram: UnsafeRawBufferPointer) -> Result<ClientHelloSummary, ClientHelloParseFailure>
    {
        fragment(datagram).flatMap { fragment in
            fragment.isWholeMessage ? summary(of: fragment) : .failure(.fragmented)
        }
    }

    private static func uint24(_ bytes: UnsafeRawBufferPointer, _ offset: Int) -> Int {
        Int(bytes[offset]) << 16 | Int(bytes[offset + 1]) << 8 | Int(bytes[offset + 2])
    }
}

/// Puts a fragmented ClientHello back together, so `DTLSv1_listen` can take it.
///
/// Started only from a first fragment whose cookie verified, so nothing is
/// held for a client that has not shown it can receive at its address.
/// The result is one record holding the whole message: exactly what an
/// unfragmented client would have sent, and what the handshake transcript
/// covers (RFC 6347 §4.2.6), so the handshake is unchanged by it.
public struct ClientHelloReassembly: Sendable {
    public let summary: ClientHelloSummary
    private let first: ClientHelloFragment
    private var message: [UInt8]
    private var received: [Bool]
    private var missing: Int

    public init(first: ClientHelloFragment, summary: ClientHelloSummary) {
        precondition(first.fragmentOffset == 0)
        self.first = first
        self.summary = summary
        message = [UInt8](repeating: 0, count: first.messageLength)
        received = [Bool](repeating: false, count: first.messageLength)
        missing = first.messageLength
        _ = add(first)
    }

    /// Adds a fragment of the same message; false when it belongs to another one.
    public mutating func add(_ fragment: ClientHelloFragment) -> Bool {
        guard fragment.messageSequence == first.messageSequence, fragment.messageLength == first.messageLength else {
            return false
        }
        // The first copy of a byte wins: an overlapping fragment must not
        // rewrite the random or the cookie already checked from the first one.
        for (index, byte) in fragment.bytes.enumerated() {
            let position = fragment.fragmentOffset + index
            guard !received[position] else { continue }
            received[position] = true
            missing -= 1
            message[position] = byte
        }
        return true
    }

    public var isComplete: Bool { missing == 0 }

    /// The whole ClientHello as one epoch-0 record with the first fragment's sequence number.
    public func record() -> [UInt8] {
        let length = message.count
        let fragmentLength = 12 + length
        var bytes: [UInt8] = [
            DTLSRecordHeader.ContentType.handshake.rawValue,
            UInt8(first.recordVersion >> 8), UInt8(first.recordVersion & 0xFF), 0, 0,
        ]
        for shift in stride(from: 40, through: 0, by: -8) {
            bytes.append(UInt8((first.recordSequenceNumber >> UInt64(shift)) & 0xFF))
        }
        bytes += [UInt8(fragmentLength >> 8), UInt8(fragmentLength & 0xFF)]
        let length24: [UInt8] = [UInt8(length >> 16), UInt8((length >> 8) & 0xFF), UInt8(length & 0xFF)]
        bytes.append(1)
        bytes += length24
        bytes += [UInt8(first.messageSequence >> 8), UInt8(first.messageSequence & 0xFF)]
        bytes += [0, 0, 0]
        bytes += length24
        bytes += message
        return bytes
    }
}
