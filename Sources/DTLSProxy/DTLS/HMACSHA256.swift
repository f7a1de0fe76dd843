import COpenSSL

/// HMAC-SHA256 (RFC 2104) with one key whose padded inner and outer blocks are
/// hashed once, up front: each message then costs two context copies and the
/// hashing of the message itself.
///
/// OpenSSL 3.0's one-shot `HMAC()` fetches the MAC and the digest from the
/// provider and keys a fresh context on every call, which costs several times
/// the hashing of a datagram; the cluster link authenticates every datagram it
/// forwards, so it keeps one of these per key.
///
/// Not for concurrent use: one working context is reused. `@unchecked
/// Sendable` because its owner (``ClusterKey`` inside the cluster link's
/// lock) only ever uses it under that lock.
final class HMACSHA256: @unchecked Sendable {
    static let length = 32
    private static let block = 64
    private let inner: OpaquePointer
    private let outer: OpaquePointer
    private let work: OpaquePointer

    init(key: [UInt8]) {
        var padded = key.count > Self.block ? Self.sha256(key) : key
        padded += [UInt8](repeating: 0, count: Self.block - padded.count)
        inner = Self.absorbing(padded.map { $0 ^ 0x36 })
        outer = Self.absorbing(padded.map { $0 ^ 0x5C })
        work = EVP_MD_CTX_new()!
        padded.withUnsafeMutableBytes { OPENSSL_cleanse($0.baseAddress, $0.count) }
    }

    deinit {
        EVP_MD_CTX_free(inner)
        EVP_MD_CTX_free(outer)
        EVP_MD_CTX_free(work)
    }

    /// The 32-byte tag of `message`.
    func tag(_ message: [UInt8]) -> [UInt8] {
        var innerHash = [UInt8](repeating: 0, count: Self.length)
        var output = [UInt8](repeating: 0, count: Self.length)
        var length: UInt32 = 0
        let done =
            EVP_MD_CTX_copy_ex(work, inner) == 1
            && message.withUnsafeBytes { EVP_DigestUpdate(work, $0.baseAddress, $0.count) } == 1
            && EVP_DigestFinal_ex(work, &innerHash, &length) == 1
            && EVP_MD_CTX_copy_ex(work, outer) == 1
            && EVP_DigestUpdate(work, innerHash, innerHash.count) == 1
            && EVP_DigestFinal_ex(work, &output, &length) == 1
        precondition(done, "HMAC-SHA256 failed: \(OpenSSLError.fromQueue("EVP_Digest"))")
        return output
    }

    private static func absorbing(_ block: [UInt8]) -> OpaquePointer {
        let context = EVP_MD_CTX_new()!
        let done =
            EVP_DigestInit_ex(context, EVP_sha256(), nil) == 1
            && EVP_DigestUpdate(context, block, block.count) == 1
        precondition(done, "SHA-256 init failed: \(OpenSSLError.fromQueue("EVP_DigestInit_ex"))")
        return context
    }

    private static func sha256(_ bytes: [UInt8]) -> [UInt8] {
        var output = [UInt8](repeating: 0, count: length)
        var size: UInt32 = 0
        precondition(EVP_Digest(bytes, bytes.count, &output, &size, EVP_sha256(), nil) == 1)
        return output
    }
}
