import CPlatform
import Glibc
import NIOCore

/// One event loop's batched datagram I/O for the data path: `recvmmsg` into
/// one reused arena, `sendmmsg` straight from the datagrams' own buffers.
///
/// SwiftNIO's datagram channel does per datagram what the data path does not
/// need: it formats the source address (`inet_ntop` into a `String`), even on
/// a connected socket, wraps every datagram in an `AddressedEnvelope`, takes
/// it through the pipeline, and queues every write in its pending-writes
/// machinery. The channels stay, as the loop's way to learn that a socket is
/// readable or writable again; the datagrams themselves move through here, a
/// batch per system call, with no allocation and no formatting.
///
/// Under backpressure the rest of a queue goes through the channel, and a
/// later flush may send directly while some of those still wait in NIO's
/// queue: datagrams can overtake each other then, which UDP allows anyway and
/// DTLS's replay window (RFC 6347 §4.1.2.6) accepts.
///
/// Used on its own loop only, within one call: nothing received outlives the
/// callback it is handed to.
final class DatagramBatch {
    /// Datagrams one `recvmmsg` reads at most.
    static let receiveCount = 16
    /// Datagrams one drain reads at most before it lets the loop serve other sockets.
    static let drainLimit = 64
    /// The largest slot a socket reads into: the largest DTLS record a router socket takes.
    static let slotCapacity = 18 * 1024

    private let arena: UnsafeMutableRawPointer
    private let received: UnsafeMutablePointer<dp_received>
    private let sources: UnsafeMutablePointer<sockaddr_storage>
    private var vectors: [iovec] = []
    private var destinations: [sockaddr_storage] = []
    private var destinationLengths: [socklen_t] = []

    init() {
        // Only the bytes a datagram fills are ever touched: untouched slots cost no resident memory.
        arena = UnsafeMutableRawPointer.allocate(
            byteCount: Self.receiveCount * Self.slotCapacity, alignment: MemoryLayout<UInt64>.alignment)
        received = .allocate(capacity: Self.receiveCount)
        sources = .allocate(capacity: Self.receiveCount)
        vectors.reserveCapacity(Int(DP_BATCH_MAX))
    }

    deinit {
        arena.deallocate()
        received.deallocate()
        sources.deallocate()
    }

    // MARK: - Receiving

    /// What a drain read, and what it ended on.
    struct DrainEnd {
        /// Datagrams handed to the callback.
        var count = 0
        /// The errno `recvmmsg` failed with (not EAGAIN: an ICMP error, say);
        /// nil when the socket had nothing more or the drain reached its limit.
        var failure: CInt?
    }

    /// Reads what waits on the connected socket `descriptor`, in batches,
    /// handing each datagram (cut to `slotSize` bytes, as a read of that size
    /// would) to `body`. Stops at the first short batch: the socket is empty,
    /// and no further system call is spent to hear EAGAIN. The socket's
    /// `schedule` may skip the drain altogether (nothing read, no system call),
    /// and learns what this one found.
    func drainConnected(
        _ descriptor: CInt, slotSize: Int, schedule: inout DrainSchedule, keepGoing: () -> Bool = { true },
        _ body: (UnsafeRawBufferPointer) -> Void
    ) -> DrainEnd {
        drain(descriptor, slotSize: slotSize, sources: nil, schedule: &schedule, keepGoing: keepGoing) { bytes, _ in
            body(bytes)
        }
    }

    /// Reads what waits on the unconnected socket `descriptor`, handing each
    /// datagram with its source to `body`. The source is built from the
    /// kernel's `sockaddr` as it is: no `inet_ntop`, no string (the address
    /// compares and hashes on its bytes; log lines format it when they need to).
    func drainUnconnected(
        _ descriptor: CInt, slotSize: Int, schedule: inout DrainSchedule, keepGoing: () -> Bool = { true },
        _ body: (UnsafeRawBufferPointer, SocketAddress) -> Void
    ) -> DrainEnd {
        drain(descriptor, slotSize: slotSize, sources: sources, schedule: &schedule, keepGoing: keepGoing) {
            bytes, source in
            guard let source, let address = Self.address(source) else { return }
            body(bytes, address)
        }
    }

    private func drain(
        _ descriptor: CInt, slotSize: Int, sources: UnsafeMutablePointer<sockaddr_storage>?,
        schedule: inout DrainSchedule, keepGoing: () -> Bool,
        _ body: (UnsafeRawBufferPointer, UnsafePointer<sockaddr_storage>?) -> Void
    ) -> DrainEnd {
        var end = DrainEnd()
        guard schedule.shouldDrain() else { return end }
        defer { schedule.drained(end.count) }
        let slot = min(slotSize, Self.slotCapacity)
        while end.count < Self.drainLimit, keepGoing() {
            let got = dp_recv_batch(descriptor, arena, slot, UInt32(Self.receiveCount), received, sources)
            if got < 0 {
                if -got != EAGAIN && -got != EWOULDBLOCK { end.failure = -got }
                return end
            }
            for index in 0..<Int(got) {
                let bytes = UnsafeRawBufferPointer(start: arena + index * slot, count: Int(received[index].length))
                body(bytes, sources.map { UnsafePointer($0 + index) })
            }
            end.count += Int(got)
            if Int(got) < Self.receiveCount { return end }
        }
        return end
    }

