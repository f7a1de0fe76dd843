import NIOConcurrencyHelpers
import NIOCore

/// The one-line `STATUS=` that `systemctl status` shows:
/// `3 sessions, 12.5 handshakes/s, 0 drops`, plus the error of the last
/// reload while it failed; `draining: ` in front during the drain.
final class StatusReporter: Sendable {
    private let server: ListenerSet
    private let notifier: SystemdNotifier
    private let state: NIOLockedValueBox<State>

    private struct State {
        var handshakes = 0
        var at = NIODeadline.now()
        var reloadError: String?
        var draining = false
    }

    init(server: ListenerSet, notifier: SystemdNotifier) {
        self.server = server
        self.notifier = notifier
        self.state = NIOLockedValueBox(State())
    }

    /// Remembers (or, with nil, clears) the error of the last reload.
    func reloadFailed(_ error: String?) {
        state.withLockedValue { $0.reloadError = error }
    }

    /// From now on the line starts with `draining: `.
    func drainStarted() {
        state.withLockedValue { $0.draining = true }
    }

    /// The status now; the handshake rate is over the time since the previous call.
    func line() -> String {
        // Listeners' and connectors' sessions alike.
        let stats = server.allStats
        let connectors = server.connectors.allStats
        let sessions = stats.reduce(0) { $0 + $1.active } + connectors.reduce(0) { $0 + $1.active }
        let handshakes =
            stats.reduce(0) { $0 + $1.value(.handshakesCompleted) }
            + connectors.reduce(0) { $0 + $1.value(.handshakesCompleted) }
        let drops =
            stats.reduce(0) { $0 + $1.droppedTotal } + connectors.reduce(0) { $0 + $1.droppedTotal }
        let now = NIODeadline.now()
        let (rate, reloadError, draining) = state.withLockedValue { state -> (Double, String?, Bool) in
            let seconds = Double((now - state.at).nanoseconds) / 1e9
            let rate = seconds > 0.1 ? Double(handshakes - state.handshakes) / seconds : 0
            state.handshakes = handshakes
            state.at = now
            return (rate, state.reloadError, state.draining)
        }
        var line =
            (draining ? "draining: " : "")
            + "\(sessions) session\(sessions == 1 ? "" : "s"), \(Self.format(rate)) handshakes/s, \(drops) drop\(drops == 1 ? "" : "s")"
        if let reloadError { line += "; last reload failed: \(reloadError)" }
        return line
    }

    /// Sends `STATUS=` every `interval` until cancelled.
    func run(every interval: Duration) async {
        while !Task.isCancelled {
            do { try await Task.sleep(for: interval) } catch { return }
            notifier.status(line())
        }
    }

    private static func format(_ rate: Double) -> String {
        let tenths = (rate * 10).rounded()
        return tenths.truncatingRemainder(dividingBy: 10) == 0 ? "\(Int(tenths / 10))" : "\(tenths / 10)"
    }
}
