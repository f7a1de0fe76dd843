import NIOCore
import NIOHTTP1

/// Answers the paths of an HTTP endpoint's roles: `/metrics` (the scrape),
/// `/healthz` and `/readyz` (``HealthState``), with `GET` or `HEAD`. A path the
/// endpoint does not serve is 404, whatever the method; another method on a
/// served path is 405 with `Allow: GET, HEAD`.
///
/// The roles are read for every request, so that a reload that adds or removes
/// the metrics at this address takes effect on connections already open.
final class ObservabilityHTTPHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let roles: @Sendable () -> HTTPEndpointRoles
    private let health: HealthState
    private let scrape: @Sendable (EventLoop) -> EventLoopFuture<[UInt8]>
    private var request: HTTPRequestHead?

    init(
        roles: @escaping @Sendable () -> HTTPEndpointRoles, health: HealthState,
        scrape: @escaping @Sendable (EventLoop) -> EventLoopFuture<[UInt8]>
    ) {
        self.roles = roles
        self.health = health
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

    /// The paths an endpoint with `roles` serves, in the order a 404 lists them.
    static func paths(of roles: HTTPEndpointRoles) -> [String] {
        (roles.contains(.metrics) ? ["/metrics"] : []) + (roles.contains(.health) ? HealthState.paths : [])
    }

    private func respond(to head: HTTPRequestHead, context: ChannelHandlerContext) {
        let path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri
        let served = Self.paths(of: roles())
        guard served.contains(path) else {
            let list =
                served.count == 1 ? served[0] : served.dropLast().joined(separator: ", ") + " and " + served.last!
            send(.notFound, body: Array("not found; this endpoint serves \(list)\n".utf8), head: head, context: context)
            return
        }
        guard head.method == .GET || head.method == .HEAD else {
            send(
                .methodNotAllowed, body: Array("use GET\n".utf8), head: head, context: context,
                extraHeaders: [("Allow", "GET, HEAD")])
            return
        }
        if let answer = health.answer(path: path, now: Int64(NIODeadline.now().uptimeNanoseconds)) {
            // A probe must see the state now, never a cached answer of a proxy in between.
            send(
                answer.status, body: Array(answer.body.utf8), head: head, context: context,
                extraHeaders: [("Cache-Control", "no-store")])
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
        contentType: String = "text/plain; charset=utf-8", extraHeaders: [(String, String)] = []
    ) {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: contentType)
        headers.add(name: "Content-Length", value: String(body.count))
        headers.add(contentsOf: extraHeaders)
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
