import NIOCore
import NIOPosix

/// A session's own UDP socket, connected to the backend its route chose.
///
/// One socket per session is what lets the backend see every client as its
/// own source port, and lets the daemon tell from which socket a reply came
/// which client it is for. The socket is opened when the handshake
/// completes; datagrams that arrive before the connect finishes wait in a
/// short queue.
final class BackendLink {
    private static let pendingLimit = 64
    private var channel: Channel?
    private var pending: [ByteBuffer] = []
    private var needsFlush = false
    private var closed = false

    private init() {}

    /// Opens the socket for `session` to `backend`; failures close the session.
    static func open(for session: Session, to backend: SocketAddress, runtime: ListenerRuntime, eventLoop: EventLoop) -> BackendLink {
        let link = BackendLink()
        let handler = NIOLoopBound(ConnectedSocketHandler(owner: session), eventLoop: eventLoop)
        // Replies larger than a record can carry are dropped, so reading one
        // byte more than the MTU is enough to tell they were too large.
        let readSize = runtime.configuration.mtu + 1
        DatagramBootstrap(group: eventLoop)
            .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: readSize))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(handler.value)
                }
            }
            .connect(to: backend)
            .assumeIsolated()
            .whenComplete { [weak session] result in
                switch result {
                case .success(let channel):
                    link.connected(channel)
                case .failure(let error):
                    session?.close(.error, notifyPeer: true, detail: "cannot open backend socket: \(error)")
                }
            }
        return link
    }

    private func connected(_ channel: Channel) {
        guard !closed else {
            channel.close(promise: nil)
            return
        }
        self.channel = channel
        for datagram in pending {
            channel.write(datagram, promise: nil)
        }
        pending.removeAll()
        channel.flush()
    }

    /// Queues one plaintext datagram for the backend; `flush` sends what is queued.
    func send(_ datagram: ByteBuffer) {
        guard !closed else { return }
        if let channel {
            channel.write(datagram, promise: nil)
            needsFlush = true
        } else if pending.count < Self.pendingLimit {
            pending.append(datagram)
        }
    }

    func flush() {
        guard needsFlush, let channel else { return }
        needsFlush = false
        channel.flush()
    }

    /// Closes the socket; idempotent.
    func close() {
        guard !closed else { return }
        closed = true
        pending.removeAll()
        channel?.close(promise: nil)
        channel = nil
    }
}
