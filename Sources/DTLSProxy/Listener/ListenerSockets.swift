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
    /// The sockets, their routers and the runtime new handshakes use.
    let sockets: RouterSockets<ListenerRouter, ListenerRuntime>

    private init(key: SocketKey, sockets: RouterSockets<ListenerRouter, ListenerRuntime>) {
        self.key = key
        self.sockets = sockets
    }

    /// The runtime new handshakes use.
    var runtime: ListenerRuntime { sockets.runtime }
    var channels: [Channel] { sockets.channels }

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
                        let channel = try await serve(loop, router: router, address: nil, descriptor: descriptor)
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
                        let channel = try await serve(loop, router: router, address: address)
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
        return ListenerSockets(
            key: key, sockets: RouterSockets(runtime: runtime, channels: channels, routers: routers))
    }

    private static func makeRouter(
        _ runtime: ListenerRuntime, cookieSecret: [UInt8], on loop: EventLoop
    ) async throws -> NIOLoopBound<ListenerRouter> {
        try await loop.submit {
            NIOLoopBound(ListenerRouter(runtime: runtime, cookieSecret: cookieSecret, eventLoop: loop), eventLoop: loop)
        }.get()
    }

    /// Room for one datagram: the largest DTLS record (16 KiB of plaintext plus expansion).
    static let datagramSlot = DatagramBatch.slotCapacity

    /// Serves a listener socket (bound to `address` with SO_REUSEPORT, or `descriptor` as passed).
    private static func serve(
        _ loop: EventLoop, router: NIOLoopBound<ListenerRouter>, address: SocketAddress?, descriptor: CInt? = nil
    ) async throws -> Channel {
        try await RouterSockets<ListenerRouter, ListenerRuntime>.serve(
            on: loop, router: router, address: address, descriptor: descriptor, sharedPort: true,
            datagramSlot: datagramSlot)
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
        await sockets.update(runtime: runtime) { $0.update(runtime: runtime, cookieSecret: cookieSecret) }
    }

    /// Stops admitting and sends close_notify to every session (`.shutdown` or `.reload`).
    func closeSessions(reason: CloseReason) async { await sockets.closeSessions(reason: reason) }

    /// Stops the upkeep and closes the sockets; call after ``closeSessions(reason:)``.
    func closeSockets() async { await sockets.closeSockets() }

    /// Adds every router's traffic tally and the kernel's drops to the counters now.
    func flushTraffic(on loop: EventLoop) -> EventLoopFuture<Void> { sockets.flushTraffic(on: loop) }

    /// Sessions held per router, in router order.
    func sessionCounts() async -> [Int] { await sockets.sessionCounts() }
}
