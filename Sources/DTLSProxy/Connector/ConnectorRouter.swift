import Glibc
import NIOCore

/// The handler on a connector's local plaintext socket.
///
/// Every local peer address gets its own ``ConnectorSession`` (and so its own
/// socket towards the server: the server sees each local peer as its own
/// client). Replies from the server leave through this socket with sendto,
/// so local peers see the one address they sent to.
final class ConnectorRouter: SessionRouter {
    /// The runtime new sessions use; a reload replaces it, sessions keep theirs.
    private(set) var runtime: ConnectorRuntime
    let eventLoop: EventLoop
    /// What this connector's sessions share: scratch buffer, traffic tally, the local socket, flushing.
    let host: SessionHost
    let table = SessionTable<ConnectorSession>()
    private var context: ChannelHandlerContext? { host.context }
    private var stopping = false
    private var backoff = HandshakeBackoff()

    init(runtime: ConnectorRuntime, eventLoop: EventLoop) {
        self.runtime = runtime
        self.eventLoop = eventLoop
        host = SessionHost(eventLoop: eventLoop)
        host.busyPoll.window = runtime.sessionSettings.busyPoll
        host.routerSendFailed = { [weak self] code in
            guard let self else { return }
            self.runtime.logger.debug(
                "connector \(self.runtime.name): local socket error: sendmmsg: \(String(cString: strerror(code)))")
        }
    }

    var trafficCounters: TrafficCounters { runtime.stats.metrics.traffic }

    func countRouterSocketDrops(_ drops: Int) { runtime.stats.increment(.droppedKernelLocal, by: drops) }

    func stopAdmitting() { stopping = true }

    /// A reload kept this connector: new sessions use `runtime`.
    func update(runtime: ConnectorRuntime) {
        flushTraffic()
        self.runtime = runtime
        host.busyPoll.window = runtime.sessionSettings.busyPoll
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        receive(envelope.data, from: envelope.remoteAddress)
        host.drainRouterSocket { receive($0, from: $1) }
    }

    /// One datagram from a local peer: to its session, opened for it if need be.
    private func receive(_ datagram: ByteBuffer, from peer: SocketAddress) {
        if let session = table.session(for: peer) {
            session.receiveFromLocal(datagram)
        } else {
            open(for: peer)?.receiveFromLocal(datagram)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        runtime.logger.debug("connector \(runtime.name): local socket error: \(error)")
    }

    /// A new session for a local peer's first datagram; nil when refused.
    private func open(for peer: SocketAddress) -> ConnectorSession? {
        guard !stopping else { return nil }
        guard backoff.allows(.now()) else {
            runtime.stats.increment(.droppedBackoff)
            return nil
        }
        guard runtime.stats.reserveSession(limit: runtime.configuration.maxSessions) else {
            runtime.stats.increment(.droppedSessionLimit)
            return nil
        }
        let connection: DTLSClientConnection
        do {
            connection = try DTLSClientConnection(
                context: runtime.context, ipv6: runtime.serverAddress.isIPv6, allocator: host.allocator)
            runtime.sessionCache?.offer(to: connection.ssl)
        } catch {
            runtime.stats.releaseSession()
            runtime.logger.error(
                "connector \(runtime.name): cannot create a session for \(peer.logDescription): \(error)")
            return nil
        }
        let session = ConnectorSession(peer: peer, connection: connection, router: self, runtime: runtime)
        table.insert(session)
        runtime.stats.increment(.sessionsCreated)
        runtime.logger.debug(
            "handshake start peer=\(peer.logDescription) connector=\(runtime.name) server=\(runtime.serverDescription)")
        session.start()
        return session.state == .closed ? nil : session
    }

    // MARK: - Called by sessions

    /// A session's handshake completed: the server takes new sessions again.
    func handshakeCompleted() {
        backoff.succeeded()
    }

    func sessionClosed(_ session: ConnectorSession, reason: CloseReason, established: Bool) {
        table.remove(session)
        // A failed handshake pauses new ones (not one we cut short at shutdown or reload).
        if !established, reason != .shutdown, reason != .reload {
            let pause = backoff.failed(at: .now())
            if backoff.failures == 1 || pause == HandshakeBackoff.maximum {
                runtime.logger.notice(
                    "connector \(runtime.name): handshake with \(session.runtime.serverDescription) failed; no new session for \(pause.nanoseconds / 1_000_000) ms (\(backoff.failures) failure(s) in a row)"
                )
            }
        }
        session.runtime.stats.releaseSession()
        session.runtime.stats.metrics.sessionClosed(reason)
    }

}
