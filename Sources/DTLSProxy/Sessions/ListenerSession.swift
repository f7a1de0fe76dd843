import Foundation
import NIOCore

/// One client's DTLS session: its `SSL` object, its backend socket and its timers.
///
/// A session is created only for a ClientHello that carried a valid cookie,
/// lives on its listener's event loop, and is touched only there. It ends
/// through `close(_:notifyPeer:)`, the single place that releases everything
/// it holds: timers, backend socket, table entry and session slot; the `SSL`
/// object goes with the last reference.
final class ListenerSession {
    enum State {
        case handshaking
        case established
        case closed
    }

    let peer: SocketAddress
    let clientRandom: [UInt8]
    let isReplacement: Bool
    private(set) var state: State = .handshaking
    private let connection: DTLSServerConnection
    unowned let router: ListenerRouter
    /// The listener runtime this session was created with; a reload does not change it.
    let runtime: ListenerRuntime
    private var backend: BackendLink?
    /// This handshake's hold on its source's share (``HandshakeShares``) until it completes or the session closes.
    private var handshakeSlot: HandshakeSlot?
    /// The route chosen when the handshake completed, and which of its backends this session uses.
    private var route: ResolvedRoute?
    private var member = 0
    /// The PROXY v2 header every datagram to the backend starts with, when the route asks for one.
    private var proxyHeader: [UInt8]?
    private var timers = SessionTimers()
    private var traffic = TrafficTally()
    private var undecryptableInARow = 0
    /// The largest backend datagram one record can carry; fixed once the cipher and MTU are.
    private var maximumPlaintext = 0
    private var cipher = "none"
    private var version = "none"
    /// When the handshake completed on our side.
    private var establishedAt = NIODeadline.distantFuture

    init(
        peer: SocketAddress, clientRandom: [UInt8], isReplacement: Bool, connection: DTLSServerConnection,
        handshakeSlot: HandshakeSlot, router: ListenerRouter, runtime: ListenerRuntime
    ) {
        self.handshakeSlot = handshakeSlot
        self.runtime = runtime
        self.peer = peer
        self.clientRandom = clientRandom
        self.isReplacement = isReplacement
        self.connection = connection
        self.router = router
    }

    var isEstablished: Bool { state == .established }
    private var eventLoop: EventLoop { router.eventLoop }

    /// Starts the handshake from the ClientHello that carried a valid cookie.
    func start(clientHello: ByteBuffer) {
        guard connection.start(clientHello: clientHello) else {
            close(.handshakeFailed, notifyPeer: false, detail: "OpenSSL refused the ClientHello")
            return
        }
        timers.startHandshakeDeadline(on: eventLoop, in: runtime.handshakeTimeout) { [weak self] in
            self?.close(.handshakeTimeout, notifyPeer: true)
        }
        advanceHandshake()
    }

    /// Takes one datagram the router matched to this peer.
    func receive(_ datagram: ByteBuffer) {
        guard state != .closed else { return }
        timers.lastActivity = .now()
        connection.receive(datagram)
        switch state {
        case .handshaking:
            advanceHandshake()
        case .established:
            readRecords(fromPeer: true)
        case .closed:
            break
        }
    }

    /// Encrypts one backend datagram and sends it to the peer.
    ///
    /// An empty datagram is dropped and counted: SSL_write refuses zero bytes,
    /// so it cannot become a record, and it is no reason to end the session.
    func forwardToPeer(_ datagram: ByteBuffer) {
        guard state == .established else { return }
        guard datagram.readableBytes > 0 else {
            runtime.stats.increment(.droppedEmpty)
            return
        }
        guard datagram.readableBytes <= maximumPlaintext else {
            runtime.stats.increment(.droppedOversize)
            return
        }
        timers.lastActivity = .now()
        guard connection.write(datagram) else {
            close(.error, notifyPeer: false, detail: "SSL_write failed")
            return
        }
        traffic.countOut(datagram.readableBytes)
        router.traffic.countOut(datagram.readableBytes)
        sendOutbound()
    }

    /// Counts a failure of the backend socket; the session stays. ICMP port
    /// unreachable (ECONNREFUSED) marks the backend down for the back-off,
    /// so that this and every other session of its pool move on with their
    /// next datagram (``moveIfBackendDown()``).
    func backendFailed(_ error: Error) {
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
        router.logBackendError(error, session: self)
    }

    /// `host:port` of the backend this session sends to, for log lines.
    var backendDescription: String {
        guard let route else { return "none" }
        return route.pool.endpoints[member].description
    }

