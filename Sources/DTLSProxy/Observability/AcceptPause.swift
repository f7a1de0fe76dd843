import NIOCore

#if canImport(Glibc)
    import Glibc
#endif

/// Pauses the metrics endpoint's accepting for a second when the process is out
/// of file descriptors, so that its event loop does not spin.
///
/// Out of descriptors (EMFILE, ENFILE; or ENOBUFS, ENOMEM), `accept4` fails at
/// once while the connection stays queued, so the listening socket stays
/// readable. SwiftNIO keeps its read pending after a failed accept, so epoll
/// reports the socket again and again, and `AcceptBackoffHandler` (which only
/// delays the next read it is asked for) cannot stop it: measured, about 11 000
/// failed `accept4` calls a second with it installed. Turning `autoRead` off
/// makes SwiftNIO stop watching the socket; a second later it is turned on
/// again and the queued connections are accepted if descriptors have come free.
final class AcceptPause: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = Channel
    typealias InboundOut = Channel

    static let pause: TimeAmount = .seconds(1)
    private var resume: Scheduled<Void>?

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        guard let ioError = error as? IOError, [EMFILE, ENFILE, ENOBUFS, ENOMEM].contains(ioError.errnoCode) else {
            context.fireErrorCaught(error)
            return
        }
        guard resume == nil, let options = context.channel.syncOptions else { return }
        try? options.setOption(.autoRead, value: false)
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        resume = context.eventLoop.scheduleTask(in: Self.pause) {
            let (handler, context) = bound.value
            handler.resume = nil
            try? context.channel.syncOptions?.setOption(.autoRead, value: true)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        resume?.cancel()
        resume = nil
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        resume?.cancel()
        resume = nil
    }
}
