import COpenSSL

/// One `EVP_CIPHER_CTX` for one direction of one epoch: keyed once, then given
/// a new nonce for every record, as OpenSSL's own record layer does.
///
/// Not thread-safe and not Sendable: the context is mutated by every call, so
/// a sealer or opener belongs to the event loop of its session.
///
/// The OpenSSL calls per record (`EVP_CipherInit_ex` with only the nonce):
/// - GCM and ChaCha20-Poly1305: nonce, additional data, text, then the tag is
///   read (`EVP_CTRL_AEAD_GET_TAG`) after `EVP_EncryptFinal_ex`, or set
///   (`EVP_CTRL_AEAD_SET_TAG`) before `EVP_DecryptFinal_ex`, which checks it in
///   constant time.
/// - CCM: the nonce length (12) and tag length are fixed before the key; per
///   record the expected tag is set before anything else when opening, the
///   text length is announced (an update with no input or output) before the
///   additional data, and the text is processed in one update, which fails on
///   a bad tag.
final class RecordAEAD {
    let suite: RecordCipherSuite
    /// The fixed part of every nonce (the write IV of the key block).
    let iv: [UInt8]
    private let context: OpaquePointer
    private let encrypting: Bool

    /// One direction's cipher with `keys`; `connectionID` is only checked here
    /// (the sealer or opener that owns this keeps it).
    init(
        suite: RecordCipherSuite, keys: TrafficKeys, connectionID: [UInt8], encrypting: Bool
    ) throws(RecordProtectionError) {
        let key = keys.key
        guard key.count == suite.keyLength else {
            throw .invalidParameters("a \(key.count)-byte key; the suite needs \(suite.keyLength)")
        }
        guard keys.iv.count == suite.fixedIVLength else {
            throw .invalidParameters("a \(keys.iv.count)-byte IV; the suite needs \(suite.fixedIVLength)")
        }
        guard connectionID.count <= ConnectionIDExtension.maximumLength else {
            throw .invalidParameters("a \(connectionID.count)-byte CID")
        }
        guard let context = EVP_CIPHER_CTX_new() else {
            throw .openSSL(OpenSSLError.fromQueue("EVP_CIPHER_CTX_new"))
        }
        self.suite = suite
        iv = keys.iv
        self.context = context
        self.encrypting = encrypting
        let enc: Int32 = encrypting ? 1 : 0
        guard EVP_CipherInit_ex(context, suite.evpCipher, nil, nil, nil, enc) == 1 else {
            throw .openSSL(OpenSSLError.fromQueue("EVP_CipherInit_ex(cipher)"))
        }
        if suite.isCCM {
            guard EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_AEAD_SET_IVLEN, Int32(suite.nonceLength), nil) == 1 else {
                throw .openSSL(OpenSSLError.fromQueue("EVP_CIPHER_CTX_ctrl(EVP_CTRL_AEAD_SET_IVLEN)"))
            }
            guard EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_AEAD_SET_TAG, Int32(suite.tagLength), nil) == 1 else {
                throw .openSSL(OpenSSLError.fromQueue("EVP_CIPHER_CTX_ctrl(EVP_CTRL_AEAD_SET_TAG)"))
            }
        }
        let keyed = key.withUnsafeBufferPointer { EVP_CipherInit_ex(context, nil, nil, $0.baseAddress, nil, enc) }
        guard keyed == 1 else {
            throw .openSSL(OpenSSLError.fromQueue("EVP_CipherInit_ex(key)"))
        }
    }

    deinit {
        EVP_CIPHER_CTX_free(context)
    }

    /// Encrypts `text` in place and writes the tag into `tag` (`suite.tagLength` bytes).
    func seal(
        nonce: UnsafeRawBufferPointer, additionalData: UnsafeRawBufferPointer, text: UnsafeMutableRawBufferPointer,
        tag: UnsafeMutableRawBufferPointer
    ) throws(RecordProtectionError) {
        precondition(encrypting && tag.count == suite.tagLength && nonce.count == suite.nonceLength)
        var written: Int32 = 0
        guard EVP_EncryptInit_ex(context, nil, nil, nil, bytes(nonce)) == 1 else {
            throw .openSSL(OpenSSLError.fromQueue("EVP_EncryptInit_ex(nonce)"))
        }
        if suite.isCCM {
            guard EVP_EncryptUpdate(context, nil, &written, nil, Int32(text.count)) == 1 else {
                throw .openSSL(OpenSSLError.fromQueue("EVP_EncryptUpdate(CCM length)"))
            }
        }
        guard EVP_EncryptUpdate(context, nil, &written, bytes(additionalData), Int32(additionalData.count)) == 1 else {
            throw .openSSL(OpenSSLError.fromQueue("EVP_EncryptUpdate(additional data)"))
        }
        let out = text.baseAddress?.assumingMemoryBound(to: UInt8.self)
        guard EVP_EncryptUpdate(context, out, &written, out, Int32(text.count)) == 1, Int(written) == text.count else {
            throw .openSSL(OpenSSLError.fromQueue("EVP_EncryptUpdate"))
        }
        var finalBytes: Int32 = 0
        guard EVP_EncryptFinal_ex(context, out.map { $0 + text.count }, &finalBytes) == 1, finalBytes == 0 else {
            throw .openSSL(OpenSSLError.fromQueue("EVP_EncryptFinal_ex"))
        }
        guard EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_AEAD_GET_TAG, Int32(tag.count), tag.baseAddress) == 1 else {
            throw .openSSL(OpenSSLError.fromQueue("EVP_CIPHER_CTX_ctrl(EVP_CTRL_AEAD_GET_TAG)"))
        }
    }

    /// Decrypts `ciphertext` into `plaintext` (as long, and at least one byte of
    /// storage) if `tag` verifies; false when it does not or OpenSSL fails.
    /// The error queue is drained either way, so nothing is left for the next session.
    func open(
        nonce: UnsafeRawBufferPointer, additionalData: UnsafeRawBufferPointer, ciphertext: UnsafeRawBufferPointer,
        tag: UnsafeRawBufferPointer, plaintext: UnsafeMutableRawBufferPointer
    ) -> Bool {
        precondition(!encrypting && tag.count == suite.tagLength && nonce.count == suite.nonceLength)
        // Never a null input or output pointer: CCM reads (NULL input, output) as
        // "final" and would skip the tag check of an empty text.
        precondition(plaintext.count >= max(ciphertext.count, 1) && ciphertext.baseAddress != nil)
        let tagPointer = UnsafeMutableRawPointer(mutating: tag.baseAddress)
        var written: Int32 = 0
        var ok = EVP_DecryptInit_ex(context, nil, nil, nil, bytes(nonce)) == 1
        if ok && suite.isCCM {
            ok =
                EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_AEAD_SET_TAG, Int32(tag.count), tagPointer) == 1
                && EVP_DecryptUpdate(context, nil, &written, nil, Int32(ciphertext.count)) == 1
        }
        ok = ok && EVP_DecryptUpdate(context, nil, &written, bytes(additionalData), Int32(additionalData.count)) == 1
        let out = plaintext.baseAddress!.assumingMemoryBound(to: UInt8.self)
        ok = ok && EVP_DecryptUpdate(context, out, &written, bytes(ciphertext), Int32(ciphertext.count)) == 1
        ok = ok && Int(written) == ciphertext.count
        if ok && !suite.isCCM {
            ok = EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_AEAD_SET_TAG, Int32(tag.count), tagPointer) == 1
        }
        var finalBytes: Int32 = 0
        ok = ok && EVP_DecryptFinal_ex(context, out + ciphertext.count, &finalBytes) == 1 && finalBytes == 0
        if !ok { ERR_clear_error() }
        return ok
    }

    private func bytes(_ buffer: UnsafeRawBufferPointer) -> UnsafePointer<UInt8>? {
        buffer.baseAddress?.assumingMemoryBound(to: UInt8.self)
    }
}
