import Foundation
import NIOCore
import NIOPosix

/// One local peer's DTLS client session: its `SSL` object, its UDP socket
/// connected to the server, its timers, and the local datagrams that wait
/// for the handshake.
///
/// Lives on its connector's event loop and is touched only there. It ends
/// through ``close(_:notifyServer:detail:)``, the one place that releases
/// everything: timers, server socket, queued datagrams, table entry and
/// session slot; the `SSL` object goes with the last reference.
final class ConnectorSession {
    enum State {
        case handshaking
        case established
        case closed
    }

    let peer: SocketAddress
    /// The runtime this session was created with; a reload does not change it.
    let runtime: ConnectorRuntime
    private(set) var state: State = .handshaking
    private unowned let router: ConnectorRouter
    private let connection: DTLSClientConnection
    /// The socket to the server; parked while the session is idle (``ParkableSocket``).
    private var server: ServerLink?
    /// Local datagrams that arrived before the handshake completed, oldest first.
    private var pending: [ByteBuffer] = []
    private var timers = SessionTimers()
    private var traffic = TrafficTally()
    private var maximumPlaintext = 0
    private var cipher = "none"
    /// When the handshake completed on our side.
    private var establishedAt = NIODeadline.distantFuture

    init(peer: SocketAddress, connection: DTLSClientConnection, router: ConnectorRouter, runtime: ConnectorRuntime) {
        self.peer = peer
        self.connection = connection
        self.router = router
        self.runtime = runtime
    }

    private var eventLoop: EventLoop { router.eventLoop }

    /// Opens the server socket and starts the handshake: the first flight
    /// waits in the socket's queue until NIO has registered it.
    func start() {
        timers.startHandshakeDeadline(on: eventLoop, in: runtime.handshakeTimeout) { [weak self] in
            guard let self else { return }
            self.close(
                .handshakeTimeout, notifyServer: false,
                detail: "no completed handshake within \(self.runtime.configuration.handshakeTimeout)")
        }
        // A record from the server may be as large as the server's MTU, not ours.
        let opened = ServerLink.open(
            for: self, to: runtime.serverAddress, readSize: ListenerSockets.datagramSlot,
            parkedCount: runtime.stats.parkedServerSockets, eventLoop: eventLoop)
        switch opened {
        case .success(let link):
            server = link
            advanceHandshake()
        case .failure(let error):
            socketOpenFailed(error.description)
        }
    }

    /// One datagram from the local peer: sent as one record, or queued until the handshake completes.
    func receiveFromLocal(_ datagram: ByteBuffer) {
        guard datagram.readableBytes > 0 else {
            runtime.stats.increment(.droppedEmpty)
            return
        }
        switch state {
        case .handshaking:
            guard pending.count < ConnectorConfiguration.pendingLimit else {
                runtime.stats.increment(.droppedQueueFull)
                return
            }
            // A copy of its own size: the read buffer it was sliced from is far larger.
            var copy = router.allocator.buffer(capacity: datagram.readableBytes)
            copy.writeImmutableBuffer(datagram)
            pending.append(copy)
        case .established:
            forwardToServer(datagram)
            server?.flush()
        case .closed:
            break
        }
    }

    /// One datagram from the server.
    func receiveFromServer(_ datagram: ByteBuffer) {
        timers.lastActivity = .now()
        connection.receive(datagram)
        switch state {
        case .handshaking: advanceHandshake()
        case .established: readRecords()
        case .closed: break
        }
    }

    /// Counts an error on the server socket (ICMP port unreachable, chiefly); the session stays.
    func serverFailed(_ error: Error) {
        runtime.stats.increment(.serverErrors)
        router.logServerError(error, session: self)
    }

    /// Ends the session and releases all it holds. Safe to call more than once.
    func close(_ reason: CloseReason, notifyServer: Bool, detail: String? = nil) {
        guard state != .closed else { return }
        let wasEstablished = state == .established
        state = .closed
        if notifyServer, server != nil {
            connection.shutdown()
            sendOutbound()
        }
        timers.cancelAll()
        pending.removeAll()
        if let server {
            self.server = nil
            countKernelDrops(server.close())
        }
        if !wasEstablished { runtime.stats.increment(.handshakesFailed) }
        router.sessionClosed(self, reason: reason, established: wasEstablished)
        var line =
            "session close peer=\(peer.logDescription) connector=\(runtime.name) server=\(runtime.configuration.server) cipher=\(cipher)"
        line += timers.durationField + traffic.logFields + " reason=\(reason.rawValue)"
        if let detail { line += " detail=\(LogValue.quoted(detail))" }
        if wasEstablished { runtime.logger.info("\(line)") } else { runtime.logger.notice("\(line)") }
    }

    // MARK: - Handshake

