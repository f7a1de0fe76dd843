import NIOCore

/// RFC 9146: a `tls12_cid` record goes to the session that issued its
/// connection ID, wherever it came from; the session decides whether a new
/// address is its client's (``SessionCore/receiveFromDTLSPeer(_:from:)``).
extension ListenerRouter {
    func routeByConnectionID(_ datagram: ByteBuffer, from peer: SocketAddress) {
        let configuration = runtime.configuration
        guard configuration.connectionID,
            let cid = ConnectionIDRecordLayer.connectionID(in: datagram, length: configuration.connectionIDLength),
            let owner = ConnectionIDDirectory.shared.owner(of: cid)
        else {
            runtime.stats.increment(.droppedUnknownConnectionID)
            return
        }
        if owner.eventLoop === eventLoop {
            deliver(datagram, from: peer, to: owner)
        } else {
            // The client's new 4-tuple hashed to this loop's socket; its session lives on another.
            owner.eventLoop.execute { Self.deliverOnOwnLoop(datagram, from: peer, to: owner) }
        }
    }

    private func deliver(_ datagram: ByteBuffer, from peer: SocketAddress, to owner: ConnectionIDDirectory.Owner) {
        guard let session = owner.session.value.session else {
            runtime.stats.increment(.droppedUnknownConnectionID)
            return
        }
        session.receiveFromDTLSPeer(datagram, from: peer)
    }

    private static func deliverOnOwnLoop(
        _ datagram: ByteBuffer, from peer: SocketAddress, to owner: ConnectionIDDirectory.Owner
    ) {
        guard let session = owner.session.value.session else { return }
        session.receiveFromDTLSPeer(datagram, from: peer)
        session.host.flush()
    }
}
