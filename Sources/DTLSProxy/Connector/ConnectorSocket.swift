import NIOConcurrencyHelpers
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
    let channel: Channel
    let router: NIOLoopBound<ConnectorRouter>
    /// Once a second the router adds its traffic tally to the metrics and sweeps idle sessions.
    private let flushTask: RepeatedTask
    private let current: NIOLockedValueBox<ConnectorRuntime>

    private init(
        address: SocketAddress, runtime: ConnectorRuntime, channel: Channel, router: NIOLoopBound<ConnectorRouter>,
        flushTask: RepeatedTask
    ) {
        self.address = address
        self.channel = channel
        self.router = router
        self.flushTask = flushTask
        self.current = NIOLockedValueBox(runtime)
    }

    /// The runtime new sessions use.
    var runtime: ConnectorRuntime { current.withLockedValue { $0 } }

    /// Datagrams one read on the local socket may return, and room for the largest UDP payload.
    static let vectorReads = 4
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
            channel = try await DatagramBootstrap(group: loop)
                .channelOption(.datagramVectorReadMessageCount, value: vectorReads)
                .channelOption(
                    .recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: vectorReads * datagramSlot)
                )
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(router.value)
                    }
                }
                .bind(to: address)
                .get()
        } catch {
            throw StartupError(
                description:
                    "connector \"\(runtime.name)\": cannot bind \(address.logDescription): \(ListenerSockets.describe(error))"
            )
        }
        let flushTask = loop.scheduleRepeatedTask(initialDelay: IdleSweep.period, delay: IdleSweep.period) { _ in
            router.value.flushTraffic()
            router.value.collectRouterSocketDrops()
            router.value.sweepIdleSessions()
        }
        return ConnectorSocket(
            address: address, runtime: runtime, channel: channel, router: router, flushTask: flushTask)
    }

    var eventLoop: EventLoop { router.eventLoop }

    func update(runtime: ConnectorRuntime) async {
        current.withLockedValue { $0 = runtime }
        try? await router.eventLoop.submit { self.router.value.update(runtime: runtime) }.get()
    }

    /// Stops opening sessions and sends close_notify on every one (`.shutdown` or `.reload`).
    func closeSessions(reason: CloseReason) async {
        try? await router.eventLoop.submit { self.router.value.closeAllSessions(reason: reason) }.get()
    }

    /// Stops the flush timer and closes the local socket; call after ``closeSessions(reason:)``.
    func close() async {
        flushTask.cancel()
        try? await router.eventLoop.submit {
            self.router.value.flushTraffic()
            self.router.value.collectRouterSocketDrops()
        }.get()
        try? await channel.close()
    }

    /// Adds the traffic tally and the kernel's drops to the counters (before a scrape or a stats line).
    func flushTraffic() -> EventLoopFuture<Void> {
        router.eventLoop.submit {
            self.router.value.flushTraffic()
            self.router.value.collectKernelDrops()
        }
    }

    func sessionCount() async -> Int {
        (try? await router.eventLoop.submit { self.router.value.sessionCount }.get()) ?? 0
    }
}
