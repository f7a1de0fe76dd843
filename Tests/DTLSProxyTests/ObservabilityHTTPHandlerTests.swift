import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

@testable import DTLSProxy

/// The HTTP handler of the metrics and health endpoints on an `EmbeddedChannel`:
/// paths by role, methods, HEAD, headers.
@Suite("ObservabilityHTTPHandler")
struct ObservabilityHTTPHandlerTests {
    private struct Response {
        var head: HTTPResponseHead
        var body: String
    }

    /// Sends one request through a handler with `roles` and returns the response.
    private static func request(
        _ method: HTTPMethod, _ uri: String, roles: HTTPEndpointRoles, health: HealthState
    ) throws -> Response {
        let channel = EmbeddedChannel()
        let current = NIOLockedValueBox(roles)
        try channel.pipeline.syncOperations.addHandler(
            ObservabilityHTTPHandler(
                roles: { current.withLockedValue { $0 } }, health: health,
                scrape: { loop in loop.makeSucceededFuture(Array("dtlsproxy_up 1\n".utf8)) }))
        var head = HTTPRequestHead(version: .http1_1, method: method, uri: uri)
        head.headers.add(name: "Host", value: "localhost")
        try channel.writeInbound(HTTPServerRequestPart.head(head))
        try channel.writeInbound(HTTPServerRequestPart.end(nil))
        guard case .head(let responseHead) = try channel.readOutbound(as: HTTPServerResponsePart.self) else {
            throw ChannelError.inappropriateOperationForState
        }
        var body = ""
        while let part = try channel.readOutbound(as: HTTPServerResponsePart.self) {
            if case .body(.byteBuffer(let buffer)) = part { body += String(buffer: buffer) }
        }
        _ = try channel.finish()
        return Response(head: responseHead, body: body)
    }

    private static func readyHealth() -> HealthState {
        let health = HealthState(progress: LoopProgress(loops: []))
        health.advance(to: .ready)
        return health
    }

    @Test func probesAnswerShortPlainText() throws {
        let health = Self.readyHealth()
        for roles: HTTPEndpointRoles in [[.health], [.metrics, .health]] {
            for path in ["/healthz", "/readyz", "/readyz?verbose"] {
                let response = try Self.request(.GET, path, roles: roles, health: health)
                #expect(response.head.status == .ok, "\(path)")
                #expect(response.body == "ok\n")
                #expect(response.head.headers["Content-Type"] == ["text/plain; charset=utf-8"])
                #expect(response.head.headers["Content-Length"] == ["3"])
                #expect(response.head.headers["Cache-Control"] == ["no-store"])
            }
        }
        health.advance(to: .draining)
        let draining = try Self.request(.GET, "/readyz", roles: [.health], health: health)
        #expect(draining.head.status == .serviceUnavailable && draining.body == "draining\n")
        #expect(try Self.request(.GET, "/healthz", roles: [.health], health: health).head.status == .ok)
    }

    @Test func headHasTheHeadersAndNoBody() throws {
        let response = try Self.request(.HEAD, "/readyz", roles: [.health], health: Self.readyHealth())
        #expect(response.head.status == .ok)
        #expect(response.head.headers["Content-Length"] == ["3"])
        #expect(response.body.isEmpty)
    }

    @Test func metricsOnlyWhereTheRoleIs() throws {
        let health = Self.readyHealth()
        let scrape = try Self.request(.GET, "/metrics", roles: [.metrics, .health], health: health)
        #expect(scrape.head.status == .ok && scrape.body == "dtlsproxy_up 1\n")
        #expect(scrape.head.headers["Content-Type"] == ["text/plain; version=0.0.4; charset=utf-8"])
        let healthOnly = try Self.request(.GET, "/metrics", roles: [.health], health: health)
        #expect(healthOnly.head.status == .notFound)
        #expect(healthOnly.body == "not found; this endpoint serves /healthz and /readyz\n")
    }

    @Test func unknownPathsAre404AndOtherMethods405() throws {
        let health = Self.readyHealth()
        let unknown = try Self.request(.GET, "/", roles: [.metrics, .health], health: health)
        #expect(unknown.head.status == .notFound)
        #expect(unknown.body == "not found; this endpoint serves /metrics, /healthz and /readyz\n")
        #expect(try Self.request(.POST, "/nothing", roles: [.health], health: health).head.status == .notFound)
        for (method, path) in [(HTTPMethod.POST, "/readyz"), (.PUT, "/healthz"), (.DELETE, "/metrics")] {
            let response = try Self.request(method, path, roles: [.metrics, .health], health: health)
            #expect(response.head.status == .methodNotAllowed, "\(method) \(path)")
            #expect(response.head.headers["Allow"] == ["GET, HEAD"])
        }
    }
}
