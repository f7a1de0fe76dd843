/// The byte layouts RFC 5246, RFC 6347 and RFC 9146 fix for protected DTLS 1.2
/// records: limits, the AEAD nonce and the additional data. Pure functions
/// that write into caller-provided buffers, so sealing and opening a record
/// allocates nothing for them.
enum RecordFormat {
    /// The longest plaintext a record may carry (RFC 5246 §6.2.1).
    static let maximumPlaintextLength = 1 << 14
    /// The longest fragment a protected record may have (RFC 5246 §6.2.3).
    static let maximumFragmentLength = (1 << 14) + 2048
    /// Additional data of an ordinary record: seq_num(8) type(1) version(2) length(2).
    static let ordinaryAdditionalDataLength = 13
    /// Additional data of a `tls12_cid` record without the CID:
    /// placeholder(8) type(1) cid_length(1) type(1) version(2) epoch(2) seq(6) length(2).
    static let connectionIDAdditionalDataBaseLength = 23
    /// Room enough for any additional data (a CID is at most 255 bytes).
    static let maximumAdditionalDataLength = connectionIDAdditionalDataBaseLength + 255
    /// `seq_num_placeholder` of RFC 9146 §5: eight 0xFF bytes where RFC 5246 has the sequence number.
    static let sequenceNumberPlaceholder: UInt8 = 0xFF

    /// The 64-bit value RFC 6347 §4.1.2.1 makes of a record's epoch and 48-bit sequence number.
    static func epochAndSequence(epoch: UInt16, sequenceNumber: UInt64) -> UInt64 {
        UInt64(epoch) << 48 | (sequenceNumber & 0xFFFF_FFFF_FFFF)
    }

    /// Writes `value` big-endian as `count` bytes at `offset`.
    static func write(_ value: UInt64, count: Int, into buffer: UnsafeMutableRawBufferPointer, at offset: Int) {
        for index in 0..<count {
            buffer[offset + index] = UInt8(truncatingIfNeeded: value >> UInt64(8 * (count - 1 - index)))
        }
    }

    /// Reads `count` bytes big-endian at `offset`.
    static func read(_ count: Int, from buffer: UnsafeRawBufferPointer, at offset: Int) -> UInt64 {
        var value: UInt64 = 0
        for index in 0..<count { value = value << 8 | UInt64(buffer[offset + index]) }
        return value
    }

    /// The 12-byte AEAD nonce into `nonce`.
    ///
    /// GCM (RFC 5288 §3) and CCM (RFC 6655 §3): the 4-byte write IV followed by
    /// the 8-byte explicit nonce the record carries. ChaCha20-Poly1305 (RFC 7905
    /// §2): the 12-byte write IV XORed with the 64-bit epoch and sequence number,
    /// left-padded with zeros.
    static func nonce(
        into nonce: UnsafeMutableRawBufferPointer, suite: RecordCipherSuite, iv: [UInt8], explicitNonce: UInt64
    ) {
        if suite.explicitNonceLength == 0 {
            for index in 0..<12 { nonce[index] = iv[index] }
            for index in 0..<8 {
                nonce[4 + index] ^= UInt8(truncatingIfNeeded: explicitNonce >> UInt64(8 * (7 - index)))
            }
        } else {
            for index in 0..<4 { nonce[index] = iv[index] }
            write(explicitNonce, count: 8, into: nonce, at: 4)
        }
    }

    /// The additional data of an ordinary record (RFC 5246 §6.2.3.3, RFC 6347 §4.1.2.1):
    /// epoch || seq || type || version || plaintext length. Returns its length.
    static func ordinaryAdditionalData(
        into aad: UnsafeMutableRawBufferPointer, contentType: UInt8, version: UInt16, epoch: UInt16,
        sequenceNumber: UInt64, plaintextLength: Int
    ) -> Int {
        write(epochAndSequence(epoch: epoch, sequenceNumber: sequenceNumber), count: 8, into: aad, at: 0)
        aad[8] = contentType
        write(UInt64(version), count: 2, into: aad, at: 9)
        write(UInt64(plaintextLength), count: 2, into: aad, at: 11)
        return ordinaryAdditionalDataLength
    }

    /// The additional data of a `tls12_cid` record (RFC 9146 §5): seq_num_placeholder ||
    /// 25 || cid_length || 25 || version || epoch || seq || cid || length of
    /// DTLSInnerPlaintext. Returns its length.
    static func connectionIDAdditionalData(
        into aad: UnsafeMutableRawBufferPointer, version: UInt16, epoch: UInt16, sequenceNumber: UInt64,
        connectionID: UnsafeRawBufferPointer, innerPlaintextLength: Int
    ) -> Int {
        let type = ConnectionIDRecordHeader.tls12CIDContentType
        for index in 0..<8 { aad[index] = sequenceNumberPlaceholder }
        aad[8] = type
        aad[9] = UInt8(connectionID.count)
        aad[10] = type
        write(UInt64(version), count: 2, into: aad, at: 11)
        write(epochAndSequence(epoch: epoch, sequenceNumber: sequenceNumber), count: 8, into: aad, at: 13)
        for (index, byte) in connectionID.enumerated() { aad[21 + index] = byte }
        write(UInt64(innerPlaintextLength), count: 2, into: aad, at: 21 + connectionID.count)
        return connectionIDAdditionalDataBaseLength + connectionID.count
    }
}
