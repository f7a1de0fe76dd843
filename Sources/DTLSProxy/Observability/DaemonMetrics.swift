import Atomics
import CoreMetrics
import Prometheus

/// Every metric the daemon exports, in one Prometheus registry.
///
/// Metrics are created through swift-metrics with a Prometheus factory of our
/// own rather than the process-wide `MetricsSystem`, so that nothing global is
/// bootstrapped and tests can hold several. They are kept whether or not
/// `metrics_listen` is set, so that turning the endpoint on with a reload shows
/// counts since start.
public final class DaemonMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    let factory: PrometheusMetricsFactory
    let reloadsSucceeded: CoreMetrics.Counter
    let reloadsFailed: CoreMetrics.Counter
    let lastReloadSucceeded: CoreMetrics.Gauge
    let logLinesDropped: CoreMetrics.Counter
    /// How many of ``LogWriter``'s drops the counter already holds.
    private let logDropsPublished = ManagedAtomic<Int>(0)

    /// Metric names; the README lists them.
    enum Name {
        static let sessionsActive = "dtlsproxy_sessions_active"
        static let sessionsOpened = "dtlsproxy_sessions_opened_total"
        static let sessionsClosed = "dtlsproxy_sessions_closed_total"
        static let handshakesCompleted = "dtlsproxy_handshakes_completed_total"
        static let handshakesFailed = "dtlsproxy_handshakes_failed_total"
        static let handshakeDuration = "dtlsproxy_handshake_duration_seconds"
        static let cookiesSent = "dtlsproxy_cookies_sent_total"
        static let datagrams = "dtlsproxy_datagrams_total"
        static let bytes = "dtlsproxy_bytes_total"
        static let drops = "dtlsproxy_drops_total"
        static let backendErrors = "dtlsproxy_backend_errors_total"
        static let reloads = "dtlsproxy_reloads_total"
        static let lastReloadSucceeded = "dtlsproxy_config_last_reload_successful"
        static let backendUp = "dtlsproxy_backend_up"
        static let backendSocketsParked = "dtlsproxy_backend_sockets_parked"
        static let logLinesDropped = "dtlsproxy_log_lines_dropped_total"
    }

    public init() {
        registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        // A DTLS 1.2 handshake on loopback takes about a millisecond; over the
        // internet, a few round trips; with retransmissions, seconds.
        factory.durationHistogramBuckets[Name.handshakeDuration] = [
            .milliseconds(1), .microseconds(2500), .milliseconds(5), .milliseconds(10), .milliseconds(25),
            .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
            .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10),
        ]
        self.factory = factory
        reloadsSucceeded = CoreMetrics.Counter(
            label: Name.reloads, dimensions: [("result", "success")], factory: factory)
        reloadsFailed = CoreMetrics.Counter(label: Name.reloads, dimensions: [("result", "failure")], factory: factory)
        lastReloadSucceeded = CoreMetrics.Gauge(label: Name.lastReloadSucceeded, factory: factory)
        lastReloadSucceeded.record(1)
        logLinesDropped = CoreMetrics.Counter(label: Name.logLinesDropped, factory: factory)
    }

    /// Brings `dtlsproxy_log_lines_dropped_total` up to `total` (``LogWriter/droppedLines``); before each scrape.
    func publishLogDrops(_ total: Int) {
        let before = logDropsPublished.exchange(total, ordering: .relaxed)
        if total > before { logLinesDropped.increment(by: total - before) }
    }

    /// The metrics of the listener `name`; the registry hands out the same series for the same name.
    func listener(_ name: String) -> ListenerMetrics {
        ListenerMetrics(listener: name, factory: factory)
    }

    func reloaded(success: Bool) {
        (success ? reloadsSucceeded : reloadsFailed).increment()
        lastReloadSucceeded.record(success ? 1 : 0)
    }

    /// The text exposition format (version 0.0.4) of every metric.
    public func render() -> [UInt8] {
        registry.emitToBuffer()
    }
}
