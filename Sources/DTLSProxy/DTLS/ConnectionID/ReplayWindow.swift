/// The anti-replay window of RFC 6347 §4.1.2.6 for the records of one epoch.
///
/// It remembers the highest sequence number accepted and which of the 64
/// numbers up to it were accepted too. Ask `check(_:)` before spending work on
/// a record if you like, but only `accept(_:)` a record once it has been
/// authenticated: a forged record must not move the window.
///
/// `accept(_:)` answers `.newest` for a record newer than every record accepted
/// so far in the epoch. Under RFC 9146 §6 only a datagram with such a record
/// may move the session to a new peer address, so a replayed or
/// reordered datagram from an attacker's address cannot redirect the session.
///
/// A new epoch starts with a new window.
public struct ReplayWindow: Equatable, Sendable {
    /// How many sequence numbers at and below the highest one the window tracks.
    public static let size = 64

    /// What the window says about a sequence number.
    public enum Verdict: Equatable, Sendable {
        /// Newer than every record accepted so far (or the first record of the epoch).
        case newest
        /// Inside the window, below the highest, and not accepted before.
        case unseen
        /// Inside the window and already accepted: a replay or a duplicate.
        case replayed
        /// Too far below the highest for the window to tell: treated as a replay.
        case tooOld

        /// Whether a record with this verdict may be processed.
        public var isAcceptable: Bool { self == .newest || self == .unseen }
    }

    /// The highest sequence number accepted in this epoch; nil before the first.
    public private(set) var highestAccepted: UInt64?
    /// Bit `n` set: `highestAccepted - n` was accepted. Bit 0 is the highest itself.
    private var accepted: UInt64 = 0

    public init() {}

    /// The verdict for `sequenceNumber`, leaving the window as it is.
    public func check(_ sequenceNumber: UInt64) -> Verdict {
        guard let highest = highestAccepted, sequenceNumber <= highest else { return .newest }
        let distance = highest - sequenceNumber
        guard distance < UInt64(Self.size) else { return .tooOld }
        return accepted & (1 << distance) != 0 ? .replayed : .unseen
    }

    /// Records an authenticated record's `sequenceNumber` when its verdict is
    /// acceptable, and returns the verdict (`.newest`: it may update the peer address).
    @discardableResult
    public mutating func accept(_ sequenceNumber: UInt64) -> Verdict {
        let verdict = check(sequenceNumber)
        switch verdict {
        case .newest:
            if let highest = highestAccepted {
                let shift = sequenceNumber - highest
                accepted = shift >= UInt64(Self.size) ? 1 : accepted << shift | 1
            } else {
                accepted = 1
            }
            highestAccepted = sequenceNumber
        case .unseen:
            accepted |= 1 << (highestAccepted! - sequenceNumber)
        case .replayed, .tooOld:
            break
        }
        return verdict
    }

    /// Whether `sequenceNumber` is newer than every record accepted so far in the epoch.
    public func isNewerThanEveryAccepted(_ sequenceNumber: UInt64) -> Bool {
        check(sequenceNumber) == .newest
    }
}
