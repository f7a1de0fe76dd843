import Atomics
import CoreMetrics

/// Counters of one listener, shared by its event loops.
///
/// Only admission events and drops touch these atomics; the per-datagram
/// figures of a session live in the session itself, so the data path takes
/// no shared write. Every counter also moves its Prometheus series
/// (``ListenerMetrics``). One object per listener name lives as long as the
/// daemon, across reloads, so counts and the session limit span them.
public final class ListenerStats: Sendable {
    /// Every counter a listener keeps, named as it appears in logs.
    public enum Counter: String, CaseIterable, Sendable {
        case sessionsCreated = "sessions_created"
        case handshakesCompleted = "handshakes_completed"
        case handshakesFailed = "handshakes_failed"
        case helloVerifySent = "hello_verify_sent"
        case droppedMalformed = "dropped_malformed"
        case droppedNoSession = "dropped_no_session"
        case droppedBadCookie = "dropped_bad_cookie"
        case droppedSessionLimit = "dropped_session_limit"
        case droppedHandshakeLimit = "dropped_handshake_limit"
        case droppedRateLimited = "dropped_rate_limited"
        case droppedOversize = "dropped_oversize"
        case droppedUndecryptable = "dropped_undecryptable"
        case droppedStopping = "dropped_stopping"
        case backendErrors = "backend_errors"
        /// A backend of a pool drew ICMP port unreachable and was marked down.
        case backendsMarkedDown = "backends_marked_down"
        /// A session moved to another backend of its pool because its own was down.
        case sessionsMoved = "sessions_moved"
    }

    public let listenerName: String
    let metrics: ListenerMetrics
    private let activeSessions = ManagedAtomic<Int>(0)
    private let handshaking = ManagedAtomic<Int>(0)
    private let counters: [ManagedAtomic<Int>]
    private let series: [CoreMetrics.Counter?]

    public convenience init(listenerName: String) {
        self.init(listenerName: listenerName, metrics: DaemonMetrics())
    }

    public init(listenerName: String, metrics: DaemonMetrics) {
        self.listenerName = listenerName
        let listenerMetrics = metrics.listener(listenerName)
        self.metrics = listenerMetrics
        counters = Counter.allCases.map { _ in ManagedAtomic<Int>(0) }
        series = Counter.allCases.map { listenerMetrics.series(for: $0) }
    }

    public func increment(_ counter: Counter, by amount: Int = 1) {
        let index = Self.index(of: counter)
        counters[index].wrappingIncrement(by: amount, ordering: .relaxed)
        series[index]?.increment(by: amount)
    }

    public func value(_ counter: Counter) -> Int {
        counters[Self.index(of: counter)].load(ordering: .relaxed)
    }

    /// Sessions (handshaking or established) held now, over all event loops.
    public var active: Int { activeSessions.load(ordering: .relaxed) }

    /// Takes a session slot unless `limit` are held; false means refuse the client.
    func reserveSession(limit: Int) -> Bool {
        while true {
            let current = activeSessions.load(ordering: .relaxed)
            guard current < limit else { return false }
            if activeSessions.compareExchange(expected: current, desired: current + 1, ordering: .relaxed).exchanged {
                return true
            }
        }
    }

    func releaseSession() {
        activeSessions.wrappingDecrement(ordering: .relaxed)
    }

    /// Counts a handshake as started unless `limit` are running; false means refuse the client.
    func reserveHandshake(limit: Int) -> Bool {
        while true {
            let current = handshaking.load(ordering: .relaxed)
            guard current < limit else { return false }
            if handshaking.compareExchange(expected: current, desired: current + 1, ordering: .relaxed).exchanged {
                return true
            }
        }
    }

    /// A handshake ended, completed or not.
    func releaseHandshake() {
        handshaking.wrappingDecrement(ordering: .relaxed)
    }

    /// Handshakes running now, over all event loops.
    public var handshakesInProgress: Int { handshaking.load(ordering: .relaxed) }

    /// `stats listener=NAME active_sessions=N sessions_created=N …`, one line.
    public var logLine: String {
        var line = "stats listener=\(listenerName) active_sessions=\(active) handshakes_in_progress=\(handshakesInProgress)"
        for counter in Counter.allCases {
            line += " \(counter.rawValue)=\(value(counter))"
        }
        return line
    }

    private static func index(of counter: Counter) -> Int {
        Counter.allCases.firstIndex(of: counter)!
    }
}
