import Testing

@testable import DTLSProxy

/// When a read is followed by a drain: always while drains find datagrams;
/// after empty ones, fewer and fewer drains, never fewer than one in
/// `maximumSkips + 1` reads; the first drain that finds something restores a
/// drain after every read.
@Suite("Drain schedule")
struct DrainScheduleTests {
    /// Runs `reads` reads, the drains finding `found(readIndex)` datagrams;
    /// returns the indices of the reads that drained.
    private func drains(_ schedule: inout DrainSchedule, reads: Range<Int>, found: (Int) -> Int) -> [Int] {
        var drained: [Int] = []
        for read in reads where schedule.shouldDrain() {
            drained.append(read)
            schedule.drained(found(read))
        }
        return drained
    }

    @Test("a socket whose drains find datagrams drains after every read")
    func busySocketAlwaysDrains() {
        var schedule = DrainSchedule()
        #expect(drains(&schedule, reads: 0..<100) { _ in 3 } == Array(0..<100))
    }

    @Test("empty drains back off exponentially to one drain in maximumSkips + 1 reads")
    func emptyDrainsBackOff() {
        var schedule = DrainSchedule()
        let drained = drains(&schedule, reads: 0..<60) { _ in 0 }
        // Skips after each empty drain: 1, 2, 4, 8, 8, ...
        #expect(drained == [0, 2, 5, 10, 19, 28, 37, 46, 55])
        let gaps = zip(drained.dropFirst(), drained).map { $0 - $1 - 1 }
        #expect(gaps.allSatisfy { $0 <= DrainSchedule.maximumSkips })
    }

    @Test("the first drain that finds datagrams makes every read drain again")
    func burstRestoresDraining() {
        var schedule = DrainSchedule()
        // Idle long enough to reach the longest skip.
        _ = drains(&schedule, reads: 0..<40) { _ in 0 }
        // A burst starts at read 40: the next drain finds it, and from then on every read drains.
        let drained = drains(&schedule, reads: 40..<80) { $0 >= 40 ? 5 : 0 }
        guard let first = drained.first else {
            Issue.record("no read drained during the burst")
            return
        }
        #expect(first - 40 <= DrainSchedule.maximumSkips)
        #expect(drained == Array(first..<80))
        // Going quiet again starts the back-off from one skip, not from the longest.
        let quiet = drains(&schedule, reads: 80..<86) { _ in 0 }
        #expect(quiet == [80, 82, 85])
    }
}
