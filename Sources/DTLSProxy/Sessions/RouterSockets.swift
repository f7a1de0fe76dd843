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

    /// A datagram bootstrap for a router's socket on `loop`, with `router` as its handler.
    ///
    /// Vector reads (recvmmsg): one system call returns up to `vectorReads`
    /// datagrams. NIO splits the receive buffer into that many equal slots,
    /// each of which must hold the largest datagram the socket may receive,
    /// reused from read to read, per router socket, not per session.
    static func bootstrap(
        on loop: EventLoop, router: NIOLoopBound<Router>, vectorReads: Int, datagramSlot: Int
    ) -> DatagramBootstrap {
        DatagramBootstrap(group: loop)
            .channelOption(.datagramVectorReadMessageCount, value: vectorReads)
            .channelOption(
                .recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: vectorReads * datagramSlot)
            )
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(router.value)
                }
            }
    }
}
