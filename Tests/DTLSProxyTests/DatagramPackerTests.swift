import NIOCore
import Testing

@testable import DTLSProxy

@Suite("Packing records into datagrams")
struct DatagramPackerTests {
    private func buffers(_ sizes: [Int]) -> [ByteBuffer] {
        sizes.enumerated().map { index, size in ByteBuffer(bytes: [UInt8](repeating: UInt8(index), count: size)) }
    }

    @Test func smallRecordsShareADatagramUpToTheMTU() {
        let packed = DatagramPacker.pack(buffers([14, 61, 100, 300]), mtu: 200)
        #expect(packed.map(\.readableBytes) == [175, 300])
        // Order and content survive: 14 zeros, 61 ones, 100 twos.
        #expect(
            Array(packed[0].readableBytesView) == [UInt8](repeating: 0, count: 14) + [UInt8](repeating: 1, count: 61)
                + [UInt8](repeating: 2, count: 100))
    }

    @Test func nothingIsSplitAndNothingExceedsTheMTUThatFits() {
        let sizes = [576, 576, 20, 500, 60, 576]
        let packed = DatagramPacker.pack(buffers(sizes), mtu: 576)
        #expect(packed.map(\.readableBytes) == [576, 576, 520, 60, 576])
        #expect(packed.allSatisfy { $0.readableBytes <= 576 })
        #expect(packed.reduce(0) { $0 + $1.readableBytes } == sizes.reduce(0, +))
    }

    @Test func anOversizedWriteStaysAlone() {
        #expect(DatagramPacker.pack(buffers([10, 900, 10]), mtu: 576).map(\.readableBytes) == [10, 900, 10])
    }
}
