import CoreMetrics
import Prometheus

/// One connector's Prometheus series, labelled `connector="NAME"`.
///
/// Named apart from the listener series (`dtlsproxy_connector_…`) so that a
/// sum over `dtlsproxy_sessions_active` still means sessions served, not dialled.
final class ConnectorMetrics: Sendable {
    let sessionsActive: CoreMetrics.Gauge
    let socketsParked: CoreMetrics.Gauge
    let traffic: TrafficCounters
    private let closed: [String: CoreMetrics.Counter]

    init(connector: String, factory: PrometheusMetricsFactory) {
        let label = ("connector", connector)
        sessionsActive = CoreMetrics.Gauge(
            label: "dtlsproxy_connector_sessions_active", dimensions: [label], factory: factory)
        socketsParked = CoreMetrics.Gauge(
            label: "dtlsproxy_connector_sockets_parked", dimensions: [label], factory: factory)
        // "in": plaintext from local peers into the tunnel; "out": from the server back to them.
        traffic = TrafficCounters(
            datagrams: "dtlsproxy_connector_datagrams_total", bytes: "dtlsproxy_connector_bytes_total", label: label,
            factory: factory)
        closed = CloseReason.counters(
            label: "dtlsproxy_connector_sessions_closed_total", owner: label, factory: factory)
    }

    /// `dropped_X` → `dtlsproxy_connector_drops_total{reason="X"}`; others → `dtlsproxy_connector_<name>_total`.
    static func series(
        for counter: StatsCounter, connector: String, factory: PrometheusMetricsFactory
    ) -> CoreMetrics.Counter {
        let name = counter.rawValue
        if name.hasPrefix("dropped_") {
            return CoreMetrics.Counter(
                label: "dtlsproxy_connector_drops_total",
                dimensions: [("connector", connector), ("reason", String(name.dropFirst("dropped_".count)))],
                factory: factory)
        }
        return CoreMetrics.Counter(
            label: "dtlsproxy_connector_\(name)_total", dimensions: [("connector", connector)], factory: factory)
    }

    func sessionClosed(_ reason: CloseReason) {
        closed[reason.rawValue]?.increment()
    }
}
