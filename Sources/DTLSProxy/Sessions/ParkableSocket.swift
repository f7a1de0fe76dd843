import Atomics
import Glibc
import NIOCore
import NIOPosix

/// A session's own UDP socket, connected to the far end: a listener
/// session's backend, a connector session's server (``SessionSocket``).
///
/// One socket per session is what lets the backend see every client as its
/// own source port, and lets the daemon tell from which socket a datagram
/// came which session it is for. Datagrams sent before NIO has registered
/// the socket wait in a short queue.
///
/// The channel is the loop's way to learn that the socket is readable (and,
/// under backpressure, writable again); the datagrams move through the loop's
/// ``DatagramBatch``. NIO reads the first datagram of a wake-up (one read per
/// readable event), the socket drains the rest with `recvmmsg`, and what the
/// session queues leaves in one `sendmmsg` on the descriptor at the flush. Only
/// when the kernel's send queue is full does a write go through the channel,
/// which waits for room.
///
/// While the session is idle the socket is *parked* (``parkIfOpen()``): it
/// stays open and connected, so the far end still sees the same source port,
/// but its SwiftNIO channel is closed, which gives back the channel, its
/// pipeline and the receive buffer NIO keeps per channel. The
/// ``ParkedSocketWatcher`` reports a parked socket that becomes readable (a
/// datagram, an ICMP error); a datagram from the session's own peer wakes it
/// too. Waking wraps the same descriptor in a new channel.
final class ParkableSocket<Owner: ConnectedSocketOwner> {
    private enum State {
        /// NIO is registering and connecting the socket; sends wait in `pending`.
        case opening
        case open(Channel)
        /// Only `descriptor` holds the socket; the watcher reports it.
        case parked
        case closed
    }

    private static var pendingLimit: Int { 64 }
    private var state = State.opening
    /// The socket. While a channel is open, NIO owns this descriptor and
    /// closes it with the channel; parking first duplicates it.
    private var descriptor: CInt
    /// Counts parks, so that a wake-up from an earlier park is ignored.
    private var parkGeneration = 0
    private var pending: [ByteBuffer] = []
    /// Datagrams queued on an open socket since the last flush.
    private var outgoing: [ByteBuffer] = []
    private let batch: DatagramBatch
    private let readSize: Int
    /// The kernel's drops on this socket already handed to the owner's counter.
    private var kernelDrops = KernelDropCursor()
    private var needsFlush = false
    /// Whether a read is followed by a drain: not while drains find nothing.
    private var drainSchedule = DrainSchedule()
    private weak var owner: Owner?
    private let remote: SocketAddress
    private let eventLoop: EventLoop
    /// One read of up to the session's largest datagram, the same for every channel the socket gets.
    private let recvAllocator: FixedSizeRecvByteBufferAllocator
    /// The owner's count of parked sockets, shared by its event loops.
    private let parkedCount: ManagedAtomic<Int>

    private init(
        descriptor: CInt, owner: Owner, remote: SocketAddress, readSize: Int, parkedCount: ManagedAtomic<Int>,
        batch: DatagramBatch, eventLoop: EventLoop
    ) {
        self.descriptor = descriptor
        self.owner = owner
        self.remote = remote
        self.eventLoop = eventLoop
        self.batch = batch
        self.readSize = readSize
        recvAllocator = FixedSizeRecvByteBufferAllocator(capacity: readSize)
        self.parkedCount = parkedCount
    }

