import Testing

@testable import DTLSProxy

@Suite("HMAC-SHA256 with precomputed pads")
struct HMACSHA256Tests {
    private func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

    @Test func rfc4231Vectors() {
        // RFC 4231 test case 2 (a short key) and case 6 (a key longer than the block, hashed first).
        #expect(
            hex(HMACSHA256(key: Array("Jefe".utf8)).tag(Array("what do ya want for nothing?".utf8)))
                == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        #expect(
            hex(
                HMACSHA256(key: [UInt8](repeating: 0xAA, count: 131)).tag(
                    Array("Test Using Larger Than Block-Size Key - Hash Key First".utf8)))
                == "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54")
    }

    @Test func agreesWithOpenSSLsOneShotHMACMessageAfterMessage() {
        let key = (0..<32).map { UInt8($0 * 7 & 0xFF) }
        let mac = HMACSHA256(key: key)
        for length in [0, 1, 55, 56, 63, 64, 65, 1200, 4000] {
            let message = (0..<length).map { UInt8(($0 * 31 + length) & 0xFF) }
            #expect(mac.tag(message) == CookieVerifier.hmac(key: key, data: message), "length \(length)")
        }
    }
}
