import NIOCore

/// RFC 9146: a `tls12_cid` record goes to the session that issued its
/// connection ID, wherever it came from; the session decides whether a new
/// address is its client's (``SessionCore/receiveFromDTLSPeer(_:from:)``).
extension ListenerRouter {
    ///
    /// A CID whose first byte is another instance's `node_id` goes to that
    /// instance over the cluster link (``ClusterLink``); `relay` is set when
    /// the datagram itself came that way, from the instance the client reached.
    func routeByConnectionID(_ datagram: ByteBuffer, from peer: SocketAddress, via relay: ClusterRelay? = nil) {
        let configuration = runtime.configuration
        guard configuration.connectionID,
            let cid = ConnectionIDRecordLayer.connectionID(in: datagram, length: configuration.connectionIDLength)
        else {
            runtime.stats.increment(.droppedUnknownConnectionID)
            return
        }
        if cid[0] != runtime.nodeID, relay == nil {
            guard let cluster = runtime.cluster,
                cluster.forward(datagram, listener: runtime.name, client: peer, to: cid[0])
            else { return runtime.stats.increment(.droppedUnknownConnectionID) }
            return
        }
        guard let owner = ConnectionIDDirectory.shared.owner(of: cid) else {
            runtime.stats.increment(.droppedUnknownConnectionID)
            return
        }
        if owner.eventLoop === eventLoop {
            deliver(datagram, from: peer, via: relay, to: owner)
        } else {
            // The client's new 4-tuple hashed to this loop's socket; its session lives on another.
            owner.eventLoop.execute { Self.deliverOnOwnLoop(datagram, from: peer, via: relay, to: owner) }
        }
    }

    private func deliver(
        _ datagram: ByteBuffer, from peer: SocketAddress, via relay: ClusterRelay?,
        to owner: ConnectionIDDirectory.Owner
    ) {
        guard let session = owner.session.value.session else {
            runtime.stats.increment(.droppedUnknownConnectionID)
            return
        }
        session.receiveFromDTLSPeer(datagram, from: peer, via: relay)
    }

    private static func deliverOnOwnLoop(
        _ datagram: ByteBuffer, from peer: SocketAddress, via relay: ClusterRelay?,
        to owner: ConnectionIDDirectory.Owner
    ) {
        guard let session = owner.session.value.session else { return }
        session.receiveFromDTLSPeer(datagram, from: peer, via: relay)
        session.host.flush()
    }
}
