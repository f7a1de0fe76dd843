import Atomics
import NIOCore
import NIOHTTP1

/// What the health endpoints answer: `/healthz` (liveness) and `/readyz` (readiness).
///
/// Liveness is the watchdog's view: every event loop has checked in recently
/// (``LoopProgress``). Readiness is the service's phase, set by ``ProxyService``:
/// ready once every listener and connector is bound, not ready again from the
/// moment a stop is asked for, so that a balancer stops sending new clients
/// while the drain still serves the ones it sends until it notices.
///
/// The bodies are short plain text, what Kubernetes probes and load-balancer
/// checkers expect (they look at the status; people read the body).
public final class HealthState: Sendable {
    /// The service's phase as `/readyz` reports it.
    public enum Readiness: Int, Sendable, CaseIterable {
        /// Binding listeners and connectors.
        case starting
        /// Every listener and connector is bound and serving.
        case ready
        /// A stop was asked for and `drain_timeout` runs: still serving, but not ready.
        case draining
        /// The graceful stop: close_notify to every peer, then exit.
        case stopping

        var body: String {
            switch self {
            case .starting: "starting\n"
            case .ready: "ok\n"
            case .draining: "draining\n"
            case .stopping: "stopping\n"
            }
        }
    }

    /// One answer of a health path.
    public struct Answer: Sendable, Equatable {
        public var status: HTTPResponseStatus
        public var body: String
    }

    /// Without a systemd watchdog, a loop that has not checked in for this long is stalled.
    /// Long enough that a loaded machine does not flap the probe, short against a
    /// liveness probe's usual period times failure threshold (10 s x 3).
    public static let defaultStallThreshold: TimeAmount = .seconds(5)

    /// The paths this type answers.
    public static let paths = ["/healthz", "/readyz"]

    private let progress: LoopProgress
    private let phase = ManagedAtomic<Int>(Readiness.starting.rawValue)
    /// How old a loop's last check-in may be while `/healthz` answers 200.
    public let stallThreshold: TimeAmount

    public init(progress: LoopProgress, stallThreshold: TimeAmount = HealthState.defaultStallThreshold) {
        self.progress = progress
        self.stallThreshold = stallThreshold
    }

    public var readiness: Readiness {
        Readiness(rawValue: phase.load(ordering: .relaxed)) ?? .starting
    }

    /// Moves to `next`. Phases only move forward: a late `ready` (a reload that
    /// finishes during the drain) never makes a draining daemon ready again.
    public func advance(to next: Readiness) {
        var current = phase.load(ordering: .relaxed)
        while current < next.rawValue {
            let (exchanged, original) = phase.compareExchange(
                expected: current, desired: next.rawValue, ordering: .relaxed)
            if exchanged { return }
            current = original
        }
    }

    /// The answer for `path` at `now` (nanoseconds of uptime), or nil when `path` is not a health path.
    public func answer(path: String, now: Int64) -> Answer? {
        switch path {
        case "/healthz":
            let stalled = progress.staleLoops(now: now, threshold: stallThreshold)
            guard stalled.isEmpty else {
                let loops = stalled.map(String.init).joined(separator: ",")
                return Answer(status: .serviceUnavailable, body: "stalled: event loop(s) \(loops)\n")
            }
            return Answer(status: .ok, body: "ok\n")
        case "/readyz":
            let readiness = self.readiness
            return Answer(status: readiness == .ready ? .ok : .serviceUnavailable, body: readiness.body)
        default:
            return nil
        }
    }
}
