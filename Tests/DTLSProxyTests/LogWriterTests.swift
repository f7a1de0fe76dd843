import Foundation
import Testing

@testable import DTLSProxy

#if canImport(Glibc)
    import Glibc
#endif

@Suite("Log writer")
struct LogWriterTests {
    @Test func linesTheKernelRefusesAreDroppedAndCounted() throws {
        let full = open("/dev/full", O_WRONLY | O_CLOEXEC)
        try #require(full >= 0)
        defer { close(full) }
        let writer = LogWriter(descriptor: full, capacity: 16)
        for index in 0..<3 { writer.enqueue("line \(index)\n") }
        writer.flush()
        #expect(writer.droppedLines == 3)
    }

    @Test func aFullQueueDropsWithoutWaitingAndTheGapIsReported() throws {
        var ends: [Int32] = [0, 0]
        try #require(pipe(&ends) == 0)
        let (readEnd, writeEnd) = (ends[0], ends[1])
        defer {
            close(readEnd)
            close(writeEnd)
        }
        // Fill the pipe so that the writer thread blocks on its first write.
        _ = fcntl(writeEnd, F_SETFL, fcntl(writeEnd, F_GETFL) | O_NONBLOCK)
        let filler = [UInt8](repeating: UInt8(ascii: "."), count: 4096)
        while filler.withUnsafeBytes({ write(writeEnd, $0.baseAddress, $0.count) }) > 0 {}
        let writer = LogWriter(descriptor: writeEnd, capacity: 4)
        let started = ContinuousClock.now
        for index in 0..<100 { writer.enqueue("line \(index)\n") }
        #expect(ContinuousClock.now - started < .seconds(1), "enqueue waited for the log")
        #expect(writer.droppedLines >= 90)

        // A reader comes back: what was queued arrives, then the next line says what was lost.
        var received = ""
        _ = fcntl(readEnd, F_SETFL, fcntl(readEnd, F_GETFL) | O_NONBLOCK)
        let deadline = ContinuousClock.now + .seconds(10)
        var buffer = [UInt8](repeating: 0, count: 65536)
        var sentAfter = false
        while !received.contains("lines dropped"), ContinuousClock.now < deadline {
            let count = buffer.withUnsafeMutableBytes { read(readEnd, $0.baseAddress, $0.count) }
            if count > 0 {
                received += String(decoding: buffer[..<count], as: UTF8.self).replacingOccurrences(of: ".", with: "")
            } else {
                if !sentAfter {
                    writer.enqueue("after the gap\n")
                    sentAfter = true
                }
                usleep(20_000)
            }
        }
        #expect(received.contains("lines dropped"))
    }
}
