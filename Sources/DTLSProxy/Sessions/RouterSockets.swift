import Glibc
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// A listener's or a connector's routers, each the handler of its own socket
/// on its own event loop, with the runtime new sessions use and the upkeep
/// every router runs once a second: traffic tally to the metrics, the
/// kernel's drops on its socket, the idle sweep.
///
/// A reload that keeps the listener or connector swaps the runtime in every
/// router and leaves the sockets and their sessions alone.
final class RouterSockets<Router: SessionRouter & SendableMetatype, Runtime: Sendable>: Sendable {
    let channels: [Channel]
    let routers: [NIOLoopBound<Router>]
    private let upkeep: [RepeatedTask]
    private let current: NIOLockedValueBox<Runtime>

    /// Takes over `channels`, served by `routers` (one each, in order), and starts their upkeep.
    init(runtime: Runtime, channels: [Channel], routers: [NIOLoopBound<Router>]) {
        self.channels = channels
        self.routers = routers
        current = NIOLockedValueBox(runtime)
        upkeep = routers.map { router in
            router.eventLoop.scheduleRepeatedTask(initialDelay: IdleSweep.period, delay: IdleSweep.period) { _ in
                router.value.flushTraffic()
                router.value.collectRouterSocketDrops()
                router.value.sweepIdleSessions()
            }
        }
    }

    /// The runtime new sessions use.
    var runtime: Runtime { current.withLockedValue { $0 } }

    /// A reload kept the sockets: new sessions use `runtime`; `apply` hands it to each router on its loop.
    func update(runtime: Runtime, apply: @escaping @Sendable (Router) -> Void) async {
        current.withLockedValue { $0 = runtime }
        for router in routers {
            try? await router.eventLoop.submit { apply(router.value) }.get()
        }
    }

    /// Stops admitting and sends close_notify to every session (`.shutdown` or `.reload`).
    func closeSessions(reason: CloseReason) async {
        for router in routers {
            try? await router.eventLoop.submit { router.value.closeAllSessions(reason: reason) }.get()
        }
    }

    /// Stops the upkeep and closes the sockets; call after ``closeSessions(reason:)``.
    func closeSockets() async {
        for task in upkeep { task.cancel() }
        for router in routers {
            try? await router.eventLoop.submit {
                router.value.flushTraffic()
                router.value.collectRouterSocketDrops()
            }.get()
        }
        for channel in channels {
            try? await channel.close()
        }
    }

    /// Adds every router's traffic tally and the kernel's drops on its socket
    /// and its sessions' sockets to the counters now (before a scrape or a stats line).
    func flushTraffic(on loop: EventLoop) -> EventLoopFuture<Void> {
        let futures = routers.map { router in
            router.eventLoop.submit {
                router.value.flushTraffic()
                router.value.collectKernelDrops()
            }
        }
        return EventLoopFuture.andAllComplete(futures, on: loop)
    }

    /// Sessions held per router, in router order.
    func sessionCounts() async -> [Int] {
        var counts: [Int] = []
        for router in routers {
            counts.append((try? await router.eventLoop.submit { router.value.sessionCount }.get()) ?? 0)
        }
        return counts
    }

    /// Serves a router's socket on `loop` with `router` as its handler: the
    /// socket `descriptor` (passed by systemd), or else a new one bound to
    /// `address` (with SO_REUSEPORT when `sharedPort`, one socket per loop).
    ///
    /// The daemon opens the socket itself so that it knows its descriptor:
    /// the router's ``SessionHost`` sends on it with `sendmmsg` and drains it
    /// with `recvmmsg` (``DatagramBatch``). NIO reads one datagram per readable
    /// event into a slot of `datagramSlot` bytes and tells the router; the
    /// router drains the rest.
    static func serve(
        on loop: EventLoop, router: NIOLoopBound<Router>, address: SocketAddress?, descriptor: CInt? = nil,
        sharedPort: Bool, datagramSlot: Int
    ) async throws -> Channel {
        let socket = try descriptor ?? bindSocket(address!, sharedPort: sharedPort)
        let channel: Channel
        do {
            channel = try await DatagramBootstrap(group: loop)
                .channelOption(.maxMessagesPerRead, value: 1)
                .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: datagramSlot))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(router.value)
                    }
                }
                .withBoundSocket(socket)
                .get()
        } catch {
            Glibc.close(socket)
            throw error
        }
        try await loop.submit { router.value.host.routerDescriptor = socket }.get()
        return channel
    }

    /// A non-blocking UDP socket bound to `address`; its errno as an `IOError`.
    static func bindSocket(_ address: SocketAddress, sharedPort: Bool) throws -> CInt {
        let family = address.isIPv6 ? AF_INET6 : AF_INET
        let socket = Glibc.socket(
            family, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard socket >= 0 else { throw IOError(errnoCode: errno, reason: "socket") }
        var one: CInt = 1
        let length = socklen_t(MemoryLayout<CInt>.size)
        let bound = address.withSockAddr { pointer, size -> CInt in
            if sharedPort {
                guard setsockopt(socket, SOL_SOCKET, SO_REUSEPORT, &one, length) == 0,
                    setsockopt(socket, SOL_SOCKET, SO_REUSEADDR, &one, length) == 0
                else { return -1 }
            }
            return Glibc.bind(socket, pointer, socklen_t(size))
        }
        guard bound == 0 else {
            let code = errno
            Glibc.close(socket)
            throw IOError(errnoCode: code, reason: "bind")
        }
        return socket
    }
}