    /// Called once a second by the router: see ``IdleSweep``.
    func sweepIfIdle(now: NIODeadline) -> Int {
        guard state == .established else { return 0 }
        return IdleSweep.sweep(
            endpoint: connection, socket: backend, lastActivity: timers.lastActivity,
            establishedAt: establishedAt, peerSentData: traffic.datagramsIn > 0, now: now)
    }

    /// Ends the session and releases all it holds. Safe to call more than once.
    func close(_ reason: CloseReason, notifyPeer: Bool, detail: String? = nil) {
        guard state != .closed else { return }
        let wasEstablished = state == .established
        state = .closed
        if notifyPeer {
            connection.shutdown()
            sendOutbound()
            router.flushIfNeeded()
        }
        timers.cancelAll()
        closeBackend()
        if !wasEstablished {
            runtime.stats.increment(.handshakesFailed)
            runtime.stats.releaseHandshake()
            handshakeSlot?.release()
            handshakeSlot = nil
        }
        router.sessionClosed(self, reason: reason, established: wasEstablished)
        var line = "session close peer=\(peer.logDescription) listener=\(runtime.name) cipher=\(cipher)"
        line += connection.identityLogFields
        line += timers.durationField + traffic.logFields + " reason=\(reason.rawValue)"
        if let detail { line += " detail=\(LogValue.quoted(detail))" }
        if wasEstablished || (reason != .handshakeFailed && reason != .accessDenied) {
            runtime.logger.info("\(line)")
        } else {
            runtime.logger.notice("\(line)")
        }
    }

    // MARK: - Handshake

    private func advanceHandshake() {
        let progress = connection.handshake()
        if progress == .complete {
            // The route is chosen before our final flight leaves, so that a client no route takes can be refused.
            chooseRoute()
            return
        }
        sendOutbound()
        switch progress {
        case .inProgress:
            armRetransmitTimer()
        case .complete:
            break
        case .failed(let reason):
            let closeReason: CloseReason = connection.receivedFatalAlert ? .alert : .handshakeFailed
            close(closeReason, notifyPeer: false, detail: reason)
        case .refused(let rules, let detail):
            close(.accessDenied, notifyPeer: false, detail: "refused by \(rules.joined(separator: ",")): \(detail)")
        }
    }

