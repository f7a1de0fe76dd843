import CSystemd
import Logging
import NIOCore

/// systemd's watchdog (`WatchdogSec=`), fed by the event loops' own progress.
///
/// A timer thread that sends `WATCHDOG=1` regardless would keep a daemon with
/// a wedged event loop alive forever. Instead every loop checks in from a task
/// scheduled on itself (``LoopProgress``, which `/healthz` reads too), at
/// least every quarter of `WATCHDOG_USEC`, and `WATCHDOG=1` is
/// sent every half of `WATCHDOG_USEC` only if every loop has checked in within
/// the last half. A heartbeat that is due but withheld is tried again every
/// eighth of `WATCHDOG_USEC`, so one loop that is merely late (a busy machine)
/// delays it a little instead of costing a whole beat. A loop that stops
/// running its tasks (stuck in a call, spinning) stops the heartbeat, and
/// systemd restarts the daemon at most one and a half `WATCHDOG_USEC` later.
public final class Watchdog: Sendable {
    /// How often `WATCHDOG=1` is due: half of `WATCHDOG_USEC`.
    public let period: TimeAmount
    private let progress: LoopProgress
    private let beat: @Sendable () -> Void
    private let logger: Logger

    /// `WATCHDOG_USEC` in microseconds when systemd asked this process for a
    /// heartbeat (`sd_watchdog_enabled` also checks `WATCHDOG_PID`), else nil.
    public static func requestedMicroseconds() -> UInt64? {
        var usec: UInt64 = 0
        guard sd_watchdog_enabled(0, &usec) > 0, usec > 0 else { return nil }
        return usec
    }

    /// Half of `WATCHDOG_USEC`.
    public static func period(watchdogMicroseconds: UInt64) -> TimeAmount {
        .microseconds(Int64(max(2, watchdogMicroseconds / 2)))
    }

    /// How often the loops must check in for this watchdog: a quarter of `WATCHDOG_USEC`.
    public static func checkInInterval(watchdogMicroseconds: UInt64) -> TimeAmount {
        .nanoseconds(max(1, period(watchdogMicroseconds: watchdogMicroseconds).nanoseconds / 2))
    }

    /// - Parameters:
    ///   - progress: the loops' check-ins, shared with `/healthz`; its interval must be at most
    ///     ``checkInInterval(watchdogMicroseconds:)``, and its owner starts and stops it.
    ///   - beat: sends the heartbeat; `WATCHDOG=1` to systemd in the daemon.
    public init(
        watchdogMicroseconds: UInt64, progress: LoopProgress, logger: Logger, beat: @escaping @Sendable () -> Void
    ) {
        self.period = Self.period(watchdogMicroseconds: watchdogMicroseconds)
        self.progress = progress
        self.logger = logger
        self.beat = beat
    }

    /// Loops that have not checked in within one period before `now` (nanoseconds of uptime).
    public func staleLoops(now: Int64) -> [Int] {
        progress.staleLoops(now: now, threshold: period)
    }

    /// Sends the heartbeat every period while every loop keeps checking in; returns when cancelled.
    public func run() async {
        var reported = false
        var lastBeat = Int64(NIODeadline.now().uptimeNanoseconds)
        let tick = max(1, period.nanoseconds / 4)
        while !Task.isCancelled {
            do { try await Task.sleep(for: .nanoseconds(tick)) } catch { return }
            let now = Int64(NIODeadline.now().uptimeNanoseconds)
            // A few microseconds of early wake-up must not skip a beat for a whole tick.
            guard now - lastBeat >= period.nanoseconds - tick / 2 else { continue }
            let stale = staleLoops(now: now)
            if stale.isEmpty {
                beat()
                lastBeat = now
                reported = false
            } else if !reported {
                reported = true
                logger.critical(
                    "watchdog: event loop(s) \(stale.map(String.init).joined(separator: ",")) made no progress for \(period); withholding WATCHDOG=1"
                )
            }
        }
    }
}
