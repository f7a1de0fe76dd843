import CoreMetrics
import Prometheus

/// One listener's series, labelled `listener="NAME"`.
///
/// Datagram and byte counts do not come here per datagram: each event loop
/// tallies them in plain integers and adds them in batches (see
/// `ListenerRouter.flushTraffic`).
final class ListenerMetrics: Sendable {
    let sessionsActive: CoreMetrics.Gauge
    let backendSocketsParked: CoreMetrics.Gauge
    let sessionsOpened: CoreMetrics.Counter
    let handshakesCompleted: CoreMetrics.Counter
    let cookiesSent: CoreMetrics.Counter
    let backendErrors: CoreMetrics.Counter
    let handshakeDuration: CoreMetrics.Timer
    let traffic: TrafficCounters
    private let closed: [String: CoreMetrics.Counter]
    private let handshakesFailed: [String: CoreMetrics.Counter]
    private let drops: [String: CoreMetrics.Counter]
    private let listener: String
    private let factory: PrometheusMetricsFactory

    init(listener: String, factory: PrometheusMetricsFactory) {
        self.listener = listener
        self.factory = factory
        let label = ("listener", listener)
        typealias Name = DaemonMetrics.Name
        sessionsActive = CoreMetrics.Gauge(label: Name.sessionsActive, dimensions: [label], factory: factory)
        backendSocketsParked = CoreMetrics.Gauge(
            label: Name.backendSocketsParked, dimensions: [label], factory: factory)
        sessionsOpened = CoreMetrics.Counter(label: Name.sessionsOpened, dimensions: [label], factory: factory)
        handshakesCompleted = CoreMetrics.Counter(
            label: Name.handshakesCompleted, dimensions: [label], factory: factory)
        cookiesSent = CoreMetrics.Counter(label: Name.cookiesSent, dimensions: [label], factory: factory)
        backendErrors = CoreMetrics.Counter(label: Name.backendErrors, dimensions: [label], factory: factory)
        handshakeDuration = CoreMetrics.Timer(label: Name.handshakeDuration, dimensions: [label], factory: factory)
        // "in": plaintext from clients to the backend; "out": from the backend to clients.
        traffic = TrafficCounters(datagrams: Name.datagrams, bytes: Name.bytes, label: label, factory: factory)
        closed = CloseReason.counters(label: Name.sessionsClosed, owner: label, factory: factory)
        handshakesFailed = CloseReason.counters(label: Name.handshakesFailed, owner: label, factory: factory)
        var drops: [String: CoreMetrics.Counter] = [:]
        for counter in ListenerStats.names where counter.rawValue.hasPrefix("dropped_") {
            let reason = String(counter.rawValue.dropFirst("dropped_".count))
            drops[reason] = CoreMetrics.Counter(
                label: Name.drops, dimensions: [label, ("reason", reason)], factory: factory)
        }
        self.drops = drops
    }

    /// The series a ``ListenerStats`` counter also moves, if any.
    ///
    /// `dropped_X` counts as `dtlsproxy_drops_total{reason="X"}`; a counter not
    /// named here gets `dtlsproxy_<name>_total`, so new counters are exported too.
    func series(for counter: ListenerStats.Counter) -> CoreMetrics.Counter? {
        switch counter {
        case .sessionsCreated: return sessionsOpened
        case .handshakesCompleted: return handshakesCompleted
        case .helloVerifySent: return cookiesSent
        case .backendErrors: return backendErrors
        case .handshakesFailed: return nil  // counted by reason when the session closes
        default:
            let name = counter.rawValue
            if name.hasPrefix("dropped_") { return drops[String(name.dropFirst("dropped_".count))] }
            return CoreMetrics.Counter(
                label: "dtlsproxy_\(name)_total", dimensions: [("listener", listener)], factory: factory)
        }
    }

    /// A session ended: by reason, and as a failed handshake if it never completed one.
    func sessionClosed(_ reason: CloseReason, established: Bool) {
        closed[reason.rawValue]?.increment()
        if !established { handshakesFailed[reason.rawValue]?.increment() }
    }
}
