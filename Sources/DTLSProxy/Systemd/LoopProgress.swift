import Atomics
import NIOConcurrencyHelpers
import NIOCore

/// Whether every event loop still runs its tasks: each loop checks in from a
/// task scheduled on itself every `interval`, and a loop whose last check-in
/// is older than some threshold is stale (stuck in a call, spinning).
///
/// One instance serves both views of the daemon's liveness: systemd's
/// watchdog (``Watchdog``, which withholds `WATCHDOG=1`) and `/healthz`
/// (``HealthState``, which answers 503), each with its own threshold. It runs
/// whether or not systemd asked for a watchdog. A check-in is one relaxed
/// atomic store per loop per interval: nothing on the datagram path.
public final class LoopProgress: Sendable {
    /// How often every loop checks in.
    public let interval: TimeAmount
    private let loops: [EventLoop]
    private let checkIns: [ManagedAtomic<Int64>]
    private let tasks = NIOLockedValueBox<[RepeatedTask]>([])

    /// The check-in interval `/healthz` needs on its own; a systemd watchdog may ask for a shorter one.
    public static let defaultInterval: TimeAmount = .milliseconds(500)

    public init(loops: [EventLoop], interval: TimeAmount = LoopProgress.defaultInterval) {
        self.interval = .nanoseconds(max(1, interval.nanoseconds))
        self.loops = loops
        // Every loop counts as just checked in: a loop is not stale before it had a chance to run.
        let now = Int64(NIODeadline.now().uptimeNanoseconds)
        self.checkIns = loops.map { _ in ManagedAtomic(now) }
    }

    /// Starts every loop's check-in task.
    public func start() {
        let started = loops.enumerated().map { index, loop in
            let slot = checkIns[index]
            return loop.scheduleRepeatedTask(initialDelay: .zero, delay: interval) { _ in
                slot.store(Int64(NIODeadline.now().uptimeNanoseconds), ordering: .relaxed)
            }
        }
        tasks.withLockedValue { $0 = started }
    }

    /// Indexes of the loops that have not checked in within `threshold` before `now` (nanoseconds of uptime).
    public func staleLoops(now: Int64, threshold: TimeAmount) -> [Int] {
        checkIns.indices.filter { now - checkIns[$0].load(ordering: .relaxed) > threshold.nanoseconds }
    }

    /// Cancels the check-in tasks.
    public func stop() {
        for task in tasks.withLockedValue({ $0 }) { task.cancel() }
    }
}
