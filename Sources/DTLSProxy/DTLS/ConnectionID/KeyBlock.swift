import COpenSSL

/// Which end of a DTLS connection: the one whose write keys protect a record.
public enum ConnectionEnd: Sendable, Equatable {
    case client
    case server

    /// The other end.
    public var peer: ConnectionEnd { self == .client ? .server : .client }
}

/// The key and IV one end writes with (and the other end reads with).
public struct TrafficKeys: Equatable, Sendable {
    /// The AEAD key, `RecordCipherSuite.keyLength` bytes.
    public let key: [UInt8]
    /// The write IV: the implicit nonce part, `RecordCipherSuite.fixedIVLength` bytes.
    public let iv: [UInt8]

    public init(key: [UInt8], iv: [UInt8]) {
        self.key = key
        self.iv = iv
    }
}

/// The epoch-1 key block of a DTLS 1.2 session with an AEAD suite (RFC 5246 §6.3).
///
/// `key_block = PRF(master_secret, "key expansion", server_random + client_random)`,
/// cut in this order: client_write_key, server_write_key, client_write_IV,
/// server_write_IV. AEAD suites have no MAC keys, so those come first in RFC
/// 5246 with length zero. The PRF is OpenSSL's `TLS1-PRF` KDF with the suite's hash.
public struct KeyBlock: Equatable, Sendable {
    /// The label RFC 5246 §6.3 feeds to the PRF before the randoms.
    public static let label: [UInt8] = Array("key expansion".utf8)

    public let clientWriteKey: [UInt8]
    public let serverWriteKey: [UInt8]
    public let clientWriteIV: [UInt8]
    public let serverWriteIV: [UInt8]

    /// Cuts a key block already expanded for `suite`; nil when `bytes` is not `suite.keyBlockLength` long.
    public init?(splitting bytes: [UInt8], suite: RecordCipherSuite) {
        guard bytes.count == suite.keyBlockLength else { return nil }
        let keyLength = suite.keyLength
        let ivLength = suite.fixedIVLength
        clientWriteKey = Array(bytes[0..<keyLength])
        serverWriteKey = Array(bytes[keyLength..<2 * keyLength])
        clientWriteIV = Array(bytes[2 * keyLength..<2 * keyLength + ivLength])
        serverWriteIV = Array(bytes[(2 * keyLength + ivLength)...])
    }

    /// Derives the key block of a session: from the 48-byte master secret and the two 32-byte hello randoms.
    public init(
        masterSecret: [UInt8], clientRandom: [UInt8], serverRandom: [UInt8], suite: RecordCipherSuite
    ) throws(KeyDerivationError) {
        let bytes = try Self.expand(
            masterSecret: masterSecret, clientRandom: clientRandom, serverRandom: serverRandom, suite: suite)
        self.init(splitting: bytes, suite: suite)!
    }

    /// The keys `end` writes with.
    public func writeKeys(of end: ConnectionEnd) -> TrafficKeys {
        switch end {
        case .client: TrafficKeys(key: clientWriteKey, iv: clientWriteIV)
        case .server: TrafficKeys(key: serverWriteKey, iv: serverWriteIV)
        }
    }

    /// The raw key block: `suite.keyBlockLength` bytes of the PRF output.
    public static func expand(
        masterSecret: [UInt8], clientRandom: [UInt8], serverRandom: [UInt8], suite: RecordCipherSuite
    ) throws(KeyDerivationError) -> [UInt8] {
        guard masterSecret.count == 48 else { throw .badLength("master secret", masterSecret.count) }
        guard clientRandom.count == 32 else { throw .badLength("client random", clientRandom.count) }
        guard serverRandom.count == 32 else { throw .badLength("server random", serverRandom.count) }
        return try prf(
            secret: masterSecret, label: label, seed: serverRandom + clientRandom, digest: suite.prfDigestName,
            length: suite.keyBlockLength)
    }

    /// `PRF(secret, label, seed)` of RFC 5246 §5 with the hash `digest` (an OpenSSL name such as `SHA256`).
    public static func prf(
        secret: [UInt8], label: [UInt8], seed: [UInt8], digest: String, length: Int
    ) throws(KeyDerivationError) -> [UInt8] {
        guard let kdf = EVP_KDF_fetch(nil, "TLS1-PRF", nil) else {
            throw .openSSL(OpenSSLError.fromQueue("EVP_KDF_fetch(TLS1-PRF)"))
        }
        defer { EVP_KDF_free(kdf) }
        guard let ctx = EVP_KDF_CTX_new(kdf) else {
            throw .openSSL(OpenSSLError.fromQueue("EVP_KDF_CTX_new"))
        }
        defer { EVP_KDF_CTX_free(ctx) }
        let fullSeed = label + seed
        var output = [UInt8](repeating: 0, count: length)
        let result = secret.withUnsafeBufferPointer { secretBytes in
            fullSeed.withUnsafeBufferPointer { seedBytes in
                output.withUnsafeMutableBufferPointer { out in
                    dp_EVP_KDF_derive_tls1_prf(
                        ctx, digest, secretBytes.baseAddress, secretBytes.count, seedBytes.baseAddress,
                        seedBytes.count, out.baseAddress, out.count)
                }
            }
        }
        guard result == 1 else {
            throw .openSSL(OpenSSLError.fromQueue("EVP_KDF_derive(TLS1-PRF, \(digest))"))
        }
        return output
    }
}

/// Why a key block could not be derived.
public enum KeyDerivationError: Error, Sendable {
    /// An input had the wrong length: which one, and its length.
    case badLength(String, Int)
    /// The session's suite is not an AEAD suite this project can protect records with.
    case unsupportedCipher(String)
    /// OpenSSL refused; its error queue has been drained into the error.
    case openSSL(OpenSSLError)
}
