/// A record that opened: its header, its real content type and its plaintext.
public struct OpenedRecord: Equatable, Sendable {
    /// The header as on the wire (for a `tls12_cid` record, content type 25).
    public let header: ConnectionIDRecordHeader
    /// The real content type: from the DTLSInnerPlaintext of a `tls12_cid`
    /// record, else the header's.
    public let contentType: UInt8
    /// The content, without content type and padding.
    public let plaintext: [UInt8]
    /// How many zero bytes of padding followed the content type (0 for an ordinary record).
    public let paddingLength: Int
}

/// Opens the records one end receives in one epoch of a DTLS 1.2 session with an AEAD suite.
///
/// `connectionID` is the CID this side issued (asked to receive). When it is
/// non-empty only `tls12_cid` records carrying exactly it are accepted; when
/// empty only ordinary records are (RFC 9146 §3). The tag is checked by
/// OpenSSL in constant time before any plaintext is returned; every refusal
/// is a `RecordProtectionError`, whatever the bytes.
///
/// The sequence number is not checked here: authenticate first, then ask the
/// epoch's `ReplayWindow`. One `EVP_CIPHER_CTX`, keyed once, serves every
/// record; it is freed with the opener. Not Sendable: use it on the event
/// loop of its session.
public final class RecordOpener {
    public let suite: RecordCipherSuite
    /// The only epoch accepted.
    public let epoch: UInt16
    /// The CID records must carry; empty for ordinary records.
    public let connectionID: [UInt8]
    private let aead: RecordAEAD
    private var iv: [UInt8] { aead.iv }

    /// An opener with `keys` (the sending end's write key and IV, see `KeyBlock.writeKeys(of:)`).
    public init(
        suite: RecordCipherSuite, keys: TrafficKeys, epoch: UInt16 = 1, connectionID: [UInt8]
    ) throws(RecordProtectionError) {
        aead = try RecordAEAD(suite: suite, keys: keys, connectionID: connectionID, encrypting: false)
        self.suite = suite
        self.epoch = epoch
        self.connectionID = connectionID
    }

    /// Opens one record, given as exactly its bytes.
    public func open(_ record: [UInt8]) throws(RecordProtectionError) -> OpenedRecord {
        let result = record.withUnsafeBytes { bytes in
            Result { () throws(RecordProtectionError) in try open(bytes) }
        }
        return try result.get()
    }

    /// Opens one record, given as exactly its bytes (e.g. a `DatagramRecords.Record` range of a datagram).
    public func open(_ record: UnsafeRawBufferPointer) throws(RecordProtectionError) -> OpenedRecord {
        let header: ConnectionIDRecordHeader
        do {
            header = try ConnectionIDRecordHeader(parsing: record, connectionIDLength: connectionID.count)
        } catch .unexpectedConnectionID {
            throw .unexpectedConnectionID
        } catch {
            throw .malformedHeader(error)
        }
        guard header.recordLength == record.count else { throw .trailingBytes(record.count - header.recordLength) }
        guard header.epoch == epoch else { throw .wrongEpoch(header.epoch) }
        if header.isConnectionIDRecord {
            guard record[header.connectionIDRange].elementsEqual(connectionID) else { throw .connectionIDMismatch }
        } else if !connectionID.isEmpty {
            throw .connectionIDMissing
        }
        let fragmentLength = header.fragmentLength
        guard fragmentLength <= RecordFormat.maximumFragmentLength else { throw .tooLong(fragmentLength) }
        let minimum = suite.recordOverhead + (header.isConnectionIDRecord ? 1 : 0)
        guard fragmentLength >= minimum else { throw .tooShort(fragmentLength) }

        let fragment = UnsafeRawBufferPointer(rebasing: record[header.fragmentRange])
        let explicitNonce =
            suite.explicitNonceLength == 0
            ? RecordFormat.epochAndSequence(epoch: header.epoch, sequenceNumber: header.sequenceNumber)
            : RecordFormat.read(suite.explicitNonceLength, from: fragment, at: 0)
        let textRange = suite.explicitNonceLength..<fragmentLength - suite.tagLength
        var plaintext = [UInt8](repeating: 0, count: max(textRange.count, 1))
        let authentic = plaintext.withUnsafeMutableBytes { output in
            open(
                fragment: fragment, textRange: textRange, header: header,
                connectionID: UnsafeRawBufferPointer(rebasing: record[header.connectionIDRange]),
                explicitNonce: explicitNonce, into: output)
        }
        guard authentic else { throw .authenticationFailed }
        plaintext.removeLast(plaintext.count - textRange.count)
        guard header.isConnectionIDRecord else {
            return OpenedRecord(header: header, contentType: header.contentType, plaintext: plaintext, paddingLength: 0)
        }
        // DTLSInnerPlaintext: content || real type || zeros. The type is the last non-zero byte.
        guard let typeIndex = plaintext.lastIndex(where: { $0 != 0 }) else { throw .noContentType }
        let contentType = plaintext[typeIndex]
        let paddingLength = plaintext.count - typeIndex - 1
        plaintext.removeLast(paddingLength + 1)
        return OpenedRecord(
            header: header, contentType: contentType, plaintext: plaintext, paddingLength: paddingLength)
    }

    /// Builds nonce and additional data, then decrypts and authenticates the text of `fragment`.
    private func open(
        fragment: UnsafeRawBufferPointer, textRange: Range<Int>, header: ConnectionIDRecordHeader,
        connectionID: UnsafeRawBufferPointer, explicitNonce: UInt64, into output: UnsafeMutableRawBufferPointer
    ) -> Bool {
        withUnsafeTemporaryAllocation(byteCount: suite.nonceLength, alignment: 1) { nonce in
            RecordFormat.nonce(into: nonce, suite: suite, iv: iv, explicitNonce: explicitNonce)
            return withUnsafeTemporaryAllocation(byteCount: RecordFormat.maximumAdditionalDataLength, alignment: 1) {
                aad in
                let aadLength =
                    header.isConnectionIDRecord
                    ? RecordFormat.connectionIDAdditionalData(
                        into: aad, version: header.version, epoch: header.epoch,
                        sequenceNumber: header.sequenceNumber, connectionID: connectionID,
                        innerPlaintextLength: textRange.count)
                    : RecordFormat.ordinaryAdditionalData(
                        into: aad, contentType: header.contentType, version: header.version, epoch: header.epoch,
                        sequenceNumber: header.sequenceNumber, plaintextLength: textRange.count)
                return aead.open(
                    nonce: UnsafeRawBufferPointer(nonce),
                    additionalData: UnsafeRawBufferPointer(rebasing: aad[..<aadLength]),
                    ciphertext: UnsafeRawBufferPointer(rebasing: fragment[textRange]),
                    tag: UnsafeRawBufferPointer(rebasing: fragment[textRange.upperBound...]), plaintext: output)
            }
        }
    }
}
