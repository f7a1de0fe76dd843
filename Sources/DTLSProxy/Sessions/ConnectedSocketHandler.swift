import NIOCore

/// The owner of a connected UDP socket: a listener session's backend socket,
/// a connector session's server socket.
protocol ConnectedSocketOwner: AnyObject, SendableMetatype {
    /// One datagram from the far end.
    func socketRead(_ datagram: ByteBuffer)
    /// The end of one read batch: time to flush what the datagrams produced.
    func socketReadComplete()
    /// An error on the socket. ECONNREFUSED (ICMP port unreachable) leaves it
    /// open: NIO treats it as recoverable, and so does the owner.
    func socketFailed(_ error: Error)
    /// NIO could not register or connect the socket (``ParkableSocket``): the
    /// session has no way to its far end.
    func socketOpenFailed(_ detail: String)
}

/// Hands everything a connected socket receives to the session that owns it;
/// the reference is weak, so a closed session is not kept alive by its socket.
final class ConnectedSocketHandler<Owner: ConnectedSocketOwner>: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>

    private weak var owner: Owner?

    init(owner: Owner) {
        self.owner = owner
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        owner?.socketRead(unwrapInboundIn(data).data)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        owner?.socketReadComplete()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        owner?.socketFailed(error)
    }
}
