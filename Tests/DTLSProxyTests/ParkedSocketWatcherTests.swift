import Atomics
import Glibc
import Testing

@testable import DTLSProxy

/// The watcher behind parked backend sockets, on a real pair of datagram sockets.
@Suite("Parked socket watcher", .serialized)
struct ParkedSocketWatcherTests {
    @Test("a parked socket that becomes readable is reported once, and not after unwatch")
    func reportsOnceAndNotAfterUnwatch() async throws {
        var pair: [CInt] = [-1, -1]
        #expect(socketpair(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0, &pair) == 0)
        defer { close(pair[0]); close(pair[1]) }
        let watcher = ParkedSocketWatcher.shared
        let wakeUps = ManagedAtomic(0)

        #expect(watcher.watch(pair[0]) { wakeUps.wrappingIncrement(ordering: .relaxed) })
        try await Task.sleep(for: .milliseconds(100))
        #expect(wakeUps.load(ordering: .relaxed) == 0, "nothing to read yet")

        #expect(send(pair[1], "a", 1, 0) == 1)
        #expect(await Self.eventually { wakeUps.load(ordering: .relaxed) == 1 })
        // EPOLLONESHOT: a second datagram while the first is unread brings no second report.
        #expect(send(pair[1], "b", 1, 0) == 1)
        try await Task.sleep(for: .milliseconds(200))
        #expect(wakeUps.load(ordering: .relaxed) == 1)
        watcher.unwatch(pair[0])

        // Watched again while readable: reported at once. Unwatched before data: never.
        #expect(watcher.watch(pair[0]) { wakeUps.wrappingIncrement(ordering: .relaxed) })
        #expect(await Self.eventually { wakeUps.load(ordering: .relaxed) == 2 })
        watcher.unwatch(pair[0])
        var drain = [UInt8](repeating: 0, count: 8)
        while recv(pair[0], &drain, drain.count, Int32(MSG_DONTWAIT)) > 0 {}
        #expect(watcher.watch(pair[0]) { wakeUps.wrappingIncrement(ordering: .relaxed) })
        watcher.unwatch(pair[0])
        #expect(send(pair[1], "c", 1, 0) == 1)
        try await Task.sleep(for: .milliseconds(200))
        #expect(wakeUps.load(ordering: .relaxed) == 2)
        #expect(watcher.watchedCount == 0)
    }

    @Test("a descriptor that cannot be watched is refused, so the caller keeps its channel")
    func refusesBadDescriptor() {
        #expect(!ParkedSocketWatcher.shared.watch(-1) {})
        #expect(ParkedSocketWatcher.shared.watchedCount == 0)
    }

    private static func eventually(within limit: Duration = .seconds(5), _ condition: () -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            if condition() { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return condition()
    }
}
