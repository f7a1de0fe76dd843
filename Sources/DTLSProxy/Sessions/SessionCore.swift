import NIOCore

/// A session's own UDP socket, connected to the far end: a listener
/// session's backend, a connector session's server.
typealias SessionSocket = ParkableSocket<SessionCore>

/// What both roles' sessions are: one DTLS association between the peer a
/// router keys it by and the session's own connected socket.
///
/// Written once for both roles: the handshake with its deadline and
/// retransmission timer, the read loop, encryption of plaintext, the idle
/// timeout and sweep, the session socket, and the close path that releases
/// everything (timers, socket, then the role's own holdings through
/// ``released(reason:wasEstablished:)``). ``ListenerSession`` and
/// ``ConnectorSession`` supply only what differs, and ``side`` says which
/// socket carries DTLS: a listener's client speaks DTLS to the router's
/// socket and its plaintext goes to the backend on the session socket; a
/// connector's local peer speaks plaintext to the router's socket and DTLS
/// goes to the server on the session socket.
///
/// Lives on one event loop and is touched only there. Talks to its router
/// through ``SessionHost`` alone.
class SessionCore: ConnectedSocketOwner {
    enum State {
        case handshaking
        case established
        case closed
    }

    /// Which socket carries DTLS records.
    enum Side {
        /// A listener session: DTLS on the router's socket, plaintext on the session socket.
        case dtlsOnRouterSocket
        /// A connector session: plaintext on the router's socket, DTLS on the session socket.
        case dtlsOnSessionSocket
    }

    /// The address the router keys this session by: the peer on the router's
    /// socket. A listener session with a connection ID follows its client to a
    /// new address (``receiveFromDTLSPeer(_:from:)``).
    var peer: SocketAddress
    let side: Side
    let endpoint: DTLSEndpoint
    unowned let host: SessionHost
    let settings: SessionSettings
    private(set) var state: State = .handshaking
    /// The session's own socket; nil before it opens and after the session closes.
    var socket: SessionSocket?
    var timers = SessionTimers()
    var traffic = TrafficTally()
    /// Bytes put before every plaintext datagram delivered (a listener's PROXY v2 header).
    var plaintextPrefix: [UInt8]?
    var undecryptableInARow = 0
    /// The largest plaintext one record can carry; fixed once the cipher and MTU are.
    private(set) var maximumPlaintext = 0
    private(set) var cipher = "none"
    private(set) var version = "none"
    /// When the handshake completed on our side.
    private(set) var establishedAt = NIODeadline.distantFuture
    /// Application data records decrypted; the sweep keeps an unconfirmed session's buffers (``IdleSweep``).
    var decryptedRecords = 0
    /// After a move to a new peer address, until that address has sent a second
    /// authenticated record: the bytes it sent and those sent to it, which may
    /// not exceed three times as many (RFC 9146 §6, against amplification).
    var unverifiedAddress: (received: Int, sent: Int)?
    /// The record layer's drops already counted (``ConnectionIDRecordStats/total``).
    var countedRecordLayerDrops = 0
    /// The other instance the client's datagrams come through, when they reach that one (``ClusterLink``).
    var relay: ClusterRelay?

    init(peer: SocketAddress, side: Side, endpoint: DTLSEndpoint, host: SessionHost, settings: SessionSettings) {
        self.peer = peer
        self.side = side
        self.endpoint = endpoint
        self.host = host
        self.settings = settings
    }

    var eventLoop: EventLoop { host.eventLoop }
    var isEstablished: Bool { state == .established }

    // MARK: - What each role supplies

    /// The handshake completed on our side; the role may still refuse the
    /// peer, else it calls ``established()``. Our last flight is still queued.
    func handshakeCompleted() {
        sendOutbound()
        established()
    }

    /// The handshake failed; before the session closes.
    func handshakeFailed(_ failure: DTLSFailure) {}

    /// The session is established: what the role sets up before data flows.
    func didEstablish() {}

    /// A datagram arrived from the DTLS peer while established, before it is read.
    func willReadPeerDatagram() {}

    /// A handshake step ran (it may have issued a connection ID).
    func handshakeStepped() {}

    /// The session's peer is now at ``peer``, no longer at `old`.
    func peerMoved(from old: SocketAddress) {}

    /// Releases what the role holds, last on every close path.
    func released(reason: CloseReason, wasEstablished: Bool) {}

    /// Whether the close line is worth `notice` rather than `info`.
    func closeIsNotable(reason: CloseReason, wasEstablished: Bool) -> Bool { !wasEstablished }

    /// ` key=value` fields of the role for the open and close lines, after the peer and owner.
    var roleLogFields: String { "" }

    // MARK: - ConnectedSocketOwner: the session socket

    func socketRead(_ datagram: ByteBuffer) {
        switch side {
        case .dtlsOnRouterSocket: encrypt(datagram)
        case .dtlsOnSessionSocket: receiveFromDTLSPeer(datagram)
        }
    }

    func socketRead(bytes: UnsafeRawBufferPointer) {
        switch side {
        case .dtlsOnRouterSocket: encrypt(bytes: bytes)
        // The BIO keeps the datagram until OpenSSL has read it: it gets a copy.
        case .dtlsOnSessionSocket: receiveFromDTLSPeer(host.allocator.buffer(bytes: bytes))
        }
    }

    func socketReadComplete() { host.flush() }

    func socketFailed(_ error: Error) {}

    func socketOpenFailed(_ detail: String) {
        switch side {
        case .dtlsOnRouterSocket: close(.error, notifyPeer: true, detail: "cannot open backend socket: \(detail)")
        case .dtlsOnSessionSocket: close(.error, notifyPeer: false, detail: "cannot open server socket: \(detail)")
        }
    }

