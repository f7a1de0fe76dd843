import Foundation
import Logging
import NIOCore
import NIOPosix

/// A failure to start that is not a configuration error (exit code 1).
public struct StartupError: Error, CustomStringConvertible, Sendable {
    public var description: String
}

/// The running daemon's data plane: the event loops, every listener's
/// sockets on every loop, and their routers.
///
/// Each listener binds one socket per event loop on the same port with
/// SO_REUSEPORT, so the kernel spreads peers over the loops and a peer always
/// lands on the same one; its sessions and their backend sockets stay there.
public final class ProxyServer: Sendable {
    public let runtimes: [ListenerRuntime]
    private let group: MultiThreadedEventLoopGroup
    private let channels: [Channel]
    private let routers: [NIOLoopBound<ListenerRouter>]
    private let logger: Logger

    /// Builds every listener's DTLS context (loading credentials), resolves
    /// addresses and binds every socket. Throws `ConfigurationError` for bad
    /// credentials, `StartupError` for anything else; nothing is left bound on failure.
    public static func start(configuration: ProxyConfiguration, logger: Logger) async throws -> ProxyServer {
        let cookieSecret = try CookieSecret.load(configuration)
        var runtimes: [ListenerRuntime] = []
        for listener in configuration.listeners {
            let context = try DTLSServerContext(listener: listener, configFile: configuration.sourcePath)
            let backend = try resolve(listener.backend, what: "backend", listener: listener)
            runtimes.append(ListenerRuntime(configuration: listener, context: context, backendAddress: backend, logger: logger))
        }
        let workers = configuration.daemon.workers == 0 ? System.coreCount : configuration.daemon.workers
        let group = MultiThreadedEventLoopGroup(numberOfThreads: workers)
        var channels: [Channel] = []
        var routers: [NIOLoopBound<ListenerRouter>] = []
        do {
            for runtime in runtimes {
                let address = try resolve(runtime.configuration.listen, what: "listen", listener: runtime.configuration)
                try await checkPortFree(address, group: group, listener: runtime.configuration)
                for loop in group.makeIterator() {
                    let (channel, router) = try await bind(runtime, address: address, on: loop, cookieSecret: cookieSecret)
                    channels.append(channel)
                    routers.append(router)
                }
                logger.info("listener \(runtime.name) bound to \(address.logDescription), backend \(runtime.backendAddress.logDescription), \(workers) event loop(s)")
            }
        } catch {
            for channel in channels { try? await channel.close() }
            try? await group.shutdownGracefully()
            throw error
        }
        return ProxyServer(runtimes: runtimes, group: group, channels: channels, routers: routers, logger: logger)
    }

    private init(runtimes: [ListenerRuntime], group: MultiThreadedEventLoopGroup, channels: [Channel], routers: [NIOLoopBound<ListenerRouter>], logger: Logger) {
        self.runtimes = runtimes
        self.group = group
        self.channels = channels
        self.routers = routers
        self.logger = logger
    }

    private static func resolve(_ endpoint: EndpointAddress, what key: String, listener: ListenerConfiguration) throws -> SocketAddress {
        do {
            return try SocketAddress.makeAddressResolvingHost(endpoint.host, port: endpoint.port)
        } catch {
            throw StartupError(description: "listener \"\(listener.name)\": cannot resolve \(key) \(endpoint): \(error)")
        }
    }

    /// SO_REUSEPORT would let us share a port with another process of the same
    /// user; a plain bind first makes "already in use" an error, as operators expect.
    private static func checkPortFree(_ address: SocketAddress, group: EventLoopGroup, listener: ListenerConfiguration) async throws {
        do {
            let probe = try await DatagramBootstrap(group: group).bind(to: address).get()
            try await probe.close()
        } catch {
            throw StartupError(description: "listener \"\(listener.name)\": cannot bind \(address.logDescription): \(describe(error))")
        }
    }

    private static func bind(_ runtime: ListenerRuntime, address: SocketAddress, on loop: EventLoop, cookieSecret: [UInt8]) async throws -> (Channel, NIOLoopBound<ListenerRouter>) {
        let routerBox = try await loop.submit {
            NIOLoopBound(ListenerRouter(runtime: runtime, cookieSecret: cookieSecret, eventLoop: loop), eventLoop: loop)
        }.get()
        do {
            let channel = try await DatagramBootstrap(group: loop)
                .channelOption(ChannelOptions.Types.SocketOption(level: SocketOptionLevel(SOL_SOCKET), name: SocketOptionName(SO_REUSEPORT)), value: 1)
                .channelOption(.socketOption(.so_reuseaddr), value: 1)
                // Large enough for any record a client may send; DTLS records can exceed the MTU on loopback.
                .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 18 * 1024))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(routerBox.value)
                    }
                }
                .bind(to: address)
                .get()
            try await SocketBuffers.apply(receive: runtime.configuration.socketReceiveBuffer,
                                          send: runtime.configuration.socketSendBuffer, to: channel)
            return (channel, routerBox)
        } catch {
            throw StartupError(description: "listener \"\(runtime.name)\": cannot bind \(address.logDescription): \(describe(error))")
        }
    }

    private static func describe(_ error: Error) -> String {
        if let io = error as? IOError {
            return io.errnoCode == EADDRINUSE ? "Address already in use" : String(cString: strerror(io.errnoCode))
        }
        return "\(error)"
    }

    /// Sessions per event loop, per listener, in loop order.
    public func sessionCounts() async -> [Int] {
        var counts: [Int] = []
        for router in routers {
            let count = try? await router.eventLoop.submit { router.value.sessionCount }.get()
            counts.append(count ?? 0)
        }
        return counts
    }

    /// Graceful stop: stop admitting, close_notify to every session, close the sockets, stop the loops.
    public func stop() async {
        for router in routers {
            try? await router.eventLoop.submit { router.value.closeAllSessions() }.get()
        }
        for channel in channels {
            try? await channel.close()
        }
        try? await group.shutdownGracefully()
    }
}