    /// Picks the route for the completed handshake, or refuses the client with
    /// access_denied in place of our final flight when none takes it.
    private func chooseRoute() {
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

    private func established() {
        state = .established
        establishedAt = .now()
        timers.handshakeCompleted()
        cipher = connection.cipherName
        version = connection.protocolVersion
        maximumPlaintext = connection.maximumPlaintext
        runtime.stats.increment(.handshakesCompleted)
        runtime.stats.releaseHandshake()
        handshakeSlot?.release()
        handshakeSlot = nil
        runtime.stats.metrics.handshakeDuration.recordNanoseconds((NIODeadline.now() - timers.openedAt).nanoseconds)
        if isReplacement { router.replacementEstablished(self) }
        if let route, route.proxyProtocol == .v2 {
            let tlvs =
                runtime.configuration.proxyProtocolTLVs
                ? ProxyProtocolHeader.sessionTLVs(
                    serverName: connection.serverName, pskIdentity: connection.pskIdentity,
                    commonName: connection.certificateIdentity?.commonName,
                    certificatePresented: connection.certificateIdentity != nil,
                    resumed: connection.isResumed, version: version, cipher: cipher)
                : []
            proxyHeader = ProxyProtocolHeader.header(
                source: peer, destination: router.listenerAddress ?? peer, tlvs: tlvs)
        }
        openBackend()
        runtime.logger.info(
            "session open peer=\(peer.logDescription) listener=\(runtime.name) cipher=\(cipher) version=\(version)\(connection.identityLogFields)\(connection.resumptionLogField) route=\(route?.name ?? "none") backend=\(backendDescription)"
        )
        armIdleTimer(after: runtime.idleTimeout)
        readRecords()
    }

    private func openBackend() {
        guard let route else { return }
        // Replies larger than a record can carry are dropped, so reading one
        // byte more than the MTU is enough to tell they were too large.
        let opened = BackendLink.open(
            for: self, to: route.pool.addresses[member], readSize: runtime.configuration.mtu + 1,
            receiveBuffer: runtime.configuration.backendReceiveBuffer,
            parkedCount: runtime.stats.parkedBackendSockets, eventLoop: eventLoop)
        switch opened {
        case .success(let link):
            backend = link
        case .failure(let error):
            socketOpenFailed(error.description)
        }
    }

    /// Closes the backend socket, keeping the kernel's last drops on it counted.
    private func closeBackend() {
        guard let backend else { return }
        self.backend = nil
        countKernelDrops(backend.close())
    }

    /// Adds the kernel's new drops on the backend socket to the listener's
    /// count (before a scrape or a stats line, see ``ListenerRouter/collectKernelDrops()``).
    func collectKernelDrops() {
        guard let backend else { return }
        countKernelDrops(backend.collectKernelDrops())
    }

    private func countKernelDrops(_ drops: Int) {
        if drops > 0 { runtime.stats.increment(.droppedKernelBackend, by: drops) }
    }

    /// Moves the session to another backend of its pool when its own is in a
    /// back-off period (it, or another session's datagram to it, drew ICMP
    /// port unreachable). Costs one relaxed atomic load while the backend is up.
    private func moveIfBackendDown() {
        guard let route, route.pool.isDown(member) else { return }
        let now = NIODeadline.now()
        let next = route.pool.choose(for: peer, now: now)
        guard next != member, !route.pool.isDown(next, now: now) else { return }
        let from = backendDescription
        closeBackend()
        member = next
        openBackend()
        runtime.stats.increment(.sessionsMoved)
        runtime.logger.info(
            "session moved peer=\(peer.logDescription) listener=\(runtime.name) route=\(route.name) from=\(from) to=\(backendDescription)"
        )
    }

    private func armRetransmitTimer() {
        timers.armRetransmission(for: connection, on: eventLoop) { [weak self] in
            self?.retransmit()
        }
    }

    private func retransmit() {
        guard state == .handshaking else { return }
        guard connection.handleTimeout() else {
            close(.handshakeFailed, notifyPeer: false, detail: "peer stopped answering; retransmissions exhausted")
            return
        }
        sendOutbound()
        router.flushIfNeeded()
        armRetransmitTimer()
    }

    // MARK: - Data

    /// Decrypts and forwards whatever the last datagram held.
    ///
    /// A datagram from the peer that yields neither plaintext nor a reply
    /// (a retransmitted flight) was discarded by OpenSSL: a record that failed
    /// authentication, or a replay. RFC 6347 §4.1.2.7 has such records dropped
    /// silently; `max_undecryptable_datagrams`, when set, closes a session
    /// after that many in a row.
    private func readRecords(fromPeer: Bool = false) {
        if fromPeer { moveIfBackendDown() }
        var produced = false
        while state == .established {
            // Records are decrypted into the router's scratch buffer, which is
            // never handed out and so never copied on write, then copied into a
            // buffer of exactly their size for the backend's write queue: one
            // allocation per datagram, of its size, and any record fits, even
            // one OpenSSL buffered from an earlier, larger datagram.
            router.plaintextScratch.clear()
            switch connection.read(into: &router.plaintextScratch, maximum: ListenerRouter.plaintextScratchSize) {
            case .data:
                produced = true
                let length = router.plaintextScratch.readableBytes
                var plaintext = router.allocator.buffer(capacity: length + (proxyHeader?.count ?? 0))
                if let proxyHeader { plaintext.writeBytes(proxyHeader) }
                plaintext.writeImmutableBuffer(router.plaintextScratch)
                traffic.countIn(length)
                router.traffic.countIn(length)
                if let backend, backend.send(plaintext) { router.flushAfterReadBatch(backend) }
            case .wantRead:
                if sendOutbound() { produced = true }
                if fromPeer { noteDatagram(produced: produced) }
                return
            case .closeNotify:
                close(.closeNotify, notifyPeer: true)
                return
            case .failed(let reason):
                let closeReason: CloseReason = connection.receivedFatalAlert ? .alert : .error
                close(closeReason, notifyPeer: false, detail: reason)
                return
            }
        }
    }

    private func noteDatagram(produced: Bool) {
        guard !produced else {
            undecryptableInARow = 0
            return
        }
        undecryptableInARow += 1
        runtime.stats.increment(.droppedUndecryptable)
        let limit = runtime.configuration.maxUndecryptableDatagrams
        if limit > 0, undecryptableInARow >= limit {
            close(.error, notifyPeer: true, detail: "\(undecryptableInARow) datagrams in a row could not be decrypted")
        }
    }

    @discardableResult
    private func sendOutbound() -> Bool {
        connection.drainOutbound { router.send($0, to: peer) }
    }

    private func armIdleTimer(after delay: TimeAmount) {
        timers.armIdle(on: eventLoop, in: delay) { [weak self] in
            self?.checkIdle()
        }
    }

    /// Fires once per idle period, not per datagram: re-arms for what is left.
    private func checkIdle() {
        guard state == .established else { return }
        guard let left = timers.idleTimeLeft(of: runtime.idleTimeout) else {
            close(.idle, notifyPeer: true)
            return
        }
        armIdleTimer(after: left)
    }
}