    /// Opens a socket for `owner`, connected to `remote`, reading datagrams of
    /// up to `readSize` bytes, with a kernel receive queue of `receiveBuffer`
    /// bytes (0 = the system default), moving datagrams through `batch` (the
    /// loop's). Nil when no socket could be created
    /// (the error's text in `failure`); a later failure to register it
    /// reaches the owner through ``ConnectedSocketOwner/socketOpenFailed(_:)``.
    static func open(
        for owner: Owner, to remote: SocketAddress, readSize: Int, receiveBuffer: Int = 0,
        parkedCount: ManagedAtomic<Int>, batch: DatagramBatch, eventLoop: EventLoop
    ) -> Result<ParkableSocket, OpenError> {
        let family = remote.isIPv6 ? AF_INET6 : AF_INET
        let descriptor = socket(
            family, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else {
            return .failure(OpenError(description: "socket(): \(String(cString: strerror(errno)))"))
        }
        if let failure = SocketBuffers.applyReceive(receiveBuffer, toDescriptor: descriptor) {
            Glibc.close(descriptor)
            return .failure(OpenError(description: failure))
        }
        let link = ParkableSocket(
            descriptor: descriptor, owner: owner, remote: remote, readSize: readSize, parkedCount: parkedCount,
            batch: batch, eventLoop: eventLoop)
        link.attachChannel()
        return .success(link)
    }

    /// Wraps `descriptor` in a NIO channel and connects it to the far end
    /// (again, after a park: connecting a UDP socket to the address it is
    /// connected to keeps its port, and tells NIO where it is connected).
    private func attachChannel() {
        guard let owner else {
            state = .closed
            Glibc.close(descriptor)
            return
        }
        // A loop that cannot host sockets (an embedded test loop) fails the open, it does not trap.
        guard let bootstrap = DatagramBootstrap(validatingGroup: eventLoop) else {
            state = .closed
            Glibc.close(descriptor)
            pending.removeAll()
            owner.socketOpenFailed("event loop \(eventLoop) cannot host sockets")
            return
        }
        let handler = NIOLoopBound(ConnectedSocketHandler(socket: self), eventLoop: eventLoop)
        let remote = self.remote
        bootstrap
            .channelOption(.recvAllocator, value: recvAllocator)
            // One read per readable event: `received` drains the rest in batches.
            .channelOption(.maxMessagesPerRead, value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(handler.value)
                }
            }
            .withBoundSocket(descriptor)
            .flatMap { channel in
                channel.connect(to: remote).map { channel }.flatMapErrorThrowing { error in
                    channel.close(promise: nil)
                    throw error
                }
            }
            .assumeIsolated()
            .whenComplete { result in
                switch result {
                case .success(let channel):
                    self.attached(channel)
                case .failure(let error):
                    self.state = .closed
                    self.pending.removeAll()
                    self.owner?.socketOpenFailed("\(error)")
                }
            }
    }

    private func attached(_ channel: Channel) {
        guard case .opening = state else {
            channel.close(promise: nil)
            return
        }
        state = .open(channel)
        guard !pending.isEmpty else { return }
        outgoing.append(contentsOf: pending)
        pending.removeAll()
        needsFlush = true
        flush()
    }

    // MARK: - Reading

    /// NIO read one datagram: hands it to the owner, then reads what else
    /// waits, in batches (unless ``DrainSchedule`` says nothing will), and
    /// ends the read with the owner's flush.
    func received(_ datagram: ByteBuffer) {
        guard let owner else { return }
        owner.socketRead(datagram)
        let end = batch.drainConnected(
            descriptor, slotSize: readSize, schedule: &drainSchedule, keepGoing: { isOpen && self.owner != nil }
        ) { owner.socketRead(bytes: $0) }
        if let code = end.failure { owner.socketFailed(IOError(errnoCode: code, reason: "recvmmsg")) }
    }

    /// The end of NIO's read: time to flush what the datagrams produced.
    func readComplete() { owner?.socketReadComplete() }

    func failed(_ error: Error) { owner?.socketFailed(error) }

    /// The descriptor while a channel has it registered; nil parked, opening or closed.
    var openDescriptor: CInt? { isOpen ? descriptor : nil }

    private var isOpen: Bool {
        if case .open = state { return true }
        return false
    }

    // MARK: - Sending

    /// Queues one datagram for the far end; `flush` sends what is
    /// queued. True when the link had nothing queued before: the caller
    /// arranges one ``flush()`` for everything queued until then.
    @discardableResult
    func send(_ datagram: ByteBuffer) -> Bool {
        switch state {
        case .open:
            outgoing.append(datagram)
            defer { needsFlush = true }
            return !needsFlush
        case .parked:
            // Queued first: NIO may register the socket before `wake` returns.
            pending.append(datagram)
            wake()
        case .opening:
            if pending.count < Self.pendingLimit { pending.append(datagram) }
        case .closed:
            break
        }
        return false
    }

