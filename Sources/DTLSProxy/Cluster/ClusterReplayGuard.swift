/// What makes a cluster message that authenticated acceptable: not older
/// than the clock skew allows, and not seen before from its sender.
///
/// The tag alone cannot tell a captured message sent again from a new one;
/// each sender numbers its messages with an increasing sequence (its clock
/// in microseconds at start, then one by one, so a restarted sender starts
/// above what it sent before) and every receiver keeps a window per sender
/// (RFC 6347 §4.1.2.6's, 64 messages). The timestamp bounds what a receiver
/// that restarted, and so lost its windows, would take: nothing older than
/// `maximumAge`.
struct ClusterReplayGuard: Sendable {
    /// How far a message's timestamp may be from the receiver's clock.
    static let maximumAge: UInt64 = 30_000

    enum Verdict: Equatable, Sendable {
        case accepted
        case stale
        case replayed
    }

    private var windows: [UInt8: ReplayWindow] = [:]

    /// Checks `message` (already authenticated) at `now` (ms since the epoch) and remembers it when accepted.
    mutating func admit(_ message: ClusterMessage, now: UInt64) -> Verdict {
        let age = now >= message.timestamp ? now - message.timestamp : message.timestamp - now
        guard age <= Self.maximumAge else { return .stale }
        var window = windows[message.sender] ?? ReplayWindow()
        guard window.accept(message.sequence).isAcceptable else { return .replayed }
        windows[message.sender] = window
        return .accepted
    }
}