    /// A datagram's source as NIO's address type, without formatting its host.
    static func address(_ storage: UnsafePointer<sockaddr_storage>) -> SocketAddress? {
        switch CInt(storage.pointee.ss_family) {
        case AF_INET:
            return storage.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { SocketAddress($0.pointee, host: "") }
        case AF_INET6:
            return storage.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) {
                SocketAddress($0.pointee, host: "")
            }
        default:
            return nil
        }
    }

    // MARK: - Sending

    /// What a send left.
    struct SendOutcome {
        /// Datagrams the kernel took, from the first on.
        var sent = 0
        /// The errno that stopped it, if any: EAGAIN/ENOBUFS (the socket's
        /// send queue is full: the caller queues the rest with NIO, which waits
        /// for it to drain) or a datagram's own error (the caller drops that one).
        var error: CInt?
    }

    /// Sends `datagrams` on the connected socket `descriptor`, up to
    /// DP_BATCH_MAX per system call, stopping at the first error.
    func send(_ datagrams: ArraySlice<ByteBuffer>, onConnected descriptor: CInt) -> SendOutcome {
        send(count: datagrams.count, on: descriptor, addressed: false) { index in
            (datagrams[datagrams.startIndex + index], nil)
        }
    }

    /// Sends each datagram to its peer on the unconnected socket `descriptor`.
    func send(_ datagrams: ArraySlice<(ByteBuffer, SocketAddress)>, on descriptor: CInt) -> SendOutcome {
        send(count: datagrams.count, on: descriptor, addressed: true) { index in
            let (datagram, peer) = datagrams[datagrams.startIndex + index]
            return (datagram, peer)
        }
    }

    private func send(
        count: Int, on descriptor: CInt, addressed: Bool, _ item: (Int) -> (ByteBuffer, SocketAddress?)
    ) -> SendOutcome {
        var outcome = SendOutcome()
        while outcome.sent < count {
            let chunk = min(count - outcome.sent, Int(DP_BATCH_MAX))
            vectors.removeAll(keepingCapacity: true)
            destinations.removeAll(keepingCapacity: true)
            destinationLengths.removeAll(keepingCapacity: true)
            for index in outcome.sent..<(outcome.sent + chunk) {
                let (datagram, peer) = item(index)
                // The pointer outlives the closure only until `dp_send_batch`
                // returns, while the caller's array still holds the buffer: its
                // storage cannot move or be freed meanwhile.
                datagram.withUnsafeReadableBytes { bytes in
                    vectors.append(
                        iovec(iov_base: UnsafeMutableRawPointer(mutating: bytes.baseAddress), iov_len: bytes.count))
                }
                if let peer {
                    var storage = sockaddr_storage()
                    let length = peer.withSockAddr { address, length in
                        withUnsafeMutableBytes(of: &storage) {
                            $0.copyMemory(from: UnsafeRawBufferPointer(start: address, count: length))
                        }
                        return length
                    }
                    destinations.append(storage)
                    destinationLengths.append(socklen_t(length))
                }
            }
            let sent = vectors.withUnsafeBufferPointer { vectors in
                if addressed {
                    destinations.withUnsafeBufferPointer { destinations in
                        destinationLengths.withUnsafeBufferPointer { lengths in
                            dp_send_batch(
                                descriptor, vectors.baseAddress, destinations.baseAddress, lengths.baseAddress,
                                UInt32(chunk))
                        }
                    }
                } else {
                    dp_send_batch(descriptor, vectors.baseAddress, nil, nil, UInt32(chunk))
                }
            }
            if sent < 0 {
                outcome.error = -sent
                return outcome
            }
            outcome.sent += Int(sent)
        }
        return outcome
    }

    /// Sends all of `queue` with `send` (one of the `send` methods above),
    /// the one policy for every socket: a datagram the kernel refuses (its
    /// errno to `refused`) is dropped and the rest still goes; when the send
    /// queue is full, what is left goes to `overflow` (the channel, which
    /// waits for room). True when `overflow` took something.
    @discardableResult
    static func deliver<Item>(
        _ queue: [Item], send: (ArraySlice<Item>) -> SendOutcome, overflow: (ArraySlice<Item>) -> Void,
        refused: (CInt) -> Void
    ) -> Bool {
        var next = 0
        while next < queue.count {
            let outcome = send(queue[next...])
            next += outcome.sent
            guard let error = outcome.error else { return false }
            if isBackpressure(error) {
                overflow(queue[next...])
                return true
            }
            refused(error)
            next += 1
        }
        return false
    }

    /// True for the errors that mean "the send queue is full, wait": the rest goes through NIO.
    static func isBackpressure(_ error: CInt) -> Bool {
        error == EAGAIN || error == EWOULDBLOCK || error == ENOBUFS
    }
}
