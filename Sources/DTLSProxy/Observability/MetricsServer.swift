import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// The Prometheus endpoint: `GET /metrics` over HTTP/1.1 on `metrics_listen`.
///
/// Before each scrape every event loop adds its traffic tally to the metrics
/// and the session gauges are set, so a scrape shows exact counts. It runs on
/// the first event loop; a scrape costs that loop one render of the registry.
final class MetricsServer: Sendable {
    let address: EndpointAddress
    private let channel: Channel
    /// An HTTP connection with no traffic either way for this long is closed.
    static let idleTimeout: TimeAmount = .seconds(30)

    private init(address: EndpointAddress, channel: Channel) {
        self.address = address
        self.channel = channel
    }

    static func start(address: EndpointAddress, server: ListenerSet) async throws -> MetricsServer {
        let loop = server.loops[0]
        let resolved: SocketAddress
        do {
            resolved = try SocketAddress.makeAddressResolvingHost(address.host, port: address.port)
        } catch {
            throw StartupError(description: "metrics_listen \(address): cannot resolve: \(error)")
        }
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
                        try channel.pipeline.syncOperations.addHandler(MetricsHTTPHandler(scrape: scrape))
                    }
                }
                .bind(to: resolved)
                .get()
            return MetricsServer(address: address, channel: channel)
        } catch {
            throw StartupError(
                description: "metrics_listen \(address): cannot bind: \(ListenerSockets.describe(error))")
        }
    }

    func close() async {
        try? await channel.close()
    }
}

/// Answers `GET /metrics` (and `HEAD`); anything else is 404 or 405.
final class MetricsHTTPHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let scrape: @Sendable (EventLoop) -> EventLoopFuture<[UInt8]>
    private var request: HTTPRequestHead?

    init(scrape: @escaping @Sendable (EventLoop) -> EventLoopFuture<[UInt8]>) {
        self.scrape = scrape
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            request = head
        case .body:
            break
        case .end:
            guard let head = request else { return }
            request = nil
            respond(to: head, context: context)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            context.close(promise: nil)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    private func respond(to head: HTTPRequestHead, context: ChannelHandlerContext) {
        let path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri
        guard path == "/metrics" else {
            send(.notFound, body: Array("not found; metrics are at /metrics\n".utf8), head: head, context: context)
            return
        }
        guard head.method == .GET || head.method == .HEAD else {
            send(.methodNotAllowed, body: Array("use GET\n".utf8), head: head, context: context)
            return
        }
        scrape(context.eventLoop).assumeIsolated().whenComplete { result in
            switch result {
            case .success(let body):
                self.send(
                    .ok, body: body, head: head, context: context,
                    contentType: "text/plain; version=0.0.4; charset=utf-8")
            case .failure(let error):
                self.send(.internalServerError, body: Array("\(error)\n".utf8), head: head, context: context)
            }
        }
    }

    private func send(
        _ status: HTTPResponseStatus, body: [UInt8], head: HTTPRequestHead, context: ChannelHandlerContext,
        contentType: String = "text/plain; charset=utf-8"
    ) {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: contentType)
        headers.add(name: "Content-Length", value: String(body.count))
        if !head.isKeepAlive { headers.add(name: "Connection", value: "close") }
        context.write(
            wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))),
            promise: nil)
        if head.method != .HEAD {
            var buffer = context.channel.allocator.buffer(capacity: body.count)
            buffer.writeBytes(body)
            context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        }
        let keepAlive = head.isKeepAlive
        context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in
            if !keepAlive { context.close(promise: nil) }
        }
    }
}

/// The metrics endpoint as the configuration wants it now; a reload moves,
/// opens or closes it. The new endpoint is bound before the old one closes,
/// so a reload that cannot bind it fails and leaves the old one serving.
final class MetricsEndpoint: Sendable {
    private let server: ListenerSet
    private let logger: Logger
    private let current = NIOLockedValueBox<MetricsServer?>(nil)

    init(server: ListenerSet, logger: Logger) {
        self.server = server
        self.logger = logger
    }

    /// Opens, moves or closes the endpoint to match `address` (nil: off).
    func reconfigure(to address: EndpointAddress?) async throws {
        let old = current.withLockedValue { $0 }
        guard old?.address != address else { return }
        var new: MetricsServer?
        if let address {
            new = try await MetricsServer.start(address: address, server: server)
            if !Self.isLoopback(address.host) {
                logger.notice(
                    "metrics_listen \(address) is not a loopback address: anyone who can reach it can read the metrics")
            }
            logger.info("metrics: serving http://\(address)/metrics")
        }
        current.withLockedValue { $0 = new }
        if let old {
            await old.close()
            if new == nil { logger.info("metrics: endpoint \(old.address) closed") }
        }
    }

    func close() async {
        let old = current.withLockedValue { server -> MetricsServer? in
            defer { server = nil }
            return server
        }
        await old?.close()
    }

    private static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }
}
