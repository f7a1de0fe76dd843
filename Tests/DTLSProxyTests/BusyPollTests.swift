import Glibc
import NIOCore
import Testing

@testable import DTLSProxy

/// `busy_poll`: the spin ends the moment a watched socket is readable, lasts
/// no longer than its window when none is, forgets what it watched, and does
/// nothing at all when off. The clock is the test's own, so nothing here
/// depends on how fast the machine is.
@Suite("Busy poll")
struct BusyPollTests {
    /// A clock that moves `step` on every reading, counting the readings.
    private final class SteppingClock {
        var now = NIODeadline.uptimeNanoseconds(1_000_000_000)
        var readings = 0
        let step: TimeAmount
        init(step: TimeAmount) { self.step = step }
        func read() -> NIODeadline {
            readings += 1
            defer { now = now + step }
            return now
        }
    }

    /// Runs `body` with two loopback UDP sockets, `a` connected to `b`; closes them.
    private func withPair(_ body: (_ a: CInt, _ b: CInt) throws -> Void) throws {
        let a = socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        let b = socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        defer {
            close(a)
            close(b)
        }
        let loopback = try SocketAddress(ipAddress: "127.0.0.1", port: 0)
        _ = loopback.withSockAddr { bind(b, $0, socklen_t($1)) }
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(b, $0, &length) }
        }
        _ = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(a, $0, length) }
        }
        try body(a, b)
    }

    /// A busy poll with `window` (zero: off) that watches `descriptor`.
    private func watching(_ descriptor: CInt, window: TimeAmount) -> BusyPoll {
        var busyPoll = BusyPoll()
        busyPoll.window = window
        busyPoll.watch(descriptor)
        return busyPoll
    }

    @Test("a datagram waiting on a watched socket ends the spin at its first poll")
    func readableEndsTheSpin() throws {
        try withPair { a, b in
            var busyPoll = watching(b, window: .seconds(3600))
            #expect(send(a, "x", 1, 0) == 1)
            let clock = SteppingClock(step: .microseconds(1))
            #expect(busyPoll.spin(now: clock.read) == .ready)
            // The deadline is read once, the poll found the datagram: no further reading.
            #expect(clock.readings == 1)
            // The datagram is still there for the loop to read.
            var byte: UInt8 = 0
            #expect(recv(b, &byte, 1, 0) == 1 && byte == UInt8(ascii: "x"))
        }
    }

    @Test("with nothing readable the spin lasts its window, then ends")
    func quietSocketTimesOut() throws {
        try withPair { _, b in
            var busyPoll = watching(b, window: .microseconds(50))
            let clock = SteppingClock(step: .microseconds(1))
            #expect(busyPoll.spin(now: clock.read) == .timedOut)
            // One reading for the deadline, then one per poll until 50 µs have passed.
            #expect(clock.readings == 51)
        }
    }

    @Test("a spin forgets what it watched: the next one watches only what was added since")
    func watchedSocketsAreForgotten() throws {
        try withPair { a, b in
            var busyPoll = watching(b, window: .microseconds(10))
            #expect(busyPoll.spin(now: SteppingClock(step: .microseconds(1)).read) == .timedOut)
            #expect(send(a, "x", 1, 0) == 1)
            // b is readable now, but nothing is watched any more.
            #expect(busyPoll.spin(now: SteppingClock(step: .microseconds(1)).read) == .skipped)
        }
    }

    @Test("off, it watches nothing and never spins")
    func offNeverSpins() throws {
        try withPair { a, b in
            var busyPoll = watching(b, window: .zero)
            #expect(send(a, "x", 1, 0) == 1)
            let clock = SteppingClock(step: .microseconds(1))
            #expect(busyPoll.spin(now: clock.read) == .skipped)
            #expect(clock.readings == 0)
        }
    }

    @Test("a socket closed before the spin ends it early instead of being waited on")
    func closedDescriptorEndsTheSpin() throws {
        let descriptor = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        var busyPoll = watching(descriptor, window: .seconds(3600))
        close(descriptor)
        #expect(busyPoll.spin(now: SteppingClock(step: .microseconds(1)).read) == .ready)
    }
}
