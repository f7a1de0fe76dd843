import NIOCore

/// What a quiet session gives back, decided in one place for listener and
/// connector sessions alike.
///
/// Once a second each router asks every established session (``sweep``):
/// one that saw no datagram either way for a sweep period gives OpenSSL's
/// record buffers back (docs/openssl-dtls.md: 53.5 → 35.6 KiB) and parks its
/// socket (``ParkableSocket/parkIfOpen()``: the socket stays, its SwiftNIO
/// channel goes). A busy session is never touched, so the data path does not
/// pay for either again on every datagram.
enum IdleSweep {
    /// How often the sweep runs, and how long a session must be quiet for it.
    static let period = TimeAmount.seconds(1)

    /// How long a session whose peer never sent application data keeps its buffers.
    ///
    /// Until the peer has sent application data we cannot know that it got
    /// our final flight: it may still retransmit its Finished, with growing
    /// back-off, and OpenSSL must answer with ours. Releasing the buffers in
    /// that window broke handshakes under loss (the 20 % loss integration
    /// test), so such a session keeps them until it has been quiet for longer
    /// than a peer's retransmissions last in practice.
    static let unconfirmedQuietPeriod = TimeAmount.seconds(60)

    /// Frees what a quiet established session can spare; the number of things
    /// freed (0, 1 or 2: buffers, socket), for ``HeapTrim/afterReleasing(buffers:)``.
    /// `peerSentData`: application data has come from the far DTLS peer.
    static func sweep<Owner>(
        endpoint: DTLSEndpoint, socket: ParkableSocket<Owner>?, lastActivity: NIODeadline,
        establishedAt: NIODeadline, peerSentData: Bool, now: NIODeadline
    ) -> Int {
        guard now - lastActivity >= period else { return 0 }
        var released = 0
        if !endpoint.buffersReleased, peerSentData || now - establishedAt >= unconfirmedQuietPeriod,
            endpoint.releaseBuffers()
        {
            released += 1
        }
        if let socket, socket.parkIfOpen() { released += 1 }
        return released
    }
}
