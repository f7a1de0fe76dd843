import Atomics
import CoreMetrics

/// Counters of one connector, kept across reloads by name.
///
/// Sessions of a connector all live on one event loop, but the stats line and
/// the metrics endpoint read these from other threads, hence the atomics.
/// Every counter also moves its Prometheus series (`dtlsproxy_connector_*`).
public final class ConnectorStats: SessionStats, Sendable {
    public typealias Counter = StatsCounter

    /// The counters a connector keeps, in the order of its stats line.
    static let names: [StatsCounter] = [
        .sessionsCreated, .handshakesCompleted, .handshakesFailed, .droppedSessionLimit, .droppedQueueFull,
        .droppedOversize, .droppedEmpty, .droppedUndecryptable, .droppedBackoff, .droppedKernelLocal,
        .droppedKernelServer, .serverErrors, .droppedConnectionIDRecord,
    ]

    public let connectorName: String
    let metrics: ConnectorMetrics
    let sessions = BoundedCount()
    let counters: CounterSet
    /// Server sockets of idle sessions held without a NIO channel (``ParkableSocket``).
    let parkedSockets = ManagedAtomic<Int>(0)

    public init(connectorName: String, metrics: DaemonMetrics) {
        self.connectorName = connectorName
        let connectorMetrics = ConnectorMetrics(connector: connectorName, factory: metrics.factory)
        self.metrics = connectorMetrics
        counters = CounterSet(names: Self.names) {
            ConnectorMetrics.series(for: $0, connector: connectorName, factory: metrics.factory)
        }
    }

    /// The kernel's drops on a session's own socket: its server socket.
    let sessionSocketKernelDrops = StatsCounter.droppedKernelServer

    /// `stats connector=NAME active_sessions=N sessions_created=N …`, one line.
    public var logLine: String {
        "stats connector=\(connectorName) active_sessions=\(active) parked_server_sockets=\(parkedSockets.load(ordering: .relaxed))"
            + counters.logFields
    }
}
