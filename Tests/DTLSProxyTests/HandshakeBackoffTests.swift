import NIOCore
import Testing

@testable import DTLSProxy

@Suite("Connector handshake back-off")
struct HandshakeBackoffTests {
    private let start = NIODeadline.uptimeNanoseconds(1_000_000_000_000)

    @Test func pausesDoubleUpToTheMaximum() {
        var backoff = HandshakeBackoff()
        #expect(backoff.allows(start))
        let pauses = (0..<10).map { _ in backoff.failed(at: start).nanoseconds / 1_000_000 }
        #expect(pauses == [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000, 30000])
    }

    @Test func noSessionStartsDuringAPause() {
        var backoff = HandshakeBackoff()
        backoff.failed(at: start)
        #expect(!backoff.allows(start + .milliseconds(499)))
        #expect(backoff.allows(start + .milliseconds(500)))
        backoff.failed(at: start + .milliseconds(500))
        #expect(!backoff.allows(start + .milliseconds(1499)))
        #expect(backoff.allows(start + .milliseconds(1500)))
    }

    @Test func aCompletedHandshakeClearsIt() {
        var backoff = HandshakeBackoff()
        for _ in 0..<5 { backoff.failed(at: start) }
        backoff.succeeded()
        #expect(backoff.allows(start) && backoff.failures == 0)
        #expect(backoff.failed(at: start) == .milliseconds(500))
    }
}
