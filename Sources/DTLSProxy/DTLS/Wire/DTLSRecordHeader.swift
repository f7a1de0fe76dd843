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
