/// A fatal access_denied alert (RFC 5246 §7.2.2, alert 49) to refuse a client
/// whose certificate verified but whose names no allow-list admits.
///
/// OpenSSL chooses the alert for a failed certificate check itself and never
/// picks access_denied, so the allow-lists run when the server's side of the
/// handshake completes. At that moment the server's final flight
/// (ChangeCipherSpec, then Finished under the new keys) is still in our
/// datagram BIO, unsent, and the client still reads epoch 0. We drop that
/// flight and send, in its place, a plaintext epoch-0 alert record numbered
/// like the ChangeCipherSpec it replaces: a sequence number the client has
/// never seen, so its replay window accepts it.
enum AccessDeniedAlert {
    static let level: UInt8 = 2  // fatal
    static let description: UInt8 = 49  // access_denied

    /// The alert datagram that replaces `flight` (the datagrams OpenSSL wrote in
    /// the step that completed the handshake), or nil when the flight holds no
    /// epoch-0 record to number it after (e.g. an abbreviated handshake, whose
    /// final flight the client already has).
    static func replacing(flight: [[UInt8]]) -> [UInt8]? {
        var last: DTLSRecordHeader?
        for datagram in flight {
            var offset = 0
            while offset < datagram.count {
                let header = datagram.withUnsafeBytes { bytes in
                    DTLSRecordHeader(UnsafeRawBufferPointer(rebasing: bytes[offset...]))
                }
                guard let header else { break }
                if header.epoch == 0 { last = header }
                offset += DTLSRecordHeader.length + header.fragmentLength
            }
        }
        guard let last else { return nil }
        let sequence =
            last.contentType == DTLSRecordHeader.ContentType.changeCipherSpec.rawValue
            ? last.sequenceNumber : last.sequenceNumber + 1
        var record: [UInt8] = [
            DTLSRecordHeader.ContentType.alert.rawValue,
            UInt8(last.version >> 8), UInt8(last.version & 0xFF), 0, 0,
        ]
        for shift in stride(from: 40, through: 0, by: -8) { record.append(UInt8((sequence >> UInt64(shift)) & 0xFF)) }
        record += [0, 2, level, description]
        return record
    }
}
