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
    public let stats: ConnectorStats
    let logger: Logger
    let idleTimeout: TimeAmount
    let handshakeTimeout: TimeAmount
    /// The session new local peers resume; nil with `session_tickets = false`.
    let sessionCache: ClientSessionCache?

    public init(
        configuration: ConnectorConfiguration, context: DTLSClientContext, serverAddress: SocketAddress, logger: Logger,
        stats: ConnectorStats
    ) {
        self.configuration = configuration
        self.context = context
        self.serverAddress = serverAddress
        self.stats = stats
        self.logger = logger
        idleTimeout = .nanoseconds(configuration.idleTimeout.nanoseconds)
        handshakeTimeout = .nanoseconds(configuration.handshakeTimeout.nanoseconds)
        sessionCache = configuration.sessionTickets ? ClientSessionCache() : nil
    }

    var name: String { configuration.name }

    /// `server` as configured, with the address it resolved to when that differs.
    var serverDescription: String {
        let written = configuration.server.description
        let resolved = serverAddress.logDescription
        return written == resolved ? written : "\(written) (\(resolved))"
    }
}
