/// Seals the records one end sends in one epoch of a DTLS 1.2 session with an AEAD suite.
///
/// With a non-empty `connectionID` (the CID the peer asked to receive) every
/// record is a `tls12_cid` record (RFC 9146 §4): content type 25, the CID in
/// the header, and as payload the encrypted DTLSInnerPlaintext (content, real
/// content type, zero padding), authenticated with the §5 additional data.
/// With an empty one, records are ordinary (RFC 6347 §4.1, RFC 5246 §6.2.3.3).
///
/// The explicit nonce of GCM and CCM records is the epoch and sequence number,
/// which RFC 5288 §3 allows and every implementation does, so the caller's
/// sequence numbers (never reused within an epoch) keep the nonces unique.
///
/// One `EVP_CIPHER_CTX`, keyed once, serves every record; it is freed with the
/// sealer. Not Sendable: use it on the event loop of its session.
public final class RecordSealer {
    public let suite: RecordCipherSuite
    /// The epoch written in every record.
    public let epoch: UInt16
    /// The CID written in every record; empty for ordinary records.
    public let connectionID: [UInt8]
    /// The record version written in every record: DTLS 1.2 (0xFEFD).
    public let version: UInt16
    private let aead: RecordAEAD
    private var iv: [UInt8] { aead.iv }

    /// A sealer with `keys` (the sending end's write key and IV, see `KeyBlock.writeKeys(of:)`).
    public init(
        suite: RecordCipherSuite, keys: TrafficKeys, epoch: UInt16 = 1, connectionID: [UInt8], version: UInt16 = 0xFEFD
    ) throws(RecordProtectionError) {
        aead = try RecordAEAD(suite: suite, keys: keys, connectionID: connectionID, encrypting: true)
        self.suite = suite
        self.epoch = epoch
        self.connectionID = connectionID
        self.version = version
    }

    /// The length of the sealed record for a plaintext of `plaintextLength` bytes and `padding` zeros.
    public func recordLength(plaintextLength: Int, padding: Int = 0) -> Int {
        let inner = connectionID.isEmpty ? plaintextLength : plaintextLength + 1 + padding
        return DTLSRecordHeader.length + connectionID.count + suite.recordOverhead + inner
    }

    /// Seals one record and returns its bytes.
    public func seal(
        contentType: UInt8, sequenceNumber: UInt64, plaintext: [UInt8], padding: Int = 0
    ) throws(RecordProtectionError) -> [UInt8] {
        var record: [UInt8] = []
        record.reserveCapacity(recordLength(plaintextLength: plaintext.count, padding: max(padding, 0)))
        let result = plaintext.withUnsafeBytes { bytes in
            Result { () throws(RecordProtectionError) in
                try seal(
                    contentType: contentType, sequenceNumber: sequenceNumber, plaintext: bytes, padding: padding,
                    appendingTo: &record)
            }
        }
        try result.get()
        return record
    }

    /// Seals one record and appends it to `output` (e.g. a datagram being packed); on
    /// failure `output` is left as it was.
    ///
    /// - Parameters:
    ///   - contentType: the real content type (23 application data, 21 alert, 22 handshake).
    ///   - sequenceNumber: the 48-bit record sequence number, unique within the epoch.
    ///   - padding: zero bytes after the content type in the DTLSInnerPlaintext
    ///     (RFC 9146 §4); only for `tls12_cid` records.
    public func seal(
        contentType: UInt8, sequenceNumber: UInt64, plaintext: UnsafeRawBufferPointer, padding: Int = 0,
        appendingTo output: inout [UInt8]
    ) throws(RecordProtectionError) {
        let withCID = !connectionID.isEmpty
        guard padding >= 0, padding == 0 || withCID else { throw .invalidPadding(padding) }
        guard plaintext.count <= RecordFormat.maximumPlaintextLength else { throw .plaintextTooLong(plaintext.count) }
        guard sequenceNumber < 1 << 48 else { throw .sequenceNumberOverflow }
        let innerLength = withCID ? plaintext.count + 1 + padding : plaintext.count
        let fragmentLength = suite.recordOverhead + innerLength
        guard fragmentLength <= RecordFormat.maximumFragmentLength else {
            throw .plaintextTooLong(plaintext.count + padding)
        }
        let explicitNonce = RecordFormat.epochAndSequence(epoch: epoch, sequenceNumber: sequenceNumber)
        let start = output.count
        output.append(withCID ? ConnectionIDRecordHeader.tls12CIDContentType : contentType)
        append(UInt64(version), count: 2, to: &output)
        append(UInt64(epoch), count: 2, to: &output)
        append(sequenceNumber, count: 6, to: &output)
        output.append(contentsOf: connectionID)
        append(UInt64(fragmentLength), count: 2, to: &output)
        append(explicitNonce, count: suite.explicitNonceLength, to: &output)
        let textStart = output.count
        output.append(contentsOf: plaintext)
        if withCID {
            output.append(contentType)
            output.append(contentsOf: repeatElement(0, count: padding))
        }
        let tagStart = output.count
        output.append(contentsOf: repeatElement(0, count: suite.tagLength))
        let result = output.withUnsafeMutableBytes { record in
            seal(record: record, start: start, textRange: textStart..<tagStart, explicitNonce: explicitNonce)
        }
        if case .failure(let error) = result {
            output.removeSubrange(start...)
            throw error
        }
    }

    /// Encrypts the record laid out at `start` in `record`: nonce, additional data, text in place, tag.
    private func seal(
        record: UnsafeMutableRawBufferPointer, start: Int, textRange: Range<Int>, explicitNonce: UInt64
    ) -> Result<Void, RecordProtectionError> {
        withUnsafeTemporaryAllocation(byteCount: suite.nonceLength, alignment: 1) { nonce in
            RecordFormat.nonce(into: nonce, suite: suite, iv: iv, explicitNonce: explicitNonce)
            return withUnsafeTemporaryAllocation(byteCount: RecordFormat.maximumAdditionalDataLength, alignment: 1) {
                aad in
                let sequenceNumber = explicitNonce & 0xFFFF_FFFF_FFFF
                let aadLength: Int
                if connectionID.isEmpty {
                    aadLength = RecordFormat.ordinaryAdditionalData(
                        into: aad, contentType: record[start], version: version, epoch: epoch,
                        sequenceNumber: sequenceNumber, plaintextLength: textRange.count)
                } else {
                    aadLength = connectionID.withUnsafeBytes { cid in
                        RecordFormat.connectionIDAdditionalData(
                            into: aad, version: version, epoch: epoch, sequenceNumber: sequenceNumber,
                            connectionID: cid, innerPlaintextLength: textRange.count)
                    }
                }
                let tagEnd = textRange.upperBound + suite.tagLength
                return Result { () throws(RecordProtectionError) in
                    try aead.seal(
                        nonce: UnsafeRawBufferPointer(nonce),
                        additionalData: UnsafeRawBufferPointer(rebasing: aad[..<aadLength]),
                        text: UnsafeMutableRawBufferPointer(rebasing: record[textRange]),
                        tag: UnsafeMutableRawBufferPointer(rebasing: record[textRange.upperBound..<tagEnd]))
                }
            }
        }
    }

    private func append(_ value: UInt64, count: Int, to output: inout [UInt8]) {
        for index in stride(from: count - 1, through: 0, by: -1) {
            output.append(UInt8(truncatingIfNeeded: value >> UInt64(8 * index)))
        }
    }
}
