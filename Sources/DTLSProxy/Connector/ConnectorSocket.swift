import NIOCore
import NIOPosix

/// One connector's local socket and its router, on one event loop.
///
/// A connector serves its local peers from one loop: a tunnel carries few
/// local peers, and their server sockets then share the loop with no lock.
/// A reload that keeps the connector (same `listen` address) swaps the
/// runtime in the router and leaves the socket and live sessions alone.
final class ConnectorSocket: Sendable {
    let address: SocketAddress
    /// The one socket, its router and the runtime new sessions use.
    private let sockets: RouterSockets<ConnectorRouter, ConnectorRuntime>

    private init(address: SocketAddress, sockets: RouterSockets<ConnectorRouter, ConnectorRuntime>) {
        self.address = address
        self.sockets = sockets
    }

    /// The runtime new sessions use.
    var runtime: ConnectorRuntime { sockets.runtime }
    var channel: Channel { sockets.channels[0] }

    /// Room for the largest UDP payload NIO's read takes (``DatagramBatch`` reads
    /// the rest into slots that still exceed the largest record's plaintext).
    static let datagramSlot = 65536

    /// Binds `address` on `loop` and starts the router; throws `StartupError` when it cannot.
    static func open(
        runtime: ConnectorRuntime, address: SocketAddress, on loop: EventLoop
    ) async throws -> ConnectorSocket {
        let router = try await loop.submit {
            NIOLoopBound(ConnectorRouter(runtime: runtime, eventLoop: loop), eventLoop: loop)
        }.get()
        let channel: Channel
        do {
            channel = try await RouterSockets<ConnectorRouter, ConnectorRuntime>.serve(
                on: loop, router: router, address: address, sharedPort: false, datagramSlot: datagramSlot)
        } catch {
            throw StartupError(
                description:
                    "connector \"\(runtime.name)\": cannot bind \(address.logDescription): \(ListenerSockets.describe(error))"
            )
        }
        return ConnectorSocket(
            address: address, sockets: RouterSockets(runtime: runtime, channels: [channel], routers: [router]))
    }

    func update(runtime: ConnectorRuntime) async {
        await sockets.update(runtime: runtime) { $0.update(runtime: runtime) }
    }

    /// Stops opening sessions and sends close_notify on every one (`.shutdown` or `.reload`).
    func closeSessions(reason: CloseReason) async { await sockets.closeSessions(reason: reason) }

    /// Stops the upkeep and closes the local socket; call after ``closeSessions(reason:)``.
    func close() async { await sockets.closeSockets() }

    /// Adds the traffic tally and the kernel's drops to the counters (before a scrape or a stats line).
    func flushTraffic() -> EventLoopFuture<Void> { sockets.flushTraffic(on: sockets.routers[0].eventLoop) }

    func sessionCount() async -> Int { await sockets.sessionCounts().first ?? 0 }
}
