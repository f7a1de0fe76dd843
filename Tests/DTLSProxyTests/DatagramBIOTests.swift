import COpenSSL
import NIOCore
import Testing

@testable import DTLSProxy

/// The datagram BIO against hand-built datagrams: OpenSSL's DTLS code relies
/// on it keeping datagram boundaries both ways, saying "retry" when nothing
/// waits, and answering the MTU queries with the configured figures.
@Suite("Datagram BIO")
struct DatagramBIOTests {
    /// A BIO and the buffers it points at, unretained: as a session's endpoint
    /// does, this keeps the buffers alive as long as the BIO.
    private final class Pair {
        let buffers: DatagramBIOBuffers
        let bio: OpaquePointer

        init(mtu: Int, overhead: Int) throws {
            buffers = DatagramBIOBuffers(mtu: mtu, overhead: overhead, allocator: ByteBufferAllocator())
            bio = try #require(DatagramBIO.make(buffers: buffers))
        }

        deinit { BIO_free(bio) }
    }

    private func make(mtu: Int = 1200, overhead: Int = 28) throws -> Pair {
        try Pair(mtu: mtu, overhead: overhead)
    }

    private func read(_ bio: OpaquePointer, capacity: Int) -> (Int32, [UInt8]) {
        var bytes = [UInt8](repeating: 0, count: capacity)
        let count = BIO_read(bio, &bytes, Int32(capacity))
        return (count, Array(bytes.prefix(max(0, Int(count)))))
    }

    @Test func everyWriteIsOneDatagram() throws {
        let pair = try make()
        let first: [UInt8] = [22, 0xFE, 0xFD, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xAA]
        let second = [UInt8](repeating: 0x17, count: 300)
        #expect(BIO_write(pair.bio, first, Int32(first.count)) == Int32(first.count))
        #expect(BIO_write(pair.bio, second, Int32(second.count)) == Int32(second.count))
        #expect(pair.buffers.outbound.map { Array($0.readableBytesView) } == [first, second])
        #expect(BIO_ctrl(pair.bio, BIO_CTRL_FLUSH, 0, nil) == 1)
    }

    @Test func aReadTakesTheWholeDatagramOnceThenAsksToRetry() throws {
        let pair = try make()
        let datagram: [UInt8] = Array(0..<200).map { UInt8($0) }
        pair.buffers.inbound = ByteBuffer(bytes: datagram)
        #expect(BIO_ctrl(pair.bio, BIO_CTRL_PENDING, 0, nil) == 200)
        let (count, bytes) = read(pair.bio, capacity: 2048)
        #expect(count == 200 && bytes == datagram)
        #expect(BIO_ctrl(pair.bio, BIO_CTRL_PENDING, 0, nil) == 0)
        // Nothing left: "retry", as a non-blocking socket with an empty queue.
        let (again, _) = read(pair.bio, capacity: 2048)
        #expect(again == -1)
        #expect(
            BIO_test_flags(pair.bio, BIO_FLAGS_SHOULD_RETRY | BIO_FLAGS_READ) == BIO_FLAGS_SHOULD_RETRY | BIO_FLAGS_READ
        )
    }

    @Test func aDatagramLargerThanTheReadIsTruncatedAndTheRestDiscarded() throws {
        let pair = try make()
        pair.buffers.inbound = ByteBuffer(bytes: [UInt8](repeating: 7, count: 100))
        let (count, bytes) = read(pair.bio, capacity: 40)
        #expect(count == 40 && bytes == [UInt8](repeating: 7, count: 40))
        // As recvfrom would: the datagram is gone, not read in pieces.
        #expect(read(pair.bio, capacity: 100).0 == -1)
    }

    @Test func theMTUQueriesAnswerTheConfiguredFigures() throws {
        let pair = try make(mtu: 1280, overhead: 48)
        #expect(BIO_ctrl(pair.bio, BIO_CTRL_DGRAM_QUERY_MTU, 0, nil) == 1280)
        #expect(BIO_ctrl(pair.bio, BIO_CTRL_DGRAM_GET_MTU, 0, nil) == 1280)
        #expect(BIO_ctrl(pair.bio, BIO_CTRL_DGRAM_GET_MTU_OVERHEAD, 0, nil) == 48)
        // OpenSSL may not raise the MTU past what the listener was given.
        #expect(BIO_ctrl(pair.bio, BIO_CTRL_DGRAM_SET_MTU, 9000, nil) == 1280)
        #expect(BIO_ctrl(pair.bio, BIO_CTRL_DGRAM_MTU_EXCEEDED, 0, nil) == 0)
    }

    @Test func itsTypeIsOneOpenSSLHandedOut() throws {
        let pair = try make()
        let type = BIO_method_type(pair.bio)
        #expect(type != BIO_TYPE_MEM)
        #expect(type & BIO_TYPE_SOURCE_SINK == BIO_TYPE_SOURCE_SINK)
    }
}
