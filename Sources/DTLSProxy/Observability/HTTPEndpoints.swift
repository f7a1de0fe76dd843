import Logging
import NIOConcurrencyHelpers

/// The HTTP endpoints as the configuration wants them now (``HTTPEndpointPlan``);
/// a reload opens, moves, closes or changes them.
///
/// New addresses are bound before anything else changes, so a reload that
/// cannot bind one fails and leaves the old endpoints serving as they were. An
/// endpoint whose address stays keeps its socket and only changes what it
/// answers (metrics and health at the same address become health only when
/// `metrics_listen` moves away, and back), so probes on it never see a gap.
final class HTTPEndpoints: Sendable {
    private let server: ListenerSet
    private let health: HealthState
    private let logger: Logger
    private let current = NIOLockedValueBox<[MetricsServer]>([])

    init(server: ListenerSet, health: HealthState, logger: Logger) {
        self.server = server
        self.health = health
        self.logger = logger
    }

    /// Opens, moves, closes or changes the endpoints to match `daemon`'s `metrics_listen` and `health_listen`.
    func reconfigure(to daemon: DaemonConfiguration) async throws {
        let plan = HTTPEndpointPlan(daemon)
        let old = current.withLockedValue { $0 }
        var started: [MetricsServer] = []
        do {
            for endpoint in plan.endpoints where !old.contains(where: { $0.address == endpoint.address }) {
                started.append(try await MetricsServer.start(endpoint, server: server, health: health))
            }
        } catch {
            for endpoint in started { await endpoint.close() }
            throw error
        }
        var kept: [MetricsServer] = []
        var removed: [MetricsServer] = []
        for endpoint in old {
            guard let wanted = plan.endpoint(at: endpoint.address) else {
                removed.append(endpoint)
                continue
            }
            if wanted.roles != endpoint.roles {
                endpoint.roles = wanted.roles
                announce(wanted)
            }
            kept.append(endpoint)
        }
        for endpoint in started {
            if let wanted = plan.endpoint(at: endpoint.address) { announce(wanted) }
        }
        current.withLockedValue { $0 = kept + started }
        for endpoint in removed {
            await endpoint.close()
            logger.info("http: endpoint \(endpoint.address) closed")
        }
    }

    func close() async {
        let old = current.withLockedValue { servers -> [MetricsServer] in
            defer { servers = [] }
            return servers
        }
        for endpoint in old { await endpoint.close() }
    }

    /// The log lines of an endpoint that opened or now answers other paths.
    private func announce(_ endpoint: HTTPEndpointPlan.Endpoint) {
        let address = endpoint.address
        if endpoint.roles.contains(.metrics) {
            if !Self.isLoopback(address.host) {
                logger.notice(
                    "metrics_listen \(address) is not a loopback address: anyone who can reach it can read the metrics")
            }
            logger.info("metrics: serving http://\(address)/metrics")
        }
        if endpoint.roles.contains(.health) {
            let only = endpoint.roles == .health ? " (health only: /metrics is 404 here)" : ""
            logger.info("health: serving http://\(address)/healthz and /readyz\(only)")
        }
    }

    private static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }
}
