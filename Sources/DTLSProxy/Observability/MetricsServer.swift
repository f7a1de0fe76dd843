import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// One HTTP/1.1 endpoint of the daemon: the Prometheus text at `GET /metrics`
/// on `metrics_listen`, the health paths (``HealthState``) there and on
/// `health_listen`; what it answers is its ``HTTPEndpointRoles``, which a
/// reload may change without rebinding.
///
/// Before each scrape every event loop adds its traffic tally to the metrics
/// and the session gauges are set, so a scrape shows exact counts. It runs on
/// the first event loop; a scrape costs that loop one render of the registry,
/// a health probe a few atomic loads.
final class MetricsServer: Sendable {
    let address: EndpointAddress
    private let channel: Channel
    private let currentRoles: NIOLockedValueBox<HTTPEndpointRoles>
    /// An HTTP connection with no traffic either way for this long is closed.
    static let idleTimeout: TimeAmount = .seconds(30)

    private init(address: EndpointAddress, channel: Channel, roles: NIOLockedValueBox<HTTPEndpointRoles>) {
        self.address = address
        self.channel = channel
        self.currentRoles = roles
    }

    /// What the endpoint answers; read afresh by every request.
    var roles: HTTPEndpointRoles {
        get { currentRoles.withLockedValue { $0 } }
        set { currentRoles.withLockedValue { $0 = newValue } }
    }

    /// Binds `endpoint.address`; errors name `endpoint.key`.
    static func start(
        _ endpoint: HTTPEndpointPlan.Endpoint, server: ListenerSet, health: HealthState
    ) async throws -> MetricsServer {
        let address = endpoint.address
        let key = endpoint.key
        let loop = server.loops[0]
        let resolved: SocketAddress
        do {
            resolved = try SocketAddress.makeAddressResolvingHost(address.host, port: address.port)
        } catch {
            throw StartupError(description: "\(key) \(address): cannot resolve: \(error)")
        }
        let roles = NIOLockedValueBox(endpoint.roles)
        let scrape: @Sendable (EventLoop) -> EventLoopFuture<[UInt8]> = { loop in
            server.flushTraffic(on: loop).map {
                for stats in server.allStats {
                    stats.metrics.sessionsActive.record(stats.active)
                    stats.metrics.backendSocketsParked.record(stats.parkedSockets.load(ordering: .relaxed))
                }
                for stats in server.connectors.allStats {
                    stats.metrics.sessionsActive.record(stats.active)
                    stats.metrics.socketsParked.record(stats.parkedSockets.load(ordering: .relaxed))
                }
                server.backendHealth.publish(server.runtimes)
                server.metrics.publishLogDrops(LogWriter.standardError.droppedLines)
                return server.metrics.render()
            }
        }
        do {
            let channel = try await ServerBootstrap(group: loop)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                // Out of descriptors, accept4 would fail again and again (AcceptPause).
                .serverChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(AcceptPause())
                    }
                }
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        // A scraper that connects and goes quiet must not hold a descriptor forever.
                        try channel.pipeline.syncOperations.addHandler(
                            IdleStateHandler(allTimeout: MetricsServer.idleTimeout))
                        try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                        try channel.pipeline.syncOperations.addHandler(
                            ObservabilityHTTPHandler(
                                roles: { roles.withLockedValue { $0 } }, health: health, scrape: scrape))
                    }
                }
                .bind(to: resolved)
                .get()
            return MetricsServer(address: address, channel: channel, roles: roles)
        } catch {
            throw StartupError(description: "\(key) \(address): cannot bind: \(ListenerSockets.describe(error))")
        }
    }

    func close() async {
        try? await channel.close()
    }
}