    /// Opens the session socket to `remote`, reading up to `readSize` bytes per datagram.
    func openSocket(to remote: SocketAddress, readSize: Int, receiveBuffer: Int = 0) {
        let opened = SessionSocket.open(
            for: self, to: remote, readSize: readSize, receiveBuffer: receiveBuffer,
            parkedCount: settings.stats.parkedSockets, batch: host.batch, eventLoop: eventLoop)
        switch opened {
        case .success(let socket) where state == .closed:
            // Its registration failed at once and closed the session.
            _ = socket.close()
        case .success(let socket): self.socket = socket
        case .failure(let error): socketOpenFailed(error.description)
        }
    }

    /// Closes the session socket, keeping the kernel's last drops on it counted.
    func closeSocket() {
        guard let socket else { return }
        self.socket = nil
        countKernelDrops(socket.close())
    }

    /// Adds the kernel's new drops on the session socket to the role's count (before a scrape or a stats line).
    func collectKernelDrops() {
        guard let socket else { return }
        countKernelDrops(socket.collectKernelDrops())
    }

    private func countKernelDrops(_ drops: Int) {
        if drops > 0 { settings.stats.increment(settings.stats.sessionSocketKernelDrops, by: drops) }
    }

    // MARK: - Handshake

    /// Starts the handshake deadline and takes the first step.
    func startHandshake() {
        timers.startHandshakeDeadline(on: eventLoop, in: settings.handshakeTimeout) { [weak self] in
            guard let self else { return }
            self.close(
                .handshakeTimeout, notifyPeer: false,
                detail: "no completed handshake within \(self.settings.handshakeTimeoutText)")
        }
        advanceHandshake()
    }

    func advanceHandshake() {
        let progress = endpoint.handshake()
        handshakeStepped()
        countRecordLayerDrops()
        if progress == .complete { return handshakeCompleted() }
        // A failed handshake leaves OpenSSL's fatal alert queued: it goes out too.
        sendOutbound()
        switch progress {
        case .inProgress:
            armRetransmitTimer()
        case .complete:
            break
        case .failed(let failure):
            handshakeFailed(failure)
            close(endpoint.receivedFatalAlert ? .alert : .handshakeFailed, notifyPeer: false, detail: failure.reason)
        case .refused(let rules, let detail):
            close(.accessDenied, notifyPeer: false, detail: "refused by \(rules.joined(separator: ",")): \(detail)")
        }
    }

    /// Marks the session established, lets the role set up, and reads what the last flight carried.
    func established() {
        state = .established
        establishedAt = .now()
        timers.handshakeCompleted()
        cipher = endpoint.cipherName
        version = endpoint.protocolVersion
        maximumPlaintext = endpoint.maximumPlaintext
        settings.stats.increment(.handshakesCompleted)
        // Logged before the role sets up, so the line comes before any datagram the session forwards.
        settings.logger.info(
            "session open peer=\(peer.logDescription)\(settings.logFields) cipher=\(cipher) version=\(version)\(endpoint.identityLogFields)\(endpoint.resumptionLogField)\(roleLogFields)"
        )
        didEstablish()
        guard state == .established else { return }
        armIdleTimer(after: settings.idleTimeout)
        readRecords(countingUndecryptable: false)
    }

    private func armRetransmitTimer() {
        timers.armRetransmission(for: endpoint, on: eventLoop) { [weak self] in
            self?.retransmit()
        }
    }

    private func retransmit() {
        guard state == .handshaking else { return }
        if case .failure = endpoint.handleTimeout() {
            close(
                .handshakeFailed, notifyPeer: false,
                detail: "\(endpoint.peerRole) stopped answering; retransmissions exhausted")
            return
        }
        sendOutbound()
        host.flush()
        armRetransmitTimer()
    }

    // MARK: - Idle

    /// Called once a second by the router: see ``IdleSweep``.
    func sweepIfIdle(now: NIODeadline) -> Int {
        guard state == .established else { return 0 }
        return IdleSweep.sweep(
            endpoint: endpoint, socket: socket, lastActivity: timers.lastActivity,
            establishedAt: establishedAt, peerSentData: decryptedRecords > 0, now: now)
    }

    private func armIdleTimer(after delay: TimeAmount) {
        timers.armIdle(on: eventLoop, in: delay) { [weak self] in
            self?.checkIdle()
        }
    }

    /// Fires once per idle period, not per datagram: re-arms for what is left.
    private func checkIdle() {
        guard state == .established else { return }
        guard let left = timers.idleTimeLeft(of: settings.idleTimeout) else {
            close(.idle, notifyPeer: true)
            return
        }
        armIdleTimer(after: left)
    }

    // MARK: - Close

    /// Ends the session and releases all it holds. Safe to call more than once.
    func close(_ reason: CloseReason, notifyPeer: Bool, detail: String? = nil) {
        guard state != .closed else { return }
        let wasEstablished = state == .established
        state = .closed
        if notifyPeer {
            endpoint.shutdown()
            sendOutbound()
            host.flush()
        }
        timers.cancelAll()
        closeSocket()
        if !wasEstablished { settings.stats.increment(.handshakesFailed) }
        released(reason: reason, wasEstablished: wasEstablished)
        var line = "session close peer=\(peer.logDescription)\(settings.logFields) cipher=\(cipher)"
        line += endpoint.identityLogFields + roleLogFields
        line += timers.durationField + traffic.logFields + " reason=\(reason.rawValue)"
        if let detail { line += " detail=\(LogValue.quoted(detail))" }
        if closeIsNotable(reason: reason, wasEstablished: wasEstablished) {
            settings.logger.notice("\(line)")
        } else {
            settings.logger.info("\(line)")
        }
    }
}
