import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// What makes two configurations' listeners the same sockets across a reload:
/// the systemd socket it serves, or else the address it binds.
enum SocketKey: Hashable, Sendable, CustomStringConvertible {
    case passed(name: String)
    case address(SocketAddress)

    var description: String {
        switch self {
        case .passed(let name): return "socket passed as \"\(name)\""
        case .address(let address): return address.logDescription
        }
    }
}

/// One listener's sockets and their routers, one per socket.
///
/// A bound listener has one socket per event loop on the same port
/// (SO_REUSEPORT); a listener serving sockets passed by systemd has one
/// router per passed socket, each on one loop (see ``SocketActivation``).
/// A reload that keeps the listener swaps the runtime in every router and
/// leaves the sockets and their sessions alone.
final class ListenerSockets: Sendable {
    let key: SocketKey
    let channels: [Channel]
    let routers: [NIOLoopBound<ListenerRouter>]
    /// Once a second each router adds its traffic tally and the kernel's drops
    /// on its socket to the metrics and frees idle sessions' record buffers.
    private let flushTasks: [RepeatedTask]
    private let current: NIOLockedValueBox<ListenerRuntime>

    private init(
        key: SocketKey, runtime: ListenerRuntime, channels: [Channel], routers: [NIOLoopBound<ListenerRouter>],
        flushTasks: [RepeatedTask]
    ) {
        self.key = key
        self.channels = channels
        self.routers = routers
        self.flushTasks = flushTasks
        self.current = NIOLockedValueBox(runtime)
    }

    /// The runtime new handshakes use.
    var runtime: ListenerRuntime { current.withLockedValue { $0 } }

    /// Binds (or adopts) the sockets of `runtime` and starts their routers; on
    /// failure nothing stays open. `loops` are every event loop; `passed`, when
    /// not empty, are served instead of binding, each on the loop `pickLoop` gives.
    static func open(
        runtime: ListenerRuntime, key: SocketKey, passed: [PassedSocket], loops: [EventLoop],
        pickLoop: () -> EventLoop, cookieSecret: [UInt8]
    ) async throws -> ListenerSockets {
        var channels: [Channel] = []
        var routers: [NIOLoopBound<ListenerRouter>] = []
        do {
            switch key {
            case .passed:
                for socket in passed {
                    let loop = pickLoop()
                    let router = try await makeRouter(runtime, cookieSecret: cookieSecret, on: loop)
                    let descriptor = try SocketActivation.duplicate(socket)
                    do {
                        let channel = try await bootstrap(loop, router: router).withBoundSocket(descriptor).get()
                        channels.append(channel)
                        routers.append(router)
                    } catch {
                        throw StartupError(
                            description:
                                "listener \"\(runtime.name)\": cannot serve the socket systemd passed (fd \(socket.descriptor)): \(describe(error))"
                        )
                    }
                }
            case .address(let address):
                try await checkPortFree(address, on: loops[0], listener: runtime.name)
                for loop in loops {
                    let router = try await makeRouter(runtime, cookieSecret: cookieSecret, on: loop)
                    do {
                        let channel = try await bootstrap(loop, router: router)
                            .channelOption(
                                ChannelOptions.Types.SocketOption(
                                    level: SocketOptionLevel(SOL_SOCKET), name: SocketOptionName(SO_REUSEPORT)),
                                value: 1
                            )
                            .channelOption(.socketOption(.so_reuseaddr), value: 1)
                            .bind(to: address)
                            .get()
                        channels.append(channel)
                        routers.append(router)
                    } catch {
                        throw StartupError(
                            description:
                                "listener \"\(runtime.name)\": cannot bind \(address.logDescription): \(describe(error))"
                        )
                    }
                }
            }
            for channel in channels {
                try await SocketBuffers.apply(
                    receive: runtime.configuration.socketReceiveBuffer,
                    send: runtime.configuration.socketSendBuffer, to: channel)
            }
        } catch {
            for channel in channels { try? await channel.close() }
            throw error
        }
        let flushTasks = routers.map { router in
            router.eventLoop.scheduleRepeatedTask(initialDelay: IdleSweep.period, delay: IdleSweep.period) { _ in
                router.value.flushTraffic()
                router.value.collectRouterSocketDrops()
                router.value.sweepIdleSessions()
            }
        }
        return ListenerSockets(key: key, runtime: runtime, channels: channels, routers: routers, flushTasks: flushTasks)
    }

    private static func makeRouter(
        _ runtime: ListenerRuntime, cookieSecret: [UInt8], on loop: EventLoop
    ) async throws -> NIOLoopBound<ListenerRouter> {
        try await loop.submit {
            NIOLoopBound(ListenerRouter(runtime: runtime, cookieSecret: cookieSecret, eventLoop: loop), eventLoop: loop)
        }.get()
    }

    /// Datagrams one read system call on a listener socket may return.
    static let vectorReads = 8
    /// Room for one datagram: the largest DTLS record (16 KiB of plaintext plus expansion).
    static let datagramSlot = 18 * 1024

    private static func bootstrap(_ loop: EventLoop, router: NIOLoopBound<ListenerRouter>) -> DatagramBootstrap {
        DatagramBootstrap(group: loop)
            // Vector reads (recvmmsg): one system call returns up to `vectorReads`
            // datagrams. NIO splits the receive buffer into that many equal slots,
            // each of which must hold the largest record a client may send (DTLS
            // records can exceed the MTU on loopback): 8 × 18 KiB, reused from
            // read to read, per listener socket, not per session.
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

    /// SO_REUSEPORT would let us share a port with another process of the same
    /// user; a plain bind first makes "already in use" an error, as operators expect.
    private static func checkPortFree(_ address: SocketAddress, on loop: EventLoop, listener: String) async throws {
        do {
            let probe = try await DatagramBootstrap(group: loop).bind(to: address).get()
            try await probe.close()
        } catch {
            throw StartupError(
                description: "listener \"\(listener)\": cannot bind \(address.logDescription): \(describe(error))")
        }
    }

    static func describe(_ error: Error) -> String {
        if let io = error as? IOError {
            return io.errnoCode == EADDRINUSE ? "Address already in use" : String(cString: strerror(io.errnoCode))
        }
        return "\(error)"
    }

    /// Local addresses the sockets are bound to, for log lines.
    var localAddresses: String {
        Set(channels.compactMap { $0.localAddress?.logDescription }).sorted().joined(separator: ", ")
    }

    /// A reload kept this listener: new handshakes use `runtime`, live sessions keep theirs.
    func update(runtime: ListenerRuntime, cookieSecret: [UInt8]) async {
        current.withLockedValue { $0 = runtime }
        for router in routers {
            try? await router.eventLoop.submit { router.value.update(runtime: runtime, cookieSecret: cookieSecret) }
                .get()
        }
    }

    /// Stops admitting and sends close_notify to every session (`.shutdown` or `.reload`).
    func closeSessions(reason: CloseReason) async {
        for router in routers {
            try? await router.eventLoop.submit { router.value.closeAllSessions(reason: reason) }.get()
        }
    }

    /// Stops the flush timers and closes the sockets; call after ``closeSessions(reason:)``.
    func closeSockets() async {
        for task in flushTasks { task.cancel() }
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

    /// Adds every router's traffic tally and the kernel's drops on the
    /// listener and backend sockets to the counters now (before a scrape or a stats line).
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
}
