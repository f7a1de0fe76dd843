import NIOCore

/// What the session's backend socket tells it: a reply read, a read batch done, an error.
extension ListenerSession: ConnectedSocketOwner {
    func socketRead(_ datagram: ByteBuffer) { forwardToPeer(datagram) }
    /// Sends what backend replies queued on the listener socket, together
    /// with those of every other session that read in this loop iteration.
    func socketReadComplete() { router.flushAtEndOfIteration() }
    func socketFailed(_ error: Error) { backendFailed(error) }
    func socketOpenFailed(_ detail: String) {
        close(.error, notifyPeer: true, detail: "cannot open backend socket: \(detail)")
    }
}
