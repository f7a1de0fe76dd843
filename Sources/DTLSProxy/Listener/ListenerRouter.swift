import Glibc
import NIOCore

/// The router demux: the handler on one listener socket of one event loop.
///
/// Every datagram for the port arrives here. Records from a peer with a
/// session go to that session; a ClientHello without a valid cookie is
/// answered with a HelloVerifyRequest and forgotten; a ClientHello with a
/// valid cookie creates a session; anything else is dropped and counted.
/// Replies leave through this socket with sendto, so clients see one address.
final class ListenerRouter: SessionRouter {
    /// The runtime new handshakes use; a reload replaces it (``update(runtime:cookieSecret:)``).
    private(set) var runtime: ListenerRuntime
    let eventLoop: EventLoop
    /// What this loop's sessions share: scratch buffer, traffic tally, the listener socket, flushing.
    let host: SessionHost
    var allocator: ByteBufferAllocator { host.allocator }
    var cookies: CookieVerifier
    private var cookieSecret: [UInt8]
    let table = SessionTable<ListenerSession>()
    private var context: ChannelHandlerContext? { host.context }
    private var boundAddress: SocketAddress?
    var stopping = false
    /// Fragmented ClientHellos being put together, after their first fragment's cookie verified.
    var reassemblies: [SocketAddress: (reassembly: ClientHelloReassembly, started: NIODeadline)] = [:]
    static let reassemblyLimit = 1024
    var rateLimiter: SourceRateLimiter
    /// Each source's share of this loop's handshakes in progress.
    let handshakeShares = HandshakeShares()

    init(runtime: ListenerRuntime, cookieSecret: [UInt8], eventLoop: EventLoop) {
        self.runtime = runtime
        self.eventLoop = eventLoop
        self.cookieSecret = cookieSecret
        self.cookies = CookieVerifier(masterSecret: cookieSecret)
        self.rateLimiter = SourceRateLimiter(ratePerSecond: runtime.configuration.handshakeRatePerSource)
        self.host = SessionHost(eventLoop: eventLoop)
        host.busyPoll.window = runtime.sessionSettings.busyPoll
        host.routerSendFailed = { [weak self] code in
            guard let self else { return }
            self.runtime.logger.debug(
                "listener \(self.runtime.name): socket error: sendmmsg: \(String(cString: strerror(code)))")
        }
    }

    /// A reload: new handshakes use `runtime` from now on; sessions keep theirs.
    /// A changed cookie secret starts a new verifier (cookies already sent under the old one are refused once).
    func update(runtime: ListenerRuntime, cookieSecret: [UInt8]) {
        flushTraffic()
        self.runtime = runtime
        host.busyPoll.window = runtime.sessionSettings.busyPoll
        if cookieSecret != self.cookieSecret {
            self.cookieSecret = cookieSecret
            cookies = CookieVerifier(masterSecret: cookieSecret)
        }
    }

    /// The address the listener socket is bound to: the destination a PROXY
    /// header reports. (A wildcard bind reports the wildcard address; the
    /// datagram's real destination would need IP_PKTINFO.)
    var listenerAddress: SocketAddress? {
        if boundAddress == nil { boundAddress = context?.channel.localAddress }
        return boundAddress
    }

    var trafficCounters: TrafficCounters { runtime.stats.metrics.traffic }

    func countRouterSocketDrops(_ drops: Int) { runtime.stats.increment(.droppedKernelListener, by: drops) }

    /// Forgets ClientHellos being put together too: no session will take them.
    func stopAdmitting() {
        stopping = true
        reassemblies.removeAll()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        route(envelope.data, from: envelope.remoteAddress)
        host.drainRouterSocket { route($0, from: $1) }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        runtime.logger.debug("listener \(runtime.name): socket error: \(error)")
    }

    // MARK: - Routing

    private func route(_ datagram: ByteBuffer, from peer: SocketAddress) {
        if datagram.readableBytes > 0,
            datagram.getInteger(at: datagram.readerIndex, as: UInt8.self)
                == ConnectionIDRecordHeader.tls12CIDContentType
        {
            return routeByConnectionID(datagram, from: peer)
        }
        let classification: (header: DTLSRecordHeader, isClientHello: Bool)? = datagram.withUnsafeReadableBytes {
            bytes in
            guard let header = DTLSRecordHeader(bytes) else { return nil }
            let isClientHello =
                header.contentType == DTLSRecordHeader.ContentType.handshake.rawValue
                && header.epoch == 0 && header.fragmentLength > 0 && bytes[DTLSRecordHeader.length] == 1
            return (header, isClientHello)
        }
        guard let (header, isClientHello) = classification else {
            runtime.stats.increment(.droppedMalformed)
            return
        }
        if isClientHello {
            handleClientHello(datagram, from: peer)
            return
        }
        if let replacement = table.replacement(for: peer), Self.belongsToHandshake(header) {
            replacement.receiveFromDTLSPeer(datagram)
        } else if let session = table.session(for: peer) {
            session.receiveFromDTLSPeer(datagram)
        } else {
            runtime.stats.increment(.droppedNoSession)
        }
    }

    /// While a replacement handshake runs beside a live session, its records
    /// (epoch 0, handshake and ChangeCipherSpec) go to it; application data
    /// stays with the live session.
    private static func belongsToHandshake(_ header: DTLSRecordHeader) -> Bool {
        switch DTLSRecordHeader.ContentType(rawValue: header.contentType) {
        case .handshake, .changeCipherSpec: return true
        case .alert: return header.epoch == 0
        default: return false
        }
    }

    // MARK: - Called by sessions

    /// Queues datagrams to `peer` on the listener socket; flushed when the read batch ends.
    func send(_ datagrams: [ByteBuffer], to peer: SocketAddress) {
        for datagram in datagrams { host.send(datagram, to: peer) }
    }

    /// A session followed its client to a new address; a session another client
    /// had at that address is over (its client no longer holds the address).
    func sessionMoved(_ session: ListenerSession, from old: SocketAddress) {
        table.move(session, from: old)?.close(.replaced, notifyPeer: false)
    }

    func replacementEstablished(_ session: ListenerSession) {
        table.promoteReplacement(session)?.close(.replaced, notifyPeer: false)
    }

    func sessionClosed(_ session: ListenerSession, reason: CloseReason, established: Bool) {
        table.remove(session)
        session.runtime.stats.releaseSession()
        session.runtime.stats.metrics.sessionClosed(reason, established: established)
    }

}
