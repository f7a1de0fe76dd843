import NIOCore
import Testing

@testable import DTLSProxy

@Suite("Per-source handshake rate")
struct SourceRateLimiterTests {
    let start = NIODeadline.uptimeNanoseconds(1_000_000_000_000)
    let alice = try! SocketAddress(ipAddress: "127.0.0.1", port: 4000)
    let aliceOtherPort = try! SocketAddress(ipAddress: "127.0.0.1", port: 4001)
    let bob = try! SocketAddress(ipAddress: "127.0.0.2", port: 4000)

    @Test func burstThenRefill() {
        var limiter = SourceRateLimiter(ratePerSecond: 3)
        let burst = (0..<3).map { _ in limiter.admit(alice, now: start) }
        #expect(burst == [true, true, true], "a burst of the rate passes")
        let admitted1 = limiter.admit(alice, now: start)
        #expect(!admitted1, "the fourth in the same instant is refused")
        let admitted2 = limiter.admit(alice, now: start + .milliseconds(300))
        #expect(!admitted2, "a third of a second buys less than a token")
        let admitted3 = limiter.admit(alice, now: start + .milliseconds(400))
        #expect(admitted3)
        let admitted4 = limiter.admit(alice, now: start + .milliseconds(400))
        #expect(!admitted4)
    }

    @Test func portsShareTheirAddressBucketButHostsDoNot() {
        var limiter = SourceRateLimiter(ratePerSecond: 1)
        let admitted5 = limiter.admit(alice, now: start)
        #expect(admitted5)
        let admitted6 = limiter.admit(aliceOtherPort, now: start)
        #expect(!admitted6, "a new port is the same source")
        let admitted7 = limiter.admit(bob, now: start)
        #expect(admitted7, "another address has its own bucket")
    }

    @Test func zeroMeansUnlimited() {
        var limiter = SourceRateLimiter(ratePerSecond: 0)
        let all = (0..<10_000).map { _ in limiter.admit(alice, now: start) }
        #expect(!all.contains(false))
        #expect(limiter.trackedSources == 0)
    }

    @Test func tableStaysBoundedByForgettingIdleSources() throws {
        var limiter = SourceRateLimiter(ratePerSecond: 5, capacity: 100)
        for index in 0..<100 {
            let peer = try SocketAddress(ipAddress: "10.0.\(index / 250).\(index % 250)", port: 1)
            let admitted8 = limiter.admit(peer, now: start)
            #expect(admitted8)
        }
        #expect(limiter.trackedSources == 100)
        // A second later every bucket has refilled: they are forgotten to make room.
        let admitted9 = limiter.admit(bob, now: start + .seconds(1))
        #expect(admitted9)
        #expect(limiter.trackedSources == 1)
    }
}
