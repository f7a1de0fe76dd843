/// Why a record could not be sealed or opened.
///
/// Opening fails with one of these on any input, never with a trap; each case
/// names one check, so a test (or a counter) can tell them apart.
public enum RecordProtectionError: Error, Equatable, Sendable {
    /// The record header did not parse (see `RecordHeaderError`).
    case malformedHeader(RecordHeaderError)
    /// The bytes given hold more than the one record their header describes.
    case trailingBytes(Int)
    /// The record is of another epoch than the keys.
    case wrongEpoch(UInt16)
    /// The fragment is shorter than explicit nonce plus tag (plus one byte of
    /// DTLSInnerPlaintext for a `tls12_cid` record).
    case tooShort(Int)
    /// The fragment is longer than RFC 5246 §6.2.3 allows a ciphertext (2^14 + 2048 bytes).
    case tooLong(Int)
    /// A `tls12_cid` record whose CID is not the one this side issued.
    case connectionIDMismatch
    /// An ordinary protected record although this side issued a non-empty CID
    /// (RFC 9146 §3: such a datagram must be dropped).
    case connectionIDMissing
    /// A `tls12_cid` record although this side asked for a zero-length CID.
    case unexpectedConnectionID
    /// The AEAD tag did not verify: forged, corrupted, or another key.
    case authenticationFailed
    /// The DTLSInnerPlaintext is all zeros: no content type (RFC 9146 §4).
    case noContentType
    /// Sealing: a plaintext longer than 2^14 bytes, or padding that makes the
    /// fragment longer than 2^14 + 2048 bytes (the length asked for is given).
    case plaintextTooLong(Int)
    /// Sealing: padding asked for a record without a CID, or a negative amount.
    case invalidPadding(Int)
    /// Sealing: a sequence number that does not fit in 48 bits.
    case sequenceNumberOverflow
    /// Setting up: a key or IV of the wrong length for the suite, or a CID over 255 bytes.
    case invalidParameters(String)
    /// An OpenSSL call other than tag verification failed; its queue was drained into the error.
    case openSSL(OpenSSLError)
}
