import NIOCore

/// The owner of a connected UDP socket: a listener session's backend socket,
/// a connector session's server socket.
protocol ConnectedSocketOwner: AnyObject, SendableMetatype {
    /// One datagram from the far end.
    func socketRead(_ datagram: ByteBuffer)
    /// One datagram from the far end, in the loop's receive arena: valid for this call only.
    func socketRead(bytes: UnsafeRawBufferPointer)
    /// The end of one read batch: time to flush what the datagrams produced.
    func socketReadComplete()
    /// An error on the socket. ECONNREFUSED (ICMP port unreachable) leaves it
    /// open: NIO treats it as recoverable, and so does the owner.
    func socketFailed(_ error: Error)
    /// NIO could not register or connect the socket (``ParkableSocket``): the
    /// session has no way to its far end.
    func socketOpenFailed(_ detail: String)
}

/// Hands what NIO reads on a connected socket to the ``ParkableSocket`` that
/// holds it, which drains the rest and passes it all to its owner. The
/// reference is weak, so a closed session is not kept alive by its socket.
final class ConnectedSocketHandler<Owner: ConnectedSocketOwner>: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>

    private weak var socket: ParkableSocket<Owner>?

    init(socket: ParkableSocket<Owner>) {
        self.socket = socket
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        socket?.received(unwrapInboundIn(data).data)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        socket?.readComplete()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        socket?.failed(error)
    }
}
