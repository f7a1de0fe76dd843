import Logging
import NIOCore

/// What every event loop's router of one listener shares: its configuration,
/// its DTLS context, its routes and their backends, and its counters.
///
/// Immutable: a reload builds a new runtime and hands it to the routers; each
/// session keeps the runtime it was created with (its context, route and
/// timeouts) until it ends.
public final class ListenerRuntime: Sendable {
    public let configuration: ListenerConfiguration
    public let context: DTLSServerContext
    /// The routes in file order and the default route, with resolved backends.
    public let routes: RouteTable
    public let stats: ListenerStats
    /// What its sessions take from it: timeouts, logger, counters.
    let sessionSettings: SessionSettings
    /// `[daemon] node_id`: connection IDs whose first byte differs belong to another instance.
    let nodeID: UInt8
    /// The link to the other instances, when `[cluster]` is configured.
    let cluster: ClusterLink?

    /// `stats` carries a listener's counters over a reload; a new listener gets fresh ones.
    public init(
        configuration: ListenerConfiguration, context: DTLSServerContext, routes: RouteTable, logger: Logger,
        stats: ListenerStats? = nil, nodeID: Int = 0, cluster: ClusterLink? = nil,
        busyPoll: ConfigDuration = .zero
    ) {
        self.nodeID = UInt8(clamping: nodeID)
        self.cluster = cluster
        self.configuration = configuration
        self.context = context
        self.routes = routes
        self.stats = stats ?? ListenerStats(listenerName: configuration.name)
        sessionSettings = SessionSettings(
            logger: logger, idleTimeout: configuration.idleTimeout, handshakeTimeout: configuration.handshakeTimeout,
            maxUndecryptableDatagrams: configuration.maxUndecryptableDatagrams, stats: self.stats,
            logFields: " listener=\(configuration.name)", busyPoll: busyPoll)
    }

    var name: String { configuration.name }
    var logger: Logger { sessionSettings.logger }
}

extension SocketAddress {
    /// The bytes a cookie is bound to: address family, address and port.
    var cookieMaterial: [UInt8] {
        var bytes = hostMaterial
        if let port { bytes += [UInt8(port >> 8), UInt8(port & 0xFF)] }
        return bytes
    }

    /// `ip:port` with IPv6 in brackets, for log lines.
    var logDescription: String {
        guard let ip = ipAddress, let port else { return description }
        return ip.contains(":") ? "[\(ip)]:\(port)" : "\(ip):\(port)"
    }

    var isIPv6: Bool {
        if case .v6 = self { return true }
        return false
    }
}
