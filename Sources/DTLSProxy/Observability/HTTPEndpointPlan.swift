/// What an HTTP endpoint of the daemon answers.
struct HTTPEndpointRoles: OptionSet, Sendable, Hashable {
    let rawValue: UInt8

    /// `GET /metrics`: the Prometheus text.
    static let metrics = HTTPEndpointRoles(rawValue: 1)
    /// `GET /healthz` and `GET /readyz`.
    static let health = HTTPEndpointRoles(rawValue: 2)
}

/// Which HTTP endpoints `metrics_listen` and `health_listen` ask for, and what each answers.
///
/// The metrics endpoint always answers the health paths too: a deployment that
/// already scrapes it needs no second port for probes. `health_listen` on its
/// own (or at an address other than `metrics_listen`) is an endpoint that
/// answers the health paths only, so probes can reach a port that does not
/// expose the metrics; at the same address as `metrics_listen` it is that one
/// endpoint.
struct HTTPEndpointPlan: Sendable, Equatable {
    /// One endpoint to bind.
    struct Endpoint: Sendable, Equatable {
        var address: EndpointAddress
        var roles: HTTPEndpointRoles
        /// The key that asked for it, for errors (`metrics_listen`, `health_listen`).
        var key: String
    }

    /// The endpoints, the metrics endpoint first.
    var endpoints: [Endpoint]

    init(metricsListen: EndpointAddress?, healthListen: EndpointAddress?) {
        var endpoints: [Endpoint] = []
        if let metricsListen {
            endpoints.append(Endpoint(address: metricsListen, roles: [.metrics, .health], key: "metrics_listen"))
        }
        if let healthListen, healthListen != metricsListen {
            endpoints.append(Endpoint(address: healthListen, roles: [.health], key: "health_listen"))
        }
        self.endpoints = endpoints
    }

    init(_ daemon: DaemonConfiguration) {
        self.init(metricsListen: daemon.metricsListen, healthListen: daemon.healthListen)
    }

    /// The endpoint at `address`, if the plan has one.
    func endpoint(at address: EndpointAddress) -> Endpoint? {
        endpoints.first { $0.address == address }
    }
}
