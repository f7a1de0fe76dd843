/// Cookieless copies of a ClientHello, numbered before it, that bring a fresh
/// OpenSSL server to the handshake message number the client is at.
///
/// A client that was sent two HelloVerifyRequests (the second because this
/// instance refused a cookie: another instance's secret, or one rotated twice)
/// numbers its next ClientHello 2 and expects the ServerHello to be numbered 2
/// as well. Every handshake message's number is part of the transcript that the
/// Finished messages authenticate, so it cannot be rewritten on the way.
/// `DTLSv1_listen` always continues at number 1, so it cannot serve that client.
/// OpenSSL's stateful cookie exchange (`SSL_OP_COOKIE_EXCHANGE` without
/// `DTLSv1_listen`) can: each cookieless ClientHello it reads is answered with
/// a HelloVerifyRequest and advances both of its counters by one, and each
/// HelloVerifyRequest restarts the transcript. Fed the copies numbered 0 …
/// n − 1 (their HelloVerifyRequests discarded) and then the real ClientHello
/// numbered n, it checks the cookie through the same callback and answers with
/// a ServerHello numbered n, the transcript holding only the real ClientHello.
///
/// Only a ClientHello whose cookie the router has verified gets here, so the
/// return routability check has been done; ``maximumMessageSequence`` bounds the
/// work one such ClientHello can cause.
public enum ClientHelloRenumbering {
    /// The highest message_seq served this way; a client that needed more
    /// HelloVerifyRequests than this is not worth the work.
    public static let maximumMessageSequence: UInt16 = 8

    /// The copies to feed a fresh server before `record` (one whole ClientHello
    /// record, as the router admits it): the same ClientHello without its cookie,
    /// numbered 0 … message_seq − 1, with record sequence numbers just below the
    /// real one's so that OpenSSL's replay window takes all of them in order.
    /// Nil when `record` is not a whole ClientHello, is numbered 0 or 1 (for
    /// those `DTLSv1_listen` is the way), above ``maximumMessageSequence``, or its
    /// record sequence number leaves no room below it.
    public static func precedingCopies(of record: [UInt8]) -> [[UInt8]]? {
        guard let layout = Layout(record) else { return nil }
        let count = UInt64(layout.messageSequence)
        guard layout.messageSequence >= 2, layout.messageSequence <= maximumMessageSequence,
            layout.recordSequenceNumber >= count
        else { return nil }
        return (0..<count).map { index in
            layout.withoutCookie(
                messageSequence: UInt16(index),
                recordSequenceNumber: layout.recordSequenceNumber - count + index)
        }
    }

    /// Where the parts of one whole, unfragmented ClientHello record are.
    struct Layout {
        let record: [UInt8]
        let messageSequence: UInt16
        let recordSequenceNumber: UInt64
        /// Offset of the cookie's length byte, and the cookie's length.
        let cookieOffset: Int
        let cookieLength: Int
        let recordEnd: Int

        init?(_ record: [UInt8]) {
            let header = record.withUnsafeBytes { DTLSRecordHeader($0) }
            guard let header, header.contentType == DTLSRecordHeader.ContentType.handshake.rawValue, header.epoch == 0
            else { return nil }
            let body = DTLSRecordHeader.length
            let end = body + header.fragmentLength
            guard end <= record.count, header.fragmentLength >= 12, record[body] == 1 else { return nil }
            let messageLength = Self.uint24(record, body + 1)
            guard Self.uint24(record, body + 6) == 0, Self.uint24(record, body + 9) == messageLength,
                body + 12 + messageLength == end
            else { return nil }
            // client_version(2), random(32), session_id<0..32>, cookie<0..255>.
            let sessionIDOffset = body + 12 + 2 + 32
            guard sessionIDOffset < end else { return nil }
            let cookieOffset = sessionIDOffset + 1 + Int(record[sessionIDOffset])
            guard cookieOffset < end, cookieOffset + 1 + Int(record[cookieOffset]) <= end else { return nil }
            self.record = record
            messageSequence = UInt16(record[body + 4]) << 8 | UInt16(record[body + 5])
            recordSequenceNumber = header.sequenceNumber
            self.cookieOffset = cookieOffset
            cookieLength = Int(record[cookieOffset])
            recordEnd = end
        }

        /// The record with an empty cookie and the given numbers; lengths adjusted.
        func withoutCookie(messageSequence: UInt16, recordSequenceNumber: UInt64) -> [UInt8] {
            var copy =
                Array(record[..<cookieOffset]) + [0] + Array(record[(cookieOffset + 1 + cookieLength)..<recordEnd])
            let body = DTLSRecordHeader.length
            let fragmentLength = recordEnd - body - cookieLength
            let messageLength = fragmentLength - 12
            for (index, shift) in stride(from: 40, through: 0, by: -8).enumerated() {
                copy[5 + index] = UInt8((recordSequenceNumber >> UInt64(shift)) & 0xFF)
            }
            copy[11] = UInt8(fragmentLength >> 8)
            copy[12] = UInt8(fragmentLength & 0xFF)
            Self.setUInt24(&copy, body + 1, messageLength)
            copy[body + 4] = UInt8(messageSequence >> 8)
            copy[body + 5] = UInt8(messageSequence & 0xFF)
            Self.setUInt24(&copy, body + 9, messageLength)
            return copy
        }

        private static func uint24(_ bytes: [UInt8], _ offset: Int) -> Int {
            Int(bytes[offset]) << 16 | Int(bytes[offset + 1]) << 8 | Int(bytes[offset + 2])
        }

        private static func setUInt24(_ bytes: inout [UInt8], _ offset: Int, _ value: Int) {
            bytes[offset] = UInt8((value >> 16) & 0xFF)
            bytes[offset + 1] = UInt8((value >> 8) & 0xFF)
            bytes[offset + 2] = UInt8(value & 0xFF)
        }
    }
}
