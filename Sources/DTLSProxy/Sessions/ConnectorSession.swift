import NIOCore

/// One local peer's DTLS client session on a connector: the ``SessionCore``
/// with the connector's side of it.
///
/// What a connector adds: its session socket goes to the server and carries
/// DTLS, the handshake starts at once (the first flight waits in the socket's
/// queue until NIO has registered it), local datagrams that arrive before the
/// handshake completes wait in a short queue, and a completed handshake
/// leaves its session for the next local peer to resume.
final class ConnectorSession: SessionCore {
    /// The runtime this session was created with; a reload does not change it.
    let runtime: ConnectorRuntime
    private unowned let router: ConnectorRouter
    /// Local datagrams that arrived before the handshake completed, oldest first.
    private var pending: [ByteBuffer] = []

    /// The client side of the association (the core's ``SessionCore/endpoint``, which this session created as one).
    var connection: DTLSClientConnection { unsafeDowncast(endpoint, to: DTLSClientConnection.self) }

    init(peer: SocketAddress, connection: DTLSClientConnection, router: ConnectorRouter, runtime: ConnectorRuntime) {
        self.router = router
        self.runtime = runtime
        super.init(
            peer: peer, side: .dtlsOnSessionSocket, endpoint: connection, host: router.host,
            settings: runtime.sessionSettings)
    }

    /// Opens the server socket and starts the handshake.
    func start() {
        // A record from the server may be as large as the server's MTU, not ours.
        openSocket(to: runtime.serverAddress, readSize: ListenerSockets.datagramSlot)
        guard state != .closed else { return }
        startHandshake()
    }

    /// One datagram from the local peer: sent as one record, or queued until the handshake completes.
    func receiveFromLocal(_ datagram: ByteBuffer) {
        switch state {
        case .handshaking:
            guard datagram.readableBytes > 0 else { return runtime.stats.increment(.droppedEmpty) }
            guard pending.count < ConnectorConfiguration.pendingLimit else {
                return runtime.stats.increment(.droppedQueueFull)
            }
            // A copy of its own size: the read buffer it was sliced from is far larger.
            var copy = host.allocator.buffer(capacity: datagram.readableBytes)
            copy.writeImmutableBuffer(datagram)
            pending.append(copy)
        case .established:
            encrypt(datagram)
        case .closed:
            break
        }
    }

    /// Counts an error on the server socket (ICMP port unreachable, chiefly); the session stays.
    override func socketFailed(_ error: Error) {
        runtime.stats.increment(.serverErrors)
        guard host.mayLogSocketError() else { return }
        runtime.logger.warning(
            "connector \(runtime.name): server \(runtime.serverDescription) error for peer \(peer.logDescription): \(error)"
        )
    }

    override func handshakeFailed(_ failure: DTLSFailure) {
        guard failure.verification else { return }
        let configuration = runtime.configuration
        let expected =
            configuration.serverName.map { "server_name \($0)" } ?? configuration.serverIP.map { "IP \($0)" }
            ?? "server_ca"
        runtime.logger.warning(
            "connector \(runtime.name): server \(runtime.serverDescription) failed verification (\(expected)): \(failure.reason)"
        )
    }

    /// Keeps the session for resumption and sends what waited for the handshake.
    override func didEstablish() {
        runtime.sessionCache?.keep(from: connection.ssl)
        router.handshakeCompleted()
        let queued = pending
        pending.removeAll()
        for datagram in queued where state == .established {
            encrypt(datagram)
        }
    }

    override func released(reason: CloseReason, wasEstablished: Bool) {
        pending.removeAll()
        router.sessionClosed(self, reason: reason, established: wasEstablished)
    }
}
