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
    public typealias Counter = StatsCounter

    /// The counters a listener keeps, in the order of its stats line.
    static let names: [StatsCounter] = [
        .sessionsCreated, .handshakesCompleted, .handshakesFailed, .helloVerifySent, .droppedMalformed,
        .droppedNoSession, .droppedBadCookie, .droppedSessionLimit, .droppedHandshakeLimit, .droppedRateLimited,
        .droppedHandshakeShare, .droppedOversize, .droppedEmpty, .droppedUndecryptable, .droppedStopping,
        .droppedKernelListener, .droppedKernelBackend, .backendErrors, .backendsMarkedDown, .sessionsMoved,
        .droppedUnknownConnectionID, .droppedConnectionIDRecord, .droppedUnverifiedAddress, .droppedAmplification,
    ]

    public let listenerName: String
    let metrics: ListenerMetrics
    let sessions = BoundedCount()
    /// Backend sockets of idle sessions held without a NIO channel (``ParkableSocket``).
    let parkedSockets = ManagedAtomic<Int>(0)
    private let handshaking = BoundedCount()
    let counters: CounterSet

    public convenience init(listenerName: String) {
        self.init(listenerName: listenerName, metrics: DaemonMetrics())
    }

    public init(listenerName: String, metrics: DaemonMetrics) {
        self.listenerName = listenerName
        let listenerMetrics = metrics.listener(listenerName)
        self.metrics = listenerMetrics
        counters = CounterSet(names: Self.names) { listenerMetrics.series(for: $0) }
    }

    /// The kernel's drops on a session's own socket: its backend socket.
    let sessionSocketKernelDrops = StatsCounter.droppedKernelBackend

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
            + counters.logFields
    }
}
