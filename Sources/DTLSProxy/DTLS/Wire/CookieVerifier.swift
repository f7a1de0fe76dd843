import COpenSSL
import Foundation

/// Stateless DTLS cookies (RFC 6347 §4.2.1): an HMAC over the client's
/// address and port, so a ClientHello costs nothing until it proves the
/// client can receive at that address.
///
/// The HMAC key rotates every `rotationPeriod`: the key for period `n` is
/// HMAC-SHA256(master secret, "dtls-proxyd cookie" ‖ n), with `n` taken from
/// wall-clock time. A cookie minted in the previous period is still accepted,
/// so a cookie lives between one and two periods. Deriving the period keys
/// from the time, not from a timer, lets several instances that share a
/// `cookie_secret_file` accept each other's cookies without talking.
///
/// Not thread-safe: each event loop owns its own verifier.
public final class CookieVerifier {
    /// Cookie length in bytes: a full HMAC-SHA256.
    public static let cookieLength = 32

    private let masterSecret: [UInt8]
    private let rotationPeriod: Int64
    private let clock: () -> Int64
    private var cachedPeriod: Int64 = .min
    private var currentKey: [UInt8] = []
    private var previousKey: [UInt8] = []

    /// - Parameters:
    ///   - masterSecret: at least 16 bytes; from `cookie_secret_file` or random per start.
    ///   - rotationPeriodSeconds: how long one HMAC key is minted with.
    ///   - clock: seconds since the epoch; tests pass their own.
    public init(
        masterSecret: [UInt8], rotationPeriodSeconds: Int64 = 60, clock: @escaping () -> Int64 = { Int64(time(nil)) }
    ) {
        precondition(masterSecret.count >= 16, "cookie secret too short")
        precondition(rotationPeriodSeconds > 0)
        self.masterSecret = masterSecret
        self.rotationPeriod = rotationPeriodSeconds
        self.clock = clock
    }

    /// A random master secret of 32 bytes, for when no `cookie_secret_file` is configured.
    public static func randomSecret() -> [UInt8] {
        var secret = [UInt8](repeating: 0, count: 32)
        let ok = secret.withUnsafeMutableBufferPointer { RAND_bytes($0.baseAddress, 32) }
        precondition(ok == 1, "RAND_bytes failed: \(OpenSSLError.fromQueue("RAND_bytes"))")
        return secret
    }

    /// The cookie for a client at `addressMaterial` (its address bytes and port), minted now.
    public func cookie(for addressMaterial: [UInt8]) -> [UInt8] {
        refreshKeys()
        return Self.hmac(key: currentKey, data: addressMaterial)
    }

    /// True when `cookie` was minted for `addressMaterial` in this period or the previous one.
    public func verify(_ cookie: [UInt8], for addressMaterial: [UInt8]) -> Bool {
        guard cookie.count == Self.cookieLength else { return false }
        refreshKeys()
        return Self.constantTimeEqual(cookie, Self.hmac(key: currentKey, data: addressMaterial))
            || Self.constantTimeEqual(cookie, Self.hmac(key: previousKey, data: addressMaterial))
    }

    private func refreshKeys() {
        let period = clock() / rotationPeriod
        guard period != cachedPeriod else { return }
        currentKey = periodKey(period)
        previousKey = periodKey(period - 1)
        cachedPeriod = period
    }

    private func periodKey(_ period: Int64) -> [UInt8] {
        var label = Array("dtls-proxyd cookie".utf8)
        withUnsafeBytes(of: period.bigEndian) { label.append(contentsOf: $0) }
        return Self.hmac(key: masterSecret, data: label)
    }

    static func hmac(key: [UInt8], data: [UInt8]) -> [UInt8] {
        var output = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var outputLength: UInt32 = 0
        let result = key.withUnsafeBufferPointer { keyBytes in
            data.withUnsafeBufferPointer { dataBytes in
                output.withUnsafeMutableBufferPointer { out in
                    HMAC(
                        EVP_sha256(), keyBytes.baseAddress, Int32(keyBytes.count),
                        dataBytes.baseAddress, dataBytes.count, out.baseAddress, &outputLength)
                }
            }
        }
        precondition(result != nil, "HMAC-SHA256 failed: \(OpenSSLError.fromQueue("HMAC"))")
        return Array(output.prefix(Int(outputLength)))
    }

    static func constantTimeEqual(_ lhs: [UInt8], _ rhs: [UInt8]) -> Bool {
        guard lhs.count == rhs.count else { return false }
        var difference: UInt8 = 0
        for index in lhs.indices { difference |= lhs[index] ^ rhs[index] }
        return difference == 0
    }
}