    /// Sends what is queued: one `sendmmsg` on the descriptor (more past
    /// DP_BATCH_MAX). A datagram the kernel refuses (ECONNREFUSED after an
    /// ICMP error, say) is dropped and reported, as NIO would; when the send
    /// queue is full, the rest goes through the channel, which waits for room.
    func flush() {
        guard needsFlush, case .open(let channel) = state else { return }
        needsFlush = false
        DatagramBatch.deliver(
            outgoing, send: { batch.send($0, onConnected: descriptor) },
            overflow: { rest in
                for datagram in rest { channel.write(datagram, promise: nil) }
                channel.flush()
            },
            refused: { owner?.socketFailed(IOError(errnoCode: $0, reason: "sendmmsg")) })
        outgoing.removeAll(keepingCapacity: outgoing.count <= Self.pendingLimit)
    }

    /// Closes the channel of an open socket but keeps the socket, watched by
    /// the ``ParkedSocketWatcher``. True when the socket is parked now.
    @discardableResult
    func parkIfOpen() -> Bool {
        guard case .open(let channel) = state, !needsFlush else { return false }
        // Never 0-2: a socket there could meet stray writes to stdio.
        let spare = fcntl(descriptor, F_DUPFD_CLOEXEC, 3)
        guard spare >= 0 else { return false }
        // NIO removes the descriptor from its epoll set and closes it; the
        // socket lives on in `spare`. Done on the channel's own loop, the
        // close is synchronous: nothing of the old registration is left.
        channel.close(promise: nil)
        descriptor = spare
        outgoing = []
        parkGeneration += 1
        state = .parked
        parkedCount.wrappingIncrement(ordering: .relaxed)
        let generation = parkGeneration
        let link = NIOLoopBound(self, eventLoop: eventLoop)
        let loop = eventLoop
        let watched = ParkedSocketWatcher.shared.watch(spare) {
            loop.execute { link.value.watcherReported(generation: generation) }
        }
        guard watched else {
            wake()
            return false
        }
        return true
    }

    private func watcherReported(generation: Int) {
        guard case .parked = state, generation == parkGeneration else { return }
        wake()
    }

    /// Puts a parked socket back on a channel; what arrives meanwhile waits in `pending`.
    private func wake() {
        guard case .parked = state else { return }
        ParkedSocketWatcher.shared.unwatch(descriptor)
        parkedCount.wrappingDecrement(ordering: .relaxed)
        state = .opening
        attachChannel()
    }

    /// The datagrams the kernel dropped on this socket (its receive queue
    /// full) since the last call; 0 once closed. Works parked too: the
    /// kernel counts on the socket, whoever holds the descriptor.
    func collectKernelDrops() -> Int {
        if case .closed = state { return 0 }
        return kernelDrops.advance(to: KernelDrops.count(descriptor: descriptor))
    }

    /// Closes the socket; idempotent. Returns the kernel's drops on it not
    /// collected yet, so that they stay counted after the socket is gone.
    func close() -> Int {
        if case .closed = state { return 0 }
        let uncollectedDrops = collectKernelDrops()
        switch state {
        case .open(let channel):
            // What the last datagrams queued goes out before the socket closes
            // (a record and a close_notify in one read batch).
            flush()
            channel.close(promise: nil)
        case .parked:
            ParkedSocketWatcher.shared.unwatch(descriptor)
            parkedCount.wrappingDecrement(ordering: .relaxed)
            Glibc.close(descriptor)
        case .opening:
            break  // `attached` closes the channel when NIO hands it over
        case .closed:
            return 0
        }
        state = .closed
        pending.removeAll()
        outgoing = []
        return uncollectedDrops
    }
}

extension ParkableSocket {
    /// Why no socket could be created.
    struct OpenError: Error, CustomStringConvertible {
        let description: String
    }
}
