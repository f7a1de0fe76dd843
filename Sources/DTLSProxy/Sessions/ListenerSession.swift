import Foundation
import NIOCore

/// One client's DTLS session on a listener: the ``SessionCore`` with the
/// listener's side of it.
///
/// What a listener adds: it is created only for a ClientHello that carried a
/// valid cookie (``start(clientHello:)``), holds a share of its source's
/// handshakes until the handshake ends (``HandshakeShares``), picks its route
/// and backend when the handshake completes (refusing the client when none
/// takes it), may replace an older session of the same client, puts a PROXY
/// v2 header before every datagram when the route asks, and moves to another
/// backend of its pool when its own is marked down.
final class ListenerSession: SessionCore {
    let clientRandom: [UInt8]
    let isReplacement: Bool
    unowned let router: ListenerRouter
    /// The listener runtime this session was created with; a reload does not change it.
    let runtime: ListenerRuntime
    /// This handshake's hold on its source's share (``HandshakeShares``) until it completes or the session closes.
    private var handshakeSlot: HandshakeSlot?
    /// The route chosen when the handshake completed, and which of its backends this session uses.
    private var route: ResolvedRoute?
    private var member = 0
    /// The connection ID this session issued and the directory routes to it, once the ServerHello carried one.
    private var boundConnectionID: [UInt8]?

    init(
        peer: SocketAddress, clientRandom: [UInt8], isReplacement: Bool, connection: DTLSServerConnection,
        handshakeSlot: HandshakeSlot, router: ListenerRouter, runtime: ListenerRuntime
    ) {
        self.handshakeSlot = handshakeSlot
        self.runtime = runtime
        self.clientRandom = clientRandom
        self.isReplacement = isReplacement
        self.router = router
        super.init(
            peer: peer, side: .dtlsOnRouterSocket, endpoint: connection, host: router.host,
            settings: runtime.sessionSettings)
    }

    /// The server side of the association (the core's ``SessionCore/endpoint``, which this session created as one).
    var connection: DTLSServerConnection { unsafeDowncast(endpoint, to: DTLSServerConnection.self) }

    /// Starts the handshake from the ClientHello that carried a valid cookie.
    func start(clientHello: ByteBuffer) {
        if case .failure(let failure) = connection.start(clientHello: clientHello) {
            close(.handshakeFailed, notifyPeer: false, detail: "OpenSSL refused the ClientHello: \(failure.reason)")
            return
        }
        startHandshake()
    }

    /// `host:port` of the backend this session sends to, for log lines.
    var backendDescription: String {
        guard let route else { return "none" }
        return route.pool.endpoints[member].description
    }

    override var roleLogFields: String {
        " route=\(route?.name ?? "none") backend=\(backendDescription)"
    }

    override func closeIsNotable(reason: CloseReason, wasEstablished: Bool) -> Bool {
        !wasEstablished && (reason == .handshakeFailed || reason == .accessDenied)
    }

    // MARK: - Handshake

    /// Picks the route before our final flight leaves, so that a client no
    /// route takes is refused with access_denied in place of that flight.
    override func handshakeCompleted() {
        let facts = HandshakeFacts(
            serverName: connection.serverName, pskIdentity: connection.pskIdentity,
            certificate: connection.certificateIdentity)
        guard let chosen = runtime.routes.select(facts) else {
            let progress = connection.refuse(
                rules: ["route"], detail: "no route matches \(facts.summary) and the listener has no default backend")
            sendOutbound()
            if case .refused(let rules, let detail) = progress {
                close(.accessDenied, notifyPeer: false, detail: "refused by \(rules.joined(separator: ",")): \(detail)")
            }
            return
        }
        route = chosen
        member = chosen.pool.choose(for: peer)
        sendOutbound()
        established()
    }

    override func didEstablish() {
        releaseHandshakeHold()
        runtime.stats.metrics.handshakeDuration.recordNanoseconds((NIODeadline.now() - timers.openedAt).nanoseconds)
        if isReplacement { router.replacementEstablished(self) }
        plaintextPrefix = proxyHeader()
        openBackend()
    }

