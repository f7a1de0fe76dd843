import Foundation
import Testing

@testable import DTLSProxy

/// A clock the test moves by hand.
final class ManualClock: @unchecked Sendable {
    var now: Int64
    init(_ now: Int64) { self.now = now }
}

@Suite("Cookie HMAC")
struct CookieVerifierTests {
    let secret = Array(repeating: UInt8(7), count: 32)
    let alice: [UInt8] = [4, 127, 0, 0, 1, 0x13, 0x88]
    let bob: [UInt8] = [4, 127, 0, 0, 1, 0x13, 0x89]

    @Test func cookieVerifiesForItsAddressOnly() {
        let clock = ManualClock(1_000_000)
        let verifier = CookieVerifier(masterSecret: secret, rotationPeriodSeconds: 60, clock: { clock.now })
        let cookie = verifier.cookie(for: alice)
        #expect(cookie.count == CookieVerifier.cookieLength)
        #expect(verifier.verify(cookie, for: alice))
        #expect(!verifier.verify(cookie, for: bob))
    }

    @Test func previousPeriodStaysValidThenExpires() {
        let clock = ManualClock(6_000)
        let verifier = CookieVerifier(masterSecret: secret, rotationPeriodSeconds: 60, clock: { clock.now })
        let cookie = verifier.cookie(for: alice)
        clock.now += 60
        #expect(verifier.verify(cookie, for: alice), "one rotation later the previous key still verifies")
        #expect(verifier.cookie(for: alice) != cookie, "the key rotated")
        clock.now += 60
        #expect(!verifier.verify(cookie, for: alice), "two rotations later the cookie is dead")
    }

    @Test func instancesSharingASecretAcceptEachOthersCookies() {
        let clock = ManualClock(123_456)
        let first = CookieVerifier(masterSecret: secret, clock: { clock.now })
        let second = CookieVerifier(masterSecret: secret, clock: { clock.now })
        let other = CookieVerifier(masterSecret: Array(repeating: 8, count: 32), clock: { clock.now })
        let cookie = first.cookie(for: alice)
        #expect(second.verify(cookie, for: alice))
        #expect(!other.verify(cookie, for: alice))
    }

    @Test func rejectsTamperedAndMisSizedCookies() {
        let verifier = CookieVerifier(masterSecret: secret)
        var cookie = verifier.cookie(for: alice)
        cookie[5] ^= 1
        #expect(!verifier.verify(cookie, for: alice))
        #expect(!verifier.verify([], for: alice))
        #expect(!verifier.verify(Array(verifier.cookie(for: alice).prefix(16)), for: alice))
    }

    @Test func hmacMatchesRFC4231TestCase2() {
        // RFC 4231 §4.3: key "Jefe", data "what do ya want for nothing?".
        let mac = CookieVerifier.hmac(key: Array("Jefe".utf8), data: Array("what do ya want for nothing?".utf8))
        let hex = mac.map { String(format: "%02x", $0) }.joined()
        #expect(hex == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
    }

    @Test func randomSecretsDiffer() {
        #expect(CookieVerifier.randomSecret() != CookieVerifier.randomSecret())
        #expect(CookieVerifier.randomSecret().count == 32)
    }
}
