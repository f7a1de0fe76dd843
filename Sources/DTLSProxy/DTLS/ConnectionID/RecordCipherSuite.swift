import COpenSSL

/// The AEAD record protection of a DTLS 1.2 cipher suite, as far as the record
/// layer needs it: cipher, key and IV lengths, tag length and the PRF hash.
///
/// Only AEAD suites have a case. RFC 9146 leaves CID with block ciphers to
/// encrypt-then-MAC framing that this project does not implement, so a suite
/// for which `init?(cipher:)` returns nil must never be used with a CID.
public enum RecordCipherSuite: Sendable, CaseIterable {
    /// AES-128-GCM (RFC 5288), SHA-256 PRF.
    case aes128GCM
    /// AES-256-GCM (RFC 5288), SHA-384 PRF.
    case aes256GCM
    /// ChaCha20-Poly1305 (RFC 7905), SHA-256 PRF.
    case chacha20Poly1305
    /// AES-128-CCM with a 16-byte tag (RFC 6655, RFC 7251), SHA-256 PRF.
    case aes128CCM
    /// AES-128-CCM with an 8-byte tag (RFC 6655, RFC 7251), SHA-256 PRF.
    case aes128CCM8

    /// The suite of an OpenSSL cipher, or nil when it is not one of the AEAD
    /// suites above (a CBC suite, a TLS 1.3 suite, AES-256-CCM, ...).
    ///
    /// The AEAD comes from `SSL_CIPHER_get_cipher_nid`; CCM and CCM-8 share a
    /// NID and differ only in the name, which ends in `CCM8` for the short tag.
    /// The PRF hash is checked against `SSL_CIPHER_get_handshake_digest`.
    public init?(cipher: OpaquePointer) {
        guard SSL_CIPHER_is_aead(cipher) == 1, SSL_CIPHER_get_kx_nid(cipher) != NID_kx_any,
            let namePointer = SSL_CIPHER_get_name(cipher)
        else { return nil }
        let name = String(cString: namePointer)
        switch SSL_CIPHER_get_cipher_nid(cipher) {
        case NID_aes_128_gcm: self = .aes128GCM
        case NID_aes_256_gcm: self = .aes256GCM
        case NID_chacha20_poly1305: self = .chacha20Poly1305
        case NID_aes_128_ccm: self = name.hasSuffix("CCM8") ? .aes128CCM8 : .aes128CCM
        default: return nil
        }
        guard let digest = SSL_CIPHER_get_handshake_digest(cipher), let digestName = EVP_MD_get0_name(digest),
            String(cString: digestName) == prfDigestName
        else { return nil }
    }

    /// The suite OpenSSL calls `name` (e.g. `ECDHE-ECDSA-AES128-CCM8`), looked up
    /// in OpenSSL's own cipher table; nil for an unknown or non-AEAD suite.
    public init?(openSSLName name: String) {
        guard let ctx = SSL_CTX_new(DTLS_method()) else {
            OpenSSLError.drain()
            return nil
        }
        defer { SSL_CTX_free(ctx) }
        var found: RecordCipherSuite?
        if SSL_CTX_set_cipher_list(ctx, name) == 1, let ciphers = SSL_CTX_get_ciphers(ctx) {
            for index in 0..<dp_sk_SSL_CIPHER_num(ciphers) {
                guard let cipher = dp_sk_SSL_CIPHER_value(ciphers, index),
                    let cipherName = SSL_CIPHER_get_name(cipher), String(cString: cipherName) == name
                else { continue }
                found = RecordCipherSuite(cipher: cipher)
                break
            }
        }
        OpenSSLError.drain()
        guard let found else { return nil }
        self = found
    }

    /// The length of each write key.
    public var keyLength: Int {
        switch self {
        case .aes128GCM, .aes128CCM, .aes128CCM8: 16
        case .aes256GCM, .chacha20Poly1305: 32
        }
    }

    /// The length of each write IV from the key block: the implicit part of the nonce.
    public var fixedIVLength: Int {
        self == .chacha20Poly1305 ? 12 : 4
    }

    /// The nonce bytes each record carries before its ciphertext (epoch and sequence number).
    public var explicitNonceLength: Int {
        self == .chacha20Poly1305 ? 0 : 8
    }

    /// The length of the AEAD nonce: 12 for every suite here.
    public var nonceLength: Int { 12 }

    /// The length of the authentication tag at the end of each record.
    public var tagLength: Int {
        self == .aes128CCM8 ? 8 : 16
    }

    /// What a record's fragment adds to its (inner) plaintext: explicit nonce and tag.
    public var recordOverhead: Int { explicitNonceLength + tagLength }

    /// The hash of the suite's PRF as OpenSSL names it (`EVP_MD_get0_name`).
    public var prfDigestName: String {
        self == .aes256GCM ? "SHA384" : "SHA256"
    }

    /// The key block length: two keys and two IVs (AEAD suites have no MAC keys).
    public var keyBlockLength: Int { 2 * (keyLength + fixedIVLength) }

    /// The OpenSSL cipher, for `EVP_EncryptInit_ex` and `EVP_DecryptInit_ex`.
    var evpCipher: OpaquePointer? {
        switch self {
        case .aes128GCM: EVP_aes_128_gcm()
        case .aes256GCM: EVP_aes_256_gcm()
        case .chacha20Poly1305: EVP_chacha20_poly1305()
        case .aes128CCM, .aes128CCM8: EVP_aes_128_ccm()
        }
    }

    /// Whether the cipher is CCM, whose OpenSSL calls differ (tag and length set up front).
    var isCCM: Bool { self == .aes128CCM || self == .aes128CCM8 }
}