    private func advanceHandshake() {
        let progress = connection.handshake()
        // A failed handshake leaves OpenSSL's fatal alert queued: it goes out too.
        sendOutbound()
        switch progress {
        case .inProgress:
            armRetransmitTimer()
        case .complete:
            established()
        case .failed(let reason, let verification):
            if verification {
                let expected =
                    runtime.configuration.serverName.map { "server_name \($0)" } ?? runtime.configuration.serverIP.map {
                        "IP \($0)"
                    } ?? "server_ca"
                runtime.logger.warning(
                    "connector \(runtime.name): server \(runtime.serverDescription) failed verification (\(expected)): \(reason)"
                )
            }
            close(connection.receivedFatalAlert ? .alert : .handshakeFailed, notifyServer: false, detail: reason)
        }
    }

    private func established() {
        state = .established
        establishedAt = .now()
        timers.handshakeCompleted()
        cipher = connection.cipherName
        maximumPlaintext = connection.maximumPlaintext
        runtime.stats.increment(.handshakesCompleted)
        runtime.sessionCache?.keep(from: connection.ssl)
        router.handshakeCompleted()
        runtime.logger.info(
            "session open peer=\(peer.logDescription) connector=\(runtime.name) server=\(runtime.serverDescription) cipher=\(cipher) version=\(connection.protocolVersion)\(connection.identityLogFields)\(connection.resumptionLogField)"
        )
        armIdleTimer(after: runtime.idleTimeout)
        let queued = pending
        pending.removeAll()
        for datagram in queued where state == .established {
            forwardToServer(datagram)
        }
        server?.flush()
        // The server's last flight may have carried application data already.
        readRecords()
    }

    private func armRetransmitTimer() {
        timers.armRetransmission(for: connection, on: eventLoop) { [weak self] in
            self?.retransmit()
        }
    }

    private func retransmit() {
        guard state == .handshaking else { return }
        guard connection.handleTimeout() else {
            close(.handshakeFailed, notifyServer: false, detail: "server stopped answering; retransmissions exhausted")
            return
        }
        sendOutbound()
        armRetransmitTimer()
    }

    // MARK: - Data

    private func forwardToServer(_ datagram: ByteBuffer) {
        guard datagram.readableBytes <= maximumPlaintext else {
            runtime.stats.increment(.droppedOversize)
            return
        }
        timers.lastActivity = .now()
        guard connection.write(datagram) else {
            close(.error, notifyServer: false, detail: "SSL_write failed")
            return
        }
        traffic.countIn(datagram.readableBytes)
        router.traffic.countIn(datagram.readableBytes)
        connection.drainOutbound { server?.send($0) }
    }

    /// Decrypts whatever the last datagram held and sends it to the local peer.
    private func readRecords() {
        var produced = false
        while state == .established {
            router.plaintextScratch.clear()
            switch connection.read(into: &router.plaintextScratch, maximum: ListenerRouter.plaintextScratchSize) {
            case .data:
                produced = true
                let length = router.plaintextScratch.readableBytes
                var plaintext = router.allocator.buffer(capacity: length)
                plaintext.writeImmutableBuffer(router.plaintextScratch)
                traffic.countOut(length)
                router.traffic.countOut(length)
                router.sendToPeer(plaintext, peer: peer)
            case .wantRead:
                // Nothing decrypted and nothing to answer: OpenSSL dropped it (RFC 6347 §4.1.2.7).
                if !sendOutbound(), !produced { runtime.stats.increment(.droppedUndecryptable) }
                return
            case .closeNotify:
                close(.closeNotify, notifyServer: true)
                return
            case .failed(let reason):
                close(connection.receivedFatalAlert ? .alert : .error, notifyServer: false, detail: reason)
                return
            }
        }
    }

    /// Sends what OpenSSL wrote to the server; true when there was something.
    @discardableResult
    private func sendOutbound() -> Bool {
        guard let server else { return false }
        let sent = connection.drainOutbound { server.send($0) }
        if sent { server.flush() }
        return sent
    }

    // MARK: - Idle

    /// Called once a second by the router: see ``IdleSweep``. The far peer
    /// here is the server, whose application data counts as `datagramsOut`.
    func sweepIfIdle(now: NIODeadline) -> Int {
        guard state == .established else { return 0 }
        return IdleSweep.sweep(
            endpoint: connection, socket: server, lastActivity: timers.lastActivity,
            establishedAt: establishedAt, peerSentData: traffic.datagramsOut > 0, now: now)
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
            close(.idle, notifyServer: true)
            return
        }
        armIdleTimer(after: left)
    }
}

extension ConnectorSession: ConnectedSocketOwner {
    func socketRead(_ datagram: ByteBuffer) { receiveFromServer(datagram) }
    /// Sends the replies queued on the local socket.
    func socketReadComplete() { router.flushIfNeeded() }
    func socketFailed(_ error: Error) { serverFailed(error) }
    func socketOpenFailed(_ detail: String) {
        close(.error, notifyServer: false, detail: "cannot open server socket: \(detail)")
    }
}

extension ConnectorSession {
    /// Adds the kernel's new drops on the server socket to the connector's
    /// count (before a scrape or a stats line, see ``ConnectorRouter/collectKernelDrops()``).
    func collectKernelDrops() {
        guard let server else { return }
        countKernelDrops(server.collectKernelDrops())
    }

    fileprivate func countKernelDrops(_ drops: Int) {
        if drops > 0 { runtime.stats.increment(.droppedKernelServer, by: drops) }
    }
}
