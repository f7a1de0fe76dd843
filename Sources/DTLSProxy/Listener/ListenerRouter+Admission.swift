import NIOCore

// Admission: what the router does with a ClientHello before any session exists
// (cookie check, reassembly of fragmented hellos, the limits, session creation).
extension ListenerRouter {
    func handleClientHello(_ datagram: ByteBuffer, from peer: SocketAddress) {
        let parsed = datagram.withUnsafeReadableBytes { ClientHelloParser.fragment($0) }
        guard case .success(let fragment) = parsed else {
            runtime.stats.increment(.droppedMalformed)
            return
        }
        if fragment.fragmentOffset != 0 {
            continueReassembly(fragment, datagram: datagram, from: peer)
            return
        }
        guard case .success(let hello) = ClientHelloParser.summary(of: fragment) else {
            runtime.stats.increment(.droppedMalformed)
            return
        }
        // A retransmission of the hello that started a handshake still running: that session answers it.
        for candidate in [table.replacement(for: peer), table.session(for: peer)].compactMap({ $0 })
        where candidate.clientRandom == hello.random {
            if candidate.isEstablished {
                runtime.stats.increment(.droppedNoSession)
            } else {
                candidate.receiveFromDTLSPeer(datagram)
            }
            return
        }
        let material = peer.cookieMaterial
        guard !hello.cookie.isEmpty, cookies.verify(hello.cookie, for: material) else {
            if !hello.cookie.isEmpty { runtime.stats.increment(.droppedBadCookie) }
            sendHelloVerifyRequest(cookie: cookies.cookie(for: material), echoing: hello, to: peer)
            return
        }
        guard !stopping else {
            runtime.stats.increment(.droppedStopping)
            return
        }
        if fragment.isWholeMessage {
            admit(datagram, hello: hello, peer: peer, material: material)
        } else {
            startReassembly(ClientHelloReassembly(first: fragment, summary: hello), for: peer)
        }
    }

    /// Holds the first fragment of a cookie-verified, fragmented ClientHello.
    func startReassembly(_ reassembly: ClientHelloReassembly, for peer: SocketAddress) {
        let now = NIODeadline.now()
        if reassemblies.count >= Self.reassemblyLimit {
            reassemblies = reassemblies.filter { now - $0.value.started < runtime.sessionSettings.handshakeTimeout }
        }
        guard reassemblies.count < Self.reassemblyLimit else {
            runtime.stats.increment(.droppedSessionLimit)
            return
        }
        reassemblies[peer] = (reassembly, now)
    }

    func continueReassembly(_ fragment: ClientHelloFragment, datagram: ByteBuffer, from peer: SocketAddress) {
        guard let pending = reassemblies[peer] else {
            // A later fragment of a hello whose session already exists: OpenSSL sorts out duplicates.
            if let session = table.replacement(for: peer) ?? table.session(for: peer), !session.isEstablished {
                session.receiveFromDTLSPeer(datagram)
            } else {
                runtime.stats.increment(.droppedNoSession)
            }
            return
        }
        var reassembly = pending.reassembly
        guard reassembly.add(fragment) else {
            runtime.stats.increment(.droppedMalformed)
            return
        }
        guard reassembly.isComplete else {
            reassemblies[peer] = (reassembly, pending.started)
            return
        }
        reassemblies[peer] = nil
        let record = reassembly.record()
        var whole = allocator.buffer(capacity: record.count)
        whole.writeBytes(record)
        admit(whole, hello: reassembly.summary, peer: peer, material: peer.cookieMaterial)
    }

    /// Creates a session for a whole ClientHello with a valid cookie.
    func admit(_ datagram: ByteBuffer, hello: ClientHelloSummary, peer: SocketAddress, material: [UInt8]) {
        guard rateLimiter.admit(peer, now: .now()) else {
            runtime.stats.increment(.droppedRateLimited)
            return
        }
        let live = table.session(for: peer)
        if let live, live.isEstablished {
            // RFC 6347 §4.2.8: the new handshake runs beside the live session and replaces it once complete.
            table.replacement(for: peer)?.close(.replaced, notifyPeer: false)
            createSession(from: datagram, hello: hello, peer: peer, material: material, asReplacement: true)
        } else {
            // A client that restarted mid-handshake: the unfinished handshake has nothing worth keeping.
            live?.close(.replaced, notifyPeer: false)
            createSession(from: datagram, hello: hello, peer: peer, material: material, asReplacement: false)
        }
    }

    func sendHelloVerifyRequest(cookie: [UInt8], echoing hello: ClientHelloSummary, to peer: SocketAddress) {
        let bytes = HelloVerifyRequest.datagram(
            cookie: cookie, recordSequenceNumber: hello.recordSequenceNumber, messageSequence: hello.messageSequence)
        var buffer = allocator.buffer(capacity: bytes.count)
        buffer.writeBytes(bytes)
        send([buffer], to: peer)
        runtime.stats.increment(.helloVerifySent)
    }

    func createSession(
        from datagram: ByteBuffer, hello: ClientHelloSummary, peer: SocketAddress, material: [UInt8],
        asReplacement: Bool
    ) {
        // Released when the handshake completes or its session closes; a refusal below releases it at once.
        guard case .success(let handshakeSlot) = handshakeShares.reserve(peer, limits: .init(runtime.configuration))
        else {
            runtime.stats.increment(.droppedHandshakeShare)
            return
        }
        guard runtime.stats.reserveSession(limit: runtime.configuration.maxSessions) else {
            runtime.stats.increment(.droppedSessionLimit)
            return
        }
        guard runtime.stats.reserveHandshake(limit: runtime.configuration.maxHandshakesInProgress) else {
            runtime.stats.releaseSession()
            runtime.stats.increment(.droppedHandshakeLimit)
            return
        }
        let connection: DTLSServerConnection
        do {
            connection = try DTLSServerConnection(
                context: runtime.context, cookies: cookies, peerMaterial: material, ipv6: peer.isIPv6,
                allocator: allocator)
        } catch {
            runtime.stats.releaseSession()
            runtime.stats.releaseHandshake()
            runtime.logger.error(
                "listener \(runtime.name): cannot create a session for \(peer.logDescription): \(error)")
            return
        }
        let session = ListenerSession(
            peer: peer, clientRandom: hello.random, isReplacement: asReplacement, connection: connection,
            handshakeSlot: handshakeSlot, router: self, runtime: runtime)
        runtime.stats.increment(.sessionsCreated)
        if asReplacement {
            table.insertReplacement(session)
        } else {
            table.insert(session)
        }
        runtime.logger.debug(
            "handshake start peer=\(peer.logDescription) listener=\(runtime.name)\(asReplacement ? " restart=true" : "")"
        )
        session.start(clientHello: datagram)
    }
}
