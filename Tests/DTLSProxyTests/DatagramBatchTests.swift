import Glibc
import NIOCore
import Testing

@testable import DTLSProxy

/// The data path's batched I/O on real loopback sockets: datagram boundaries
/// kept both ways, sources read from the kernel's sockaddr without formatting,
/// a datagram longer than its slot cut as a read of that size would cut it,
/// and an empty socket answered without a further system call's EAGAIN.
@Suite("Datagram batch")
struct DatagramBatchTests {
    /// A UDP socket bound to 127.0.0.1 on a free port; closed by the caller.
    private func boundSocket() throws -> (CInt, SocketAddress) {
        let socket = try RouterSockets<ListenerRouter, ListenerRuntime>.bindSocket(
            try SocketAddress(ipAddress: "127.0.0.1", port: 0), sharedPort: false)
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(socket, $0, &length) }
        }
        return (socket, try #require(withUnsafePointer(to: &storage) { DatagramBatch.address($0) }))
    }

    private func connect(_ socket: CInt, to address: SocketAddress) {
        _ = address.withSockAddr { Glibc.connect(socket, $0, socklen_t($1)) }
    }

    /// Runs `body` on two loopback sockets connected to each other, then closes them.
    private func withConnectedPair(_ body: (CInt, CInt) throws -> Void) throws {
        let (a, addressA) = try boundSocket()
        let (b, addressB) = try boundSocket()
        defer {
            close(a)
            close(b)
        }
        connect(a, to: addressB)
        connect(b, to: addressA)
        try body(a, b)
    }

    private func datagrams(_ count: Int, size: Int = 100) -> [ByteBuffer] {
        (0..<count).map { index in ByteBuffer(bytes: [UInt8](repeating: UInt8(index), count: size)) }
    }

    @Test("datagrams sent on a connected socket arrive one by one, each whole, in order")
    func connectedRoundTrip() throws {
        try withConnectedPair { a, b in
            let batch = DatagramBatch()
            var schedule = DrainSchedule()
            // More than one sendmmsg (DP_BATCH_MAX = 64) and more than one recvmmsg (16) holds.
            let sent = datagrams(70)
            let outcome = batch.send(sent[...], onConnected: a)
            #expect(outcome.sent == 70 && outcome.error == nil)
            var received: [[UInt8]] = []
            let end = batch.drainConnected(b, slotSize: 2048, schedule: &schedule) { received.append(Array($0)) }
            #expect(end.failure == nil)
            // One drain stops at its limit so other sockets get their turn; the next reads the rest.
            #expect(received.count == DatagramBatch.drainLimit && end.count == DatagramBatch.drainLimit)
            let rest = batch.drainConnected(b, slotSize: 2048, schedule: &schedule) { received.append(Array($0)) }
            #expect(received.count == 70 && rest.count == 70 - DatagramBatch.drainLimit)
            #expect(received == sent.map { Array($0.readableBytesView) })
        }
    }

    @Test("a datagram longer than the slot is cut to the slot, as one read of that size cuts it")
    func truncatedToSlot() throws {
        try withConnectedPair { a, b in
            let batch = DatagramBatch()
            var schedule = DrainSchedule()
            _ = batch.send(datagrams(1, size: 1500)[...], onConnected: a)
            var lengths: [Int] = []
            _ = batch.drainConnected(b, slotSize: 1201, schedule: &schedule) { lengths.append($0.count) }
            #expect(lengths == [1201])
        }
    }

    @Test("an unconnected socket's datagrams come with their sources, equal to the peers' addresses")
    func sourcesOnUnconnectedSocket() throws {
        let (server, serverAddress) = try boundSocket()
        let (one, oneAddress) = try boundSocket()
        let (two, twoAddress) = try boundSocket()
        defer { [server, one, two].forEach { close($0) } }
        let batch = DatagramBatch()
        var schedule = DrainSchedule()
        let toServer = [(ByteBuffer(string: "from one"), serverAddress)]
        #expect(batch.send(toServer[...], on: one).sent == 1)
        #expect(batch.send([(ByteBuffer(string: "from two"), serverAddress)][...], on: two).sent == 1)
        var seen: [(String, SocketAddress)] = []
        _ = batch.drainUnconnected(server, slotSize: 2048, schedule: &schedule) { bytes, source in
            seen.append((String(decoding: bytes, as: UTF8.self), source))
        }
        #expect(seen.map(\.0) == ["from one", "from two"])
        #expect(seen.map(\.1) == [oneAddress, twoAddress])
        // Built without inet_ntop, the address still prints as an address for log lines.
        #expect(seen[0].1.logDescription == oneAddress.logDescription)
        #expect(seen[0].1.logDescription.hasPrefix("127.0.0.1:"))
    }

    @Test("an empty socket drains to nothing, and a refused send reports its errno")
    func emptyAndRefused() throws {
        let (a, _) = try boundSocket()
        let (b, addressB) = try boundSocket()
        defer {
            close(a)
            close(b)
        }
        let batch = DatagramBatch()
        var schedule = DrainSchedule()
        var count = 0
        let end = batch.drainConnected(a, slotSize: 2048, schedule: &schedule) { _ in count += 1 }
        #expect(end.failure == nil && end.count == 0)
        #expect(count == 0)
        // A connected socket whose peer is gone: the ICMP port unreachable of the
        // first datagram makes the kernel refuse a later send with ECONNREFUSED.
        connect(a, to: addressB)
        close(b)
        _ = batch.send(datagrams(1)[...], onConnected: a)
        var refused: CInt?
        for _ in 0..<50 where refused == nil {
            usleep(2000)
            refused = batch.send(datagrams(1)[...], onConnected: a).error
        }
        #expect(refused == ECONNREFUSED)
        #expect(!DatagramBatch.isBackpressure(ECONNREFUSED) && DatagramBatch.isBackpressure(EAGAIN))
    }

    @Test("a drain its schedule skips reads nothing and leaves what waits for the next that runs")
    func scheduleSkipsADrain() throws {
        try withConnectedPair { a, b in
            let batch = DatagramBatch()
            var schedule = DrainSchedule()
            var received: [[UInt8]] = []
            // An empty drain: the schedule skips the next one.
            #expect(
                batch.drainConnected(b, slotSize: 2048, schedule: &schedule) { received.append(Array($0)) }.count == 0)
            let sent = datagrams(3)
            #expect(batch.send(sent[...], onConnected: a).sent == 3)
            let skipped = batch.drainConnected(b, slotSize: 2048, schedule: &schedule) { received.append(Array($0)) }
            #expect(skipped.count == 0 && skipped.failure == nil && received.isEmpty)
            // The datagrams stayed in the socket; the next drain takes all of them, in order.
            let next = batch.drainConnected(b, slotSize: 2048, schedule: &schedule) { received.append(Array($0)) }
            #expect(next.count == 3)
            #expect(received == sent.map { Array($0.readableBytesView) })
        }
    }
}
