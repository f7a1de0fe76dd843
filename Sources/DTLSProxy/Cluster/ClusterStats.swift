import Atomics
import CoreMetrics
import NIOConcurrencyHelpers
import Prometheus

/// What the cluster link counts: datagrams forwarded to and from other
/// instances, and what it refused. Each counter is an atomic for the stats
/// line and moves its Prometheus series: `dtlsproxy_cluster_datagrams_total`
/// by `direction`, `dtlsproxy_cluster_drops_total` by `reason`.
final class ClusterStats: Sendable {
    enum Counter: String, CaseIterable, Sendable {
        /// Client datagrams sent to the node owning their connection ID.
        case forwarded = "forwarded"
        /// Client datagrams other nodes forwarded here.
        case forwardsReceived = "forwards_received"
        /// Replies sent back through the node that forwarded the client's datagram.
        case replied = "replied"
        /// Replies other nodes sent here for this node to deliver.
        case repliesReceived = "replies_received"
        /// A message whose tag did not verify, or that does not parse.
        case droppedUnauthenticated = "dropped_unauthenticated"
        /// A message older (or newer) than the allowed clock skew.
        case droppedStale = "dropped_stale"
        /// A message seen before from its sender.
        case droppedReplayed = "dropped_replayed"
        /// A connection ID naming a node that is not a peer, or a message from one.
        case droppedUnknownNode = "dropped_unknown_node"
        /// A message for a listener this instance does not run.
        case droppedUnknownListener = "dropped_unknown_listener"
    }

    private let counters: [ManagedAtomic<Int>]
    private let series: [CoreMetrics.Counter]
    /// `dtlsproxy_cluster_peer_last_heard_seconds{node}`: when each peer's last authenticated message came.
    private let lastHeard = NIOLockedValueBox<[UInt8: CoreMetrics.Gauge]>([:])
    private let factory: PrometheusMetricsFactory

    init(metrics: DaemonMetrics) {
        factory = metrics.factory
        counters = Counter.allCases.map { _ in ManagedAtomic(0) }
        series = Counter.allCases.map { counter in
            let name = counter.rawValue
            if name.hasPrefix("dropped_") {
                return CoreMetrics.Counter(
                    label: "dtlsproxy_cluster_drops_total",
                    dimensions: [("reason", String(name.dropFirst("dropped_".count)))], factory: metrics.factory)
            }
            return CoreMetrics.Counter(
                label: "dtlsproxy_cluster_datagrams_total", dimensions: [("direction", name)], factory: metrics.factory)
        }
    }

    func increment(_ counter: Counter) {
        let index = Counter.allCases.firstIndex(of: counter)!
        counters[index].wrappingIncrement(ordering: .relaxed)
        series[index].increment()
    }

    /// A peer's message authenticated at `seconds` since the epoch: its state, for the metrics.
    func heard(_ node: UInt8, at seconds: Double) {
        let gauge = lastHeard.withLockedValue { gauges in
            if let gauge = gauges[node] { return gauge }
            let gauge = CoreMetrics.Gauge(
                label: "dtlsproxy_cluster_peer_last_heard_seconds", dimensions: [("node", String(node))],
                factory: factory)
            gauges[node] = gauge
            return gauge
        }
        gauge.record(seconds)
    }

    func value(_ counter: Counter) -> Int {
        counters[Counter.allCases.firstIndex(of: counter)!].load(ordering: .relaxed)
    }

    /// `stats cluster node=N forwarded=N …`, one line.
    func logLine(node: UInt8) -> String {
        "stats cluster node=\(node)" + Counter.allCases.map { " \($0.rawValue)=\(value($0))" }.joined()
    }
}
