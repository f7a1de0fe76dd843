import NIOCore
import NIOPosix

#if canImport(Glibc)
    import Glibc
#endif

/// Keeps the metrics endpoint's accept loop from spinning when the process is
/// out of file descriptors.
///
/// With every descriptor taken (EMFILE), `accept4` fails at once while the
/// connection stays queued, so the listening socket stays readable and the event
/// loop calls `accept4` again and again (SwiftNIO keeps its read pending after
/// a failed accept, so `AcceptBackoffHandler` cannot pause it). The classic
/// answer: hold one spare descriptor (`/dev/null`). On EMFILE or ENFILE the
/// spare is closed, so the next `accept4` succeeds; that connection is closed at
/// once (``shedsNext`` tells the child initializer) and the spare is taken
/// again. Each queued connection then costs one accept and one close instead of
/// a spin, and the socket goes quiet when the queue is empty. Confined to the
/// endpoint's event loop.
final class AcceptShedding: ChannelInboundHandler, @unchecked Sendable {
    // @unchecked: used only on the metrics endpoint's event loop (server channel and children share it).
    typealias InboundIn = Channel

    private var spare: Int32 = -1
    /// The next accepted connection only gives back the spare's slot: close it.
    private(set) var shedsNext = false
    /// Connections closed that way (for the log).
    private(set) var shed = 0

    init() {
        takeSpare()
    }

    deinit {
        if spare >= 0 { Glibc.close(spare) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.fireChannelRead(data)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        guard let ioError = error as? IOError, ioError.errnoCode == EMFILE || ioError.errnoCode == ENFILE else {
            context.fireErrorCaught(error)
            return
        }
        guard spare >= 0 else { return }
        Glibc.close(spare)
        spare = -1
        shedsNext = true
    }

    /// Called by the child initializer for every accepted connection; true when it must be closed at once.
    func admit() -> Bool {
        guard shedsNext else { return true }
        shedsNext = false
        shed += 1
        return false
    }

    /// After a shed connection closed: the spare is taken again.
    func takeSpare() {
        guard spare < 0 else { return }
        spare = open("/dev/null", O_RDONLY | O_CLOEXEC)
    }
}
