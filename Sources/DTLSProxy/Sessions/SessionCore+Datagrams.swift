import NIOCore

/// The datagrams of a session, both ways: from the DTLS peer (read, decrypted,
/// delivered), to it (encrypted, sent), and a connection ID session's move to
/// its client's new address.
extension SessionCore {

    /// One datagram from the DTLS peer, at the session's address.
    func receiveFromDTLSPeer(_ datagram: ByteBuffer) {
        guard state != .closed else { return }
        if let unverified = unverifiedAddress {
            unverifiedAddress = (unverified.received + datagram.readableBytes, unverified.sent)
        }
        process(datagram)
        // A second authenticated record from the new address ends the amplification limit.
        if unverifiedAddress != nil, endpoint.connectionIDRecords?.lastAccepted != nil { unverifiedAddress = nil }
    }

    /// One datagram from the DTLS peer, routed by its connection ID from
    /// `address`. From a new address it moves the session there only when it
    /// carries a record that authenticates and is newer than every record
    /// accepted so far (RFC 9146 §6); anything else from there is dropped whole.
    ///
    /// `relay` is the other instance the datagram came through, when the
    /// client reached that one (``ClusterLink``); replies then go back through it.
    func receiveFromDTLSPeer(_ datagram: ByteBuffer, from address: SocketAddress, via relay: ClusterRelay? = nil) {
        guard address != peer || relay != self.relay else { return receiveFromDTLSPeer(datagram) }
        guard state == .established, let records = endpoint.connectionIDRecords,
            records.carriesNewestRecord(datagram)
        else {
            settings.stats.increment(.droppedUnverifiedAddress)
            return
        }
        let old = peer
        peer = address
        self.relay = relay
        unverifiedAddress = (received: datagram.readableBytes, sent: 0)
        peerMoved(from: old)
        process(datagram)
    }

    private func process(_ datagram: ByteBuffer) {
        timers.lastActivity = .now()
        endpoint.receive(datagram)
        switch state {
        case .handshaking:
            advanceHandshake()
        case .established:
            willReadPeerDatagram()
            readRecords(countingUndecryptable: true)
        case .closed:
            break
        }
    }

    /// Counts what the connection ID record layer dropped since the last call; how many.
    @discardableResult
    func countRecordLayerDrops() -> Int {
        guard let records = endpoint.connectionIDRecords else { return 0 }
        let total = records.stats.total
        let new = total - countedRecordLayerDrops
        guard new > 0 else { return 0 }
        countedRecordLayerDrops = total
        settings.stats.increment(.droppedConnectionIDRecord, by: new)
        return new
    }

    /// Encrypts one plaintext datagram as one record and queues it for the DTLS peer.
    ///
    /// An empty datagram is dropped and counted: SSL_write refuses zero bytes,
    /// so it cannot become a record, and it is no reason to end the session.
    func encrypt(_ datagram: ByteBuffer) {
        datagram.withUnsafeReadableBytes { encrypt(bytes: $0) }
    }

    /// ``encrypt(_:)`` of bytes only borrowed for the call (the loop's receive arena).
    func encrypt(bytes datagram: UnsafeRawBufferPointer) {
        guard state == .established else { return }
        guard datagram.count > 0 else { return settings.stats.increment(.droppedEmpty) }
        guard datagram.count <= maximumPlaintext else { return settings.stats.increment(.droppedOversize) }
        timers.lastActivity = .now()
        if case .failure(let failure) = endpoint.write(bytes: datagram) {
            close(.error, notifyPeer: false, detail: failure.reason)
            return
        }
        countPlaintext(datagram.count, fromDTLSPeer: false)
        sendOutbound()
    }

    /// Queues what OpenSSL wrote for the DTLS peer; true when there was something.
    @discardableResult
    func sendOutbound() -> Bool {
        switch side {
        case .dtlsOnRouterSocket:
            return endpoint.drainOutbound { datagram in
                if let unverified = unverifiedAddress {
                    guard unverified.sent + datagram.readableBytes <= 3 * unverified.received else {
                        return settings.stats.increment(.droppedAmplification)
                    }
                    unverifiedAddress = (unverified.received, unverified.sent + datagram.readableBytes)
                }
                if let relay {
                    relay.link.reply(datagram, listener: relay.listener, client: peer, to: relay.node)
                } else {
                    host.send(datagram, to: peer)
                }
            }
        case .dtlsOnSessionSocket:
            guard let socket else { return false }
            return endpoint.drainOutbound { host.send($0, on: socket) }
        }
    }

    private func deliver(_ plaintext: ByteBuffer) {
        switch side {
        case .dtlsOnRouterSocket:
            if let socket { host.send(plaintext, on: socket) }
        case .dtlsOnSessionSocket:
            host.send(plaintext, to: peer)
        }
    }

    /// "In" is what the session's router-side peer sent: a listener's DTLS client, a connector's local peer.
    private func countPlaintext(_ length: Int, fromDTLSPeer: Bool) {
        if fromDTLSPeer == (side == .dtlsOnRouterSocket) {
            traffic.countIn(length)
            host.traffic.countIn(length)
        } else {
            traffic.countOut(length)
            host.traffic.countOut(length)
        }
    }

    /// Decrypts and delivers whatever the last datagram held.
    ///
    /// A datagram from the peer that yields neither plaintext nor a reply
    /// (a retransmitted flight) was discarded by OpenSSL: a record that failed
    /// authentication, or a replay. RFC 6347 §4.1.2.7 has such records dropped
    /// silently; `max_undecryptable_datagrams`, when set, closes a session
    /// after that many in a row.
    func readRecords(countingUndecryptable: Bool) {
        var produced = false
        while state == .established {
            // Records are decrypted into the host's scratch buffer, then copied
            // into a buffer of exactly their size for the socket's write queue:
            // one allocation per datagram, of its size, and any record fits,
            // even one OpenSSL buffered from an earlier, larger datagram.
            host.plaintextScratch.clear()
            switch endpoint.read(into: &host.plaintextScratch, maximum: SessionHost.plaintextScratchSize) {
            case .data:
                produced = true
                decryptedRecords += 1
                let length = host.plaintextScratch.readableBytes
                var plaintext = host.allocator.buffer(capacity: length + (plaintextPrefix?.count ?? 0))
                if let plaintextPrefix { plaintext.writeBytes(plaintextPrefix) }
                plaintext.writeImmutableBuffer(host.plaintextScratch)
                countPlaintext(length, fromDTLSPeer: true)
                deliver(plaintext)
            case .wantRead:
                if sendOutbound() { produced = true }
                // Records the connection ID layer refused are counted as such, not again as undecryptable.
                let refused = countRecordLayerDrops()
                if countingUndecryptable { noteDatagram(produced: produced, counted: refused > 0) }
                return
            case .closeNotify:
                close(.closeNotify, notifyPeer: true)
                return
            case .failed(let failure):
                close(endpoint.receivedFatalAlert ? .alert : .error, notifyPeer: false, detail: failure.reason)
                return
            }
        }
    }

    private func noteDatagram(produced: Bool, counted: Bool) {
        guard !produced else {
            undecryptableInARow = 0
            return
        }
        undecryptableInARow += 1
        if !counted { settings.stats.increment(.droppedUndecryptable) }
        let limit = settings.maxUndecryptableDatagrams
        if limit > 0, undecryptableInARow >= limit {
            close(.error, notifyPeer: true, detail: "\(undecryptableInARow) datagrams in a row could not be decrypted")
        }
    }
}
