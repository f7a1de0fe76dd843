import Atomics
import CoreMetrics

/// Counters of one listener, shared by its event loops.
///
/// Only admission events and drops touch these atomics; the per-datagram
/// figures of a session live in the session itself, so the data path takes
/// no shared write. Every counter also moves its Prometheus series
/// (``ListenerMetrics``). One object per listener name lives as long as the
/// daemon, across reloads, so counts and the session limit span them.
public final class ListenerStats: SessionStats, Sendable {
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
        /// The source address or its prefix already holds its share of the handshakes in progress.
        case droppedHandshakeShare = "dropped_handshake_share"
        case droppedOversize = "dropped_oversize"
        /// Empty backend datagrams: a record cannot carry zero bytes (SSL_write refuses them).
        case droppedEmpty = "dropped_empty"
        case droppedUndecryptable = "dropped_undecryptable"
        case droppedStopping = "dropped_stopping"
        /// Datagrams from clients the kernel dropped on a listener socket, its
        /// receive queue full (``KernelDrops``); collected once a second and
        /// before every scrape and stats line.
        case droppedKernelListener = "dropped_kernel_listener"
        /// Datagrams from backends the kernel dropped on a session's backend
        /// socket, its receive queue full; collected before every scrape and
        /// stats line, and when the socket closes.
        case droppedKernelBackend = "dropped_kernel_backend"
        case backendErrors = "backend_errors"
        /// A backend of a pool drew ICMP port unreachable and was marked down.
        case backendsMarkedDown = "backends_marked_down"
        /// A session moved to another backend of its pool because its own was down.
        case sessionsMoved = "sessions_moved"
    }

    public let listenerName: String
    let metrics: ListenerMetrics
    let sessions = BoundedCount()
    /// Backend sockets of idle sessions held without a NIO channel (``ParkableSocket``).
    let parkedSockets = ManagedAtomic<Int>(0)
    private let handshaking = BoundedCount()
    let counters: CounterSet<Counter>

    public convenience init(listenerName: String) {
        self.init(listenerName: listenerName, metrics: DaemonMetrics())
    }

    public init(listenerName: String, metrics: DaemonMetrics) {
        self.listenerName = listenerName
        let listenerMetrics = metrics.listener(listenerName)
        self.metrics = listenerMetrics
        counters = CounterSet { listenerMetrics.series(for: $0) }
    }

    /// The kernel's drops on a session's own socket (its backend socket).
    static let sessionSocketKernelDrops = Counter.droppedKernelBackend

    /// Counts a handshake as started unless `limit` are running; false means refuse the client.
    func reserveHandshake(limit: Int) -> Bool {
        handshaking.reserve(limit: limit) != nil
    }

    /// A handshake ended, completed or not.
    func releaseHandshake() {
        handshaking.release()
    }

    /// Handshakes running now, over all event loops.
    public var handshakesInProgress: Int { handshaking.current }

    /// `stats listener=NAME active_sessions=N sessions_created=N …`, one line.
    public var logLine: String {
        "stats listener=\(listenerName) active_sessions=\(active) handshakes_in_progress=\(handshakesInProgress)"
            + " parked_backend_sockets=\(parkedSockets.load(ordering: .relaxed))"
            + counters.logFields(\.rawValue)
    }
}
