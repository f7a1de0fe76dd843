import Atomics
import CoreMetrics

/// Counters of one connector, kept across reloads by name.
///
/// Sessions of a connector all live on one event loop, but the stats line and
/// the metrics endpoint read these from other threads, hence the atomics.
/// Every counter also moves its Prometheus series (`dtlsproxy_connector_*`).
public final class ConnectorStats: SessionStats, Sendable {
    /// Every counter a connector keeps, named as it appears in logs.
    public enum Counter: String, CaseIterable, Sendable {
        case sessionsCreated = "sessions_created"
        case handshakesCompleted = "handshakes_completed"
        case handshakesFailed = "handshakes_failed"
        case droppedSessionLimit = "dropped_session_limit"
        case droppedQueueFull = "dropped_queue_full"
        case droppedOversize = "dropped_oversize"
        /// Empty local datagrams: DTLS cannot carry them as a record of their own
        /// (SSL_write refuses zero bytes, and OpenSSL 3.0's SSL_read mishandles empty records).
        case droppedEmpty = "dropped_empty"
        case droppedUndecryptable = "dropped_undecryptable"
        /// Local datagrams that would have started a session while the server's
        /// refusals paused new handshakes (``HandshakeBackoff``).
        case droppedBackoff = "dropped_backoff"
        /// Datagrams from local peers the kernel dropped on the connector's
        /// local socket, its receive queue full (``KernelDrops``).
        case droppedKernelLocal = "dropped_kernel_local"
        /// Datagrams from the server the kernel dropped on a session's server socket.
        case droppedKernelServer = "dropped_kernel_server"
        /// Errors on a session's server socket, chiefly ICMP port unreachable.
        case serverErrors = "server_errors"
    }

    public let connectorName: String
    let metrics: ConnectorMetrics
    let sessions = BoundedCount()
    let counters: CounterSet<Counter>
    /// Server sockets of idle sessions held without a NIO channel (``ParkableSocket``).
    let parkedSockets = ManagedAtomic<Int>(0)

    public init(connectorName: String, metrics: DaemonMetrics) {
        self.connectorName = connectorName
        let connectorMetrics = ConnectorMetrics(connector: connectorName, factory: metrics.factory)
        self.metrics = connectorMetrics
        counters = CounterSet { connectorMetrics.series(for: $0) }
    }

    /// The kernel's drops on a session's own socket (its server socket).
    static let sessionSocketKernelDrops = Counter.droppedKernelServer

    /// `stats connector=NAME active_sessions=N sessions_created=N …`, one line.
    public var logLine: String {
        "stats connector=\(connectorName) active_sessions=\(active) parked_server_sockets=\(parkedSockets.load(ordering: .relaxed))"
            + counters.logFields(\.rawValue)
    }
}
