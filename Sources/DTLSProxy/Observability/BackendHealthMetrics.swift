import CoreMetrics
import NIOConcurrencyHelpers
import NIOCore

/// `dtlsproxy_backend_up{listener,route,backend}`: 1 while a backend takes new
/// sessions, 0 during its back-off after ICMP port unreachable.
///
/// Health is kept in the pools as a deadline, not as events, so the gauges are
/// set when they are read: before every scrape. A backend a reload removed
/// loses its series at the next scrape rather than showing a stale value.
final class BackendHealthMetrics: Sendable {
    private let factory: DaemonMetrics
    private let published = NIOLockedValueBox<[[String]: CoreMetrics.Gauge]>([:])

    init(metrics: DaemonMetrics) {
        self.factory = metrics
    }

    /// Sets one gauge per backend of every route of `runtimes`; drops the series of backends no longer configured.
    func publish(_ runtimes: [ListenerRuntime], now: NIODeadline = .now()) {
        published.withLockedValue { published in
            var current: [[String]: CoreMetrics.Gauge] = [:]
            for runtime in runtimes {
                var routes = runtime.routes.routes.map(\.route)
                if let fallback = runtime.routes.fallback { routes.append(fallback) }
                for route in routes {
                    for (member, endpoint) in route.pool.endpoints.enumerated() {
                        let labels = [runtime.name, route.name, endpoint.description]
                        let gauge =
                            published[labels]
                            ?? CoreMetrics.Gauge(
                                label: DaemonMetrics.Name.backendUp,
                                dimensions: [("listener", labels[0]), ("route", labels[1]), ("backend", labels[2])],
                                factory: factory.factory)
                        gauge.record(route.pool.isDown(member, now: now) ? 0 : 1)
                        current[labels] = gauge
                    }
                }
            }
            for (labels, gauge) in published where current[labels] == nil {
                gauge.destroy()
            }
            published = current
        }
    }
}
