import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

@testable import DTLSProxy

/// `/healthz` and `/readyz`: which endpoint answers them, what they answer, and the stop requests of the drain.
@Suite("Health endpoints and the drain")
struct HealthStateTests {
    private static let metrics = EndpointAddress(host: "127.0.0.1", port: 9464)
    private static let health = EndpointAddress(host: "127.0.0.1", port: 8081)

    @Test func theMetricsEndpointAlsoAnswersHealth() {
        #expect(HTTPEndpointPlan(metricsListen: nil, healthListen: nil).endpoints.isEmpty)
        #expect(
            HTTPEndpointPlan(metricsListen: Self.metrics, healthListen: nil).endpoints == [
                .init(address: Self.metrics, roles: [.metrics, .health], key: "metrics_listen")
            ])
        #expect(
            HTTPEndpointPlan(metricsListen: Self.metrics, healthListen: Self.metrics).endpoints == [
                .init(address: Self.metrics, roles: [.metrics, .health], key: "metrics_listen")
            ])
    }

    @Test func healthListenAloneServesHealthOnly() {
        #expect(
            HTTPEndpointPlan(metricsListen: nil, healthListen: Self.health).endpoints == [
                .init(address: Self.health, roles: [.health], key: "health_listen")
            ])
        let both = HTTPEndpointPlan(metricsListen: Self.metrics, healthListen: Self.health)
        #expect(both.endpoints.map(\.address) == [Self.metrics, Self.health])
        #expect(both.endpoint(at: Self.health)?.roles == [.health])
        #expect(ObservabilityHTTPHandler.paths(of: [.health]) == ["/healthz", "/readyz"])
        #expect(ObservabilityHTTPHandler.paths(of: [.metrics, .health]) == ["/metrics", "/healthz", "/readyz"])
    }

    @Test func readinessOnlyMovesForward() {
        let state = HealthState(progress: LoopProgress(loops: []))
        let now = Int64(NIODeadline.now().uptimeNanoseconds)
        #expect(state.answer(path: "/readyz", now: now) == .init(status: .serviceUnavailable, body: "starting\n"))
        state.advance(to: .ready)
        #expect(state.answer(path: "/readyz", now: now) == .init(status: .ok, body: "ok\n"))
        state.advance(to: .draining)
        #expect(state.answer(path: "/readyz", now: now) == .init(status: .serviceUnavailable, body: "draining\n"))
        state.advance(to: .ready)
        #expect(state.readiness == .draining, "a late ready must not undo the drain")
        state.advance(to: .stopping)
        #expect(state.answer(path: "/readyz", now: now) == .init(status: .serviceUnavailable, body: "stopping\n"))
        #expect(state.answer(path: "/metrics", now: now) == nil)
    }

    @Test func healthzFailsWhenALoopStopsCheckingIn() {
        let loop = EmbeddedEventLoop()
        let progress = LoopProgress(loops: [loop, loop])
        let state = HealthState(progress: progress, stallThreshold: .seconds(5))
        let start = Int64(NIODeadline.now().uptimeNanoseconds)
        #expect(state.answer(path: "/healthz", now: start) == .init(status: .ok, body: "ok\n"))
        // Readiness does not matter to liveness: a draining daemon is alive.
        state.advance(to: .draining)
        #expect(state.answer(path: "/healthz", now: start + 4_000_000_000)?.status == .ok)
        #expect(
            state.answer(path: "/healthz", now: start + 6_000_000_000)
                == .init(status: .serviceUnavailable, body: "stalled: event loop(s) 0,1\n"))
    }

    @Test func stopRequestsAreCounted() async {
        let stops = StopRequests()
        let first = Task { await stops.wait(for: 1) }
        let second = Task { await stops.wait(for: 2) }
        stops.request()
        await first.value
        #expect(stops.count == 1)
        stops.request()
        await second.value
        #expect(stops.count == 2)
        await stops.wait(for: 2)  // already there: returns at once
    }

    @Test func aCancelledWaitReturns() async {
        let stops = StopRequests()
        let waiting = Task { await stops.wait(for: 1) }
        waiting.cancel()
        await waiting.value
        #expect(stops.count == 0)
    }
}
