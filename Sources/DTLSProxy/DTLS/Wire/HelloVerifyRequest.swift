/// Builds the HelloVerifyRequest the daemon answers a cookie-less ClientHello with.
public enum HelloVerifyRequest {
    /// DTLS 1.0's version number: RFC 6347 §4.2.1 has servers use it in
    /// HelloVerifyRequest whatever version they will negotiate, as OpenSSL does.
    public static let version: UInt16 = 0xFEFF

    /// The whole datagram: one record holding one HelloVerifyRequest carrying `cookie`.
    ///
    /// The record sequence number and the handshake message_seq are those of
    /// the ClientHello it answers (RFC 6347 §4.2.1, and what `DTLSv1_listen`
    /// does). A client that already received one HelloVerifyRequest sends its
    /// next ClientHello with message_seq 1 and expects the next server message
    /// to be numbered 1 as well: a second HelloVerifyRequest numbered 0 (a
    /// cookie this instance refused: another instance's secret, or one rotated
    /// twice) would be taken for a stale retransmission, and the client would
    /// resend its old cookie until it gave up.
    public static func datagram(cookie: [UInt8], recordSequenceNumber: UInt64, messageSequence: UInt16) -> [UInt8] {
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
        // Handshake header: hello_verify_request(3), length, the ClientHello's message_seq, whole fragment.
        bytes.append(3)
        appendUInt24(&bytes, bodyLength)
        bytes.append(UInt8(messageSequence >> 8)); bytes.append(UInt8(messageSequence & 0xFF))
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
