import Testing

@testable import DTLSProxy

@Suite("Replay window (RFC 6347 §4.1.2.6)")
struct ReplayWindowTests {
    @Test func theFirstRecordIsTheNewest() {
        var window = ReplayWindow()
        #expect(window.highestAccepted == nil)
        #expect(window.check(1000) == .newest)
        #expect(window.accept(1000) == .newest)
        #expect(window.highestAccepted == 1000)
    }

    @Test func newerRecordsAdvanceTheWindow() {
        var window = ReplayWindow()
        #expect(window.accept(0) == .newest)
        #expect(window.accept(1) == .newest)
        #expect(window.accept(5) == .newest)
        #expect(window.highestAccepted == 5)
        #expect(window.isNewerThanEveryAccepted(6))
        #expect(!window.isNewerThanEveryAccepted(5))
        #expect(!window.isNewerThanEveryAccepted(4))
    }

    @Test func aReplayIsRefusedAndChangesNothing() {
        var window = ReplayWindow()
        window.accept(7)
        window.accept(9)
        let before = window
        #expect(window.check(9) == .replayed)
        #expect(window.accept(9) == .replayed)
        #expect(window.accept(7) == .replayed)
        #expect(window == before)
        #expect(!ReplayWindow.Verdict.replayed.isAcceptable)
    }

    @Test func anUnseenRecordInsideTheWindowIsAcceptedOnceButIsNotTheNewest() {
        var window = ReplayWindow()
        window.accept(100)
        #expect(window.check(37) == .unseen)  // 100 - 63: the oldest the window covers
        #expect(window.accept(99) == .unseen)
        #expect(window.accept(99) == .replayed)
        #expect(window.highestAccepted == 100)
        #expect(!window.isNewerThanEveryAccepted(99))
        #expect(window.accept(37) == .unseen)
        #expect(ReplayWindow.Verdict.unseen.isAcceptable)
    }

    @Test func aRecordBelowTheWindowIsTooOld() {
        var window = ReplayWindow()
        window.accept(100)
        #expect(window.check(36) == .tooOld)  // 100 - 64
        #expect(window.accept(0) == .tooOld)
        #expect(window.highestAccepted == 100)
        #expect(!ReplayWindow.Verdict.tooOld.isAcceptable)
    }

    @Test func shiftingKeepsWhatWasSeen() {
        var window = ReplayWindow()
        window.accept(10)
        window.accept(8)
        window.accept(20)  // shift by 10: 10 and 8 still inside
        #expect(window.check(10) == .replayed)
        #expect(window.check(8) == .replayed)
        #expect(window.check(9) == .unseen)
        window.accept(72)  // 72 - 63 = 9: 8 falls out, 9 and 10 are inside
        #expect(window.check(8) == .tooOld)
        #expect(window.check(9) == .unseen)
        #expect(window.check(10) == .replayed)
        #expect(window.check(20) == .replayed)
        window.accept(1_000)  // a jump past the whole window forgets everything below
        #expect(window.check(999) == .unseen)
        #expect(window.check(1_000) == .replayed)
        #expect(window.check(72) == .tooOld)
    }

    @Test func theLargestSequenceNumbersWork() {
        var window = ReplayWindow()
        let last: UInt64 = (1 << 48) - 1
        #expect(window.accept(last - 1) == .newest)
        #expect(window.accept(last) == .newest)
        #expect(window.check(last - 1) == .replayed)
        #expect(window.check(last - 2) == .unseen)
    }

    /// Against a set of every accepted number: the verdicts agree on a random walk.
    @Test func agreesWithAPlainModel() {
        var window = ReplayWindow()
        var seen: Set<UInt64> = []
        var random = SplitMix64(seed: 6347)
        var highest: UInt64?
        for _ in 0..<5_000 {
            // Mostly near the top (ahead, inside, just below the window), sometimes far back.
            let top = (highest ?? 0) + 40
            let back = random.next() % 8 == 0 ? random.next() % 1_000 : random.next() % 120
            let sequence = top >= back ? top - back : 0
            let expected: ReplayWindow.Verdict
            if let top = highest, sequence <= top {
                expected = top - sequence >= 64 ? .tooOld : seen.contains(sequence) ? .replayed : .unseen
            } else {
                expected = .newest
            }
            #expect(window.accept(sequence) == expected, "sequence \(sequence)")
            if expected.isAcceptable { seen.insert(sequence) }
            if expected == .newest { highest = sequence }
        }
    }
}
