import Logging
import NIOCore

/// What one connector's router and sessions share: configuration, DTLS
/// context, the resolved server address, counters.
///
/// Immutable: a reload builds a new runtime and hands it to the router; each
/// session keeps the runtime it was created with until it ends.
public final class ConnectorRuntime: Sendable {
    public let configuration: ConnectorConfiguration
    public let context: DTLSClientContext
    public let serverAddress: SocketAddress

    /// `server` as configured, with the address it resolved to when that differs.
    var serverDescription: String {
        Self.describe(configuration.server, resolvedTo: serverAddress)
    }

    public let stats: ConnectorStats
    /// What its sessions take from it: timeouts, logger, counters.
    let sessionSettings: SessionSettings
    /// The session new local peers resume; nil with `session_tickets = false`.
    let sessionCache: ClientSessionCache?

    public init(
        configuration: ConnectorConfiguration, context: DTLSClientContext, serverAddress: SocketAddress, logger: Logger,
        stats: ConnectorStats, busyPoll: ConfigDuration = .zero
    ) {
        self.configuration = configuration
        self.context = context
        self.serverAddress = serverAddress
        self.stats = stats
        sessionCache = configuration.sessionTickets ? ClientSessionCache() : nil
        sessionSettings = SessionSettings(
            logger: logger, idleTimeout: configuration.idleTimeout, handshakeTimeout: configuration.handshakeTimeout,
            maxUndecryptableDatagrams: 0, stats: stats,
            logFields:
                " connector=\(configuration.name) server=\(Self.describe(configuration.server, resolvedTo: serverAddress))",
            busyPoll: busyPoll)
    }

    private static func describe(_ server: EndpointAddress, resolvedTo address: SocketAddress) -> String {
        let written = server.description
        let resolved = address.logDescription
        return written == resolved ? written : "\(written) (\(resolved))"
    }

    var name: String { configuration.name }
    var logger: Logger { sessionSettings.logger }
}