    /// The PROXY v2 header every datagram to the backend starts with, when the route asks for one.
    private func proxyHeader() -> [UInt8]? {
        guard let route, route.proxyProtocol == .v2 else { return nil }
        let tlvs =
            runtime.configuration.proxyProtocolTLVs
            ? ProxyProtocolHeader.sessionTLVs(
                serverName: connection.serverName, pskIdentity: connection.pskIdentity,
                commonName: connection.certificateIdentity?.commonName,
                certificatePresented: connection.certificateIdentity != nil,
                resumed: connection.isResumed, version: version, cipher: cipher)
            : []
        return ProxyProtocolHeader.header(source: peer, destination: router.listenerAddress ?? peer, tlvs: tlvs)
    }

    private func releaseHandshakeHold() {
        runtime.stats.releaseHandshake()
        handshakeSlot?.release()
        handshakeSlot = nil
    }

    override func released(reason: CloseReason, wasEstablished: Bool) {
        if !wasEstablished { releaseHandshakeHold() }
        // Issued in a ServerHello, bound or not: the CID may be issued again.
        if let cid = boundConnectionID ?? connection.ownConnectionID, !cid.isEmpty {
            ConnectionIDDirectory.shared.release(cid)
        }
        boundConnectionID = nil
        router.sessionClosed(self, reason: reason, established: wasEstablished)
    }

    // MARK: - Connection ID

    /// Once the ServerHello issued a CID, the directory routes its records here,
    /// from whichever loop's socket they arrive on.
    override func handshakeStepped() {
        guard boundConnectionID == nil, let cid = connection.ownConnectionID, !cid.isEmpty else { return }
        boundConnectionID = cid
        ConnectionIDDirectory.shared.bind(cid, to: self)
    }

    /// The client's address changed (RFC 9146): replies go to the new one, the
    /// backend keeps seeing this session's socket, and a PROXY v2 header names
    /// the new source.
    override func peerMoved(from old: SocketAddress) {
        router.sessionMoved(self, from: old)
        plaintextPrefix = proxyHeader()
        runtime.stats.increment(.sessionsMoved)
        runtime.logger.info(
            "session moved peer=\(old.logDescription) -> \(peer.logDescription) listener=\(runtime.name) backend=\(backendDescription)\(relay.map { " via_node=\($0.node)" } ?? "")"
        )
    }

    // MARK: - Backend

    private func openBackend() {
        guard let route else { return }
        // Replies larger than a record can carry are dropped, so reading one
        // byte more than the MTU is enough to tell they were too large.
        openSocket(
            to: route.pool.addresses[member], readSize: runtime.configuration.mtu + 1,
            receiveBuffer: runtime.configuration.backendReceiveBuffer)
    }

    /// Counts a failure of the backend socket; the session stays. ICMP port
    /// unreachable (ECONNREFUSED) marks the backend down for the back-off,
    /// so that this and every other session of its pool move on with their
    /// next datagram (``willReadPeerDatagram()``).
    override func socketFailed(_ error: Error) {
        runtime.stats.increment(.backendErrors)
        if let route, let ioError = error as? IOError, ioError.errnoCode == ECONNREFUSED {
            if route.pool.markDown(member) {
                runtime.stats.increment(.backendsMarkedDown)
                let consequence =
                    route.pool.addresses.count > 1
                    ? "marked down for \(runtime.configuration.backendBackoff): new sessions and its sessions' next datagrams go to the rest of the pool"
                    : "the route has no other backend"
                runtime.logger.warning(
                    "listener \(runtime.name): backend \(backendDescription) refused a datagram (ICMP port unreachable); \(consequence)"
                )
            }
            return
        }
        guard host.mayLogSocketError() else { return }
        runtime.logger.warning(
            "listener \(runtime.name): backend \(backendDescription) error for peer \(peer.logDescription): \(error)")
    }

    /// Moves the session to another backend of its pool when its own is in a
    /// back-off period (it, or another session's datagram to it, drew ICMP
    /// port unreachable). Costs one relaxed atomic load while the backend is up.
    override func willReadPeerDatagram() {
        guard let route, route.pool.isDown(member) else { return }
        let now = NIODeadline.now()
        let next = route.pool.choose(for: peer, now: now)
        guard next != member, !route.pool.isDown(next, now: now) else { return }
        let from = backendDescription
        closeSocket()
        member = next
        openBackend()
        runtime.stats.increment(.sessionsMoved)
        runtime.logger.info(
            "session moved peer=\(peer.logDescription) listener=\(runtime.name) route=\(route.name) from=\(from) to=\(backendDescription)"
        )
    }
}
