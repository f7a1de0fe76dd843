import NIOCore

/// What the router of one event loop lends its sessions: the one interface a
/// session talks to its host through, the same for a listener and a connector.
///
/// It holds the loop's scratch buffer for decrypted records, the loop's
/// traffic tally, and the router's own socket (a listener socket, or a
/// connector's local socket) for datagrams sent to a session's peer with
/// sendto. It also decides, in this one place, when what sessions queued is
/// flushed: once, after the current event-loop iteration's I/O, so that the
/// replies of every session that had something to send leave in one
/// `sendmmsg` on the router's socket and one per session socket, never one
/// system call per datagram.
final class SessionHost {
    /// The largest plaintext one record may carry (DTLS 1.2: 2^14 bytes).
    static let plaintextScratchSize = 16384

    let eventLoop: EventLoop
    let allocator = ByteBufferAllocator()
    /// Where sessions decrypt records before copying them out; used within one
    /// call only and never handed out, so it is never copied on write.
    var plaintextScratch: ByteBuffer
    /// Plaintext datagrams and bytes since the router last added them to its metrics: plain integers, loop-local.
    var traffic = TrafficTally()
    /// The loop's batched datagram I/O (``DatagramBatch``), for the router's socket and every session socket.
    let batch = DatagramBatch()
    /// The router's channel, while its handler is in a pipeline; leaving it forgets ``routerDescriptor`` too.
    var context: ChannelHandlerContext? {
        didSet {
            guard context == nil else { return }
            routerDescriptor = nil
            toPeers.removeAll()
        }
    }
    /// The router socket's descriptor, when the daemon opened it and knows it
    /// (``RouterSockets/bindSocket(_:)``): datagrams to peers then leave in one
    /// `sendmmsg` on it, and a read drains it in batches. Nil (an embedded
    /// test channel, say): everything goes through the channel.
    var routerDescriptor: CInt?
    /// Logs a send the kernel refused on the router's socket (its handler's `errorCaught`, in effect).
    var routerSendFailed: (CInt) -> Void = { _ in }
    /// Datagrams to peers queued for the router's descriptor since the last flush.
    private var toPeers: [(ByteBuffer, SocketAddress)] = []
    private var routerSocketNeedsFlush = false
    /// Whether a read of the router's socket is followed by a drain.
    private var routerDrainSchedule = DrainSchedule()
    /// Datagrams written to the router's channel (no descriptor, or the send queue was full) and not flushed yet.
    private var channelHasWrites = false
    private var flushQueued = false
    /// Session sockets that have datagrams queued since the last flush.
    private var socketsToFlush: [SessionSocket] = []
    /// The spin after this iteration's flush (`busy_poll`), and the sockets it watches.
    var busyPoll = BusyPoll()
    /// The kernel's drops on the router's socket already counted.
    private var routerSocketDrops = KernelDropCursor()
    private var lastSocketErrorLog = NIODeadline.distantPast

    init(eventLoop: EventLoop) {
        self.eventLoop = eventLoop
        plaintextScratch = allocator.buffer(capacity: Self.plaintextScratchSize)
    }

    /// Queues one datagram to `peer` on the router's socket.
    func send(_ datagram: ByteBuffer, to peer: SocketAddress) {
        guard let context else { return }
        if routerDescriptor != nil {
            toPeers.append((datagram, peer))
        } else {
            context.write(NIOAny(AddressedEnvelope(remoteAddress: peer, data: datagram)), promise: nil)
            channelHasWrites = true
        }
        routerSocketNeedsFlush = true
        queueFlush()
    }

    /// Queues one datagram on a session's own socket.
    func send(_ datagram: ByteBuffer, on socket: SessionSocket) {
        guard socket.send(datagram) else { return }
        socketsToFlush.append(socket)
        queueFlush()
    }

    /// Sends everything queued now: at the end of the router's read batch,
    /// from a timer, and before a session or the router goes away.
    func flush() {
        if routerSocketNeedsFlush, let context {
            routerSocketNeedsFlush = false
            if let routerDescriptor, sendToPeers(on: routerDescriptor, context: context) {
                channelHasWrites = true
            }
            // The pipeline is flushed only when something went through it.
            if channelHasWrites {
                channelHasWrites = false
                context.flush()
            }
        }
        guard !socketsToFlush.isEmpty else { return }
        for socket in socketsToFlush {
            socket.flush()
            // Where the answer to what was just sent arrives (nothing when busy_poll is off).
            if let descriptor = socket.openDescriptor { busyPoll.watch(descriptor) }
        }
        socketsToFlush.removeAll(keepingCapacity: true)
    }

    /// One `sendmmsg` for every datagram queued to peers (``DatagramBatch/deliver(_:send:overflow:refused:)``);
    /// true when some went to the channel instead, to be flushed.
    private func sendToPeers(on descriptor: CInt, context: ChannelHandlerContext) -> Bool {
        defer { toPeers.removeAll(keepingCapacity: toPeers.count <= DatagramBatch.drainLimit) }
        return DatagramBatch.deliver(
            toPeers, send: { batch.send($0, on: descriptor) },
            overflow: { rest in
                for (datagram, peer) in rest {
                    context.write(NIOAny(AddressedEnvelope(remoteAddress: peer, data: datagram)), promise: nil)
                }
            },
            refused: routerSendFailed)
    }

    /// After NIO's read of one datagram on the router's socket: reads what
    /// else waits there, in batches, each with its source, and hands it to
    /// `route` (a copy: the BIO of the session it reaches keeps it). Skipped
    /// while drains find nothing (``DrainSchedule``).
    func drainRouterSocket(_ route: (ByteBuffer, SocketAddress) -> Void) {
        guard let descriptor = routerDescriptor else { return }
        _ = batch.drainUnconnected(
            descriptor, slotSize: DatagramBatch.slotCapacity, schedule: &routerDrainSchedule,
            keepGoing: { self.routerDescriptor != nil }
        ) { bytes, source in
            route(allocator.buffer(bytes: bytes), source)
        }
    }

    /// One flush after this loop iteration's I/O: every channel ready in it
    /// has been read by then, so their replies leave together. With
    /// `busy_poll`, the same task then spins (``BusyPoll``), watching the
    /// router's socket and the session sockets this iteration flushed: it is
    /// the one task every iteration that sent anything runs, after its I/O.
    private func queueFlush() {
        guard !flushQueued else { return }
        flushQueued = true
        eventLoop.assumeIsolated().execute {
            self.flushQueued = false
            self.flush()
            guard self.busyPoll.isEnabled else { return }
            if let routerDescriptor = self.routerDescriptor { self.busyPoll.watch(routerDescriptor) }
            _ = self.busyPoll.spin()
        }
    }

    /// Errors on session sockets are counted always but logged at most once a
    /// second per router: true when this one may be.
    func mayLogSocketError(now: NIODeadline = .now()) -> Bool {
        guard now - lastSocketErrorLog >= .seconds(1) else { return false }
        lastSocketErrorLog = now
        return true
    }

    /// Adds the tallied datagrams and bytes to the role's metrics.
    func flushTraffic(into series: TrafficCounters) {
        guard !traffic.isEmpty else { return }
        traffic.flush(into: series)
    }

    /// Hands `count` what the kernel dropped on the router's socket since the
    /// last call: one getsockopt, cheap enough for every second.
    func collectRouterSocketDrops(_ count: @escaping (Int) -> Void) {
        guard let channel = context?.channel else { return }
        KernelDrops.count(channel: channel) { total in
            let drops = self.routerSocketDrops.advance(to: total)
            if drops > 0 { count(drops) }
        }
    }
}
