import Atomics
import Logging
import NIOCore
import NIOPosix
import Testing

@testable import DTLSProxy

@Suite("Watchdog")
struct WatchdogTests {
    /// A wedged event loop must stop the heartbeat, and it resumes when the loop does.
    @Test("a wedged event loop withholds WATCHDOG=1 until it runs again")
    func wedgedLoopStopsHeartbeat() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let loops = Array(group.makeIterator())
        let beats = ManagedAtomic(0)
        // WATCHDOG_USEC = 400 ms: a beat is due every 200 ms, loops check in every 100 ms.
        let interval = Watchdog.checkInInterval(watchdogMicroseconds: 400_000)
        #expect(interval == .milliseconds(100))
        let progress = LoopProgress(loops: loops, interval: interval)
        let watchdog = Watchdog(watchdogMicroseconds: 400_000, progress: progress, logger: Logger(label: "test")) {
            beats.wrappingIncrement(ordering: .relaxed)
        }
        #expect(watchdog.period == .milliseconds(200))
        progress.start()
        let heartbeat = Task { await watchdog.run() }

        // Polled rather than slept: on a loaded machine (the unit tests run in parallel,
        // beside builds) a loop's check-in may come seconds late.
        #expect(
            await Self.eventually(within: .seconds(15)) { beats.load(ordering: .relaxed) >= 2 },
            "healthy loops keep the heartbeat going")

        loops[1].execute { usleep(2_000_000) }  // wedge loop 1 for 2 s
        try await Task.sleep(for: .milliseconds(500))
        let whileWedged = beats.load(ordering: .relaxed)
        #expect(watchdog.staleLoops(now: Int64(NIODeadline.now().uptimeNanoseconds)) == [1])
        try await Task.sleep(for: .seconds(1))
        #expect(beats.load(ordering: .relaxed) == whileWedged, "no WATCHDOG=1 while loop 1 is wedged")

        // The loop runs again 2 s after it was wedged, 0.5 s from now.
        #expect(
            await Self.eventually(within: .seconds(15)) { beats.load(ordering: .relaxed) > whileWedged },
            "the heartbeat resumes with the loop")
        #expect(
            await Self.eventually(within: .seconds(2)) {
                watchdog.staleLoops(now: Int64(NIODeadline.now().uptimeNanoseconds)).isEmpty
            })

        heartbeat.cancel()
        await heartbeat.value
        progress.stop()
        try await group.shutdownGracefully()
    }

    /// Whether `condition` holds within `limit`, checked every 50 ms.
    private static func eventually(within limit: Duration, _ condition: () -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            if condition() { return true }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return condition()
    }
}
