/// A record from the peer that was authenticated and passed the replay window.
public struct AcceptedRecord: Equatable, Sendable {
    public let epoch: UInt16
    public let sequenceNumber: UInt64
    /// Newer than every record accepted before it in the epoch (`ReplayWindow.Verdict.newest`):
    /// RFC 9146 §6 lets only a datagram with such a record move the session to a new peer address.
    public let isNewest: Bool
}
