import NIOCore

/// Spaces out a connector's handshakes while its server keeps refusing them.
///
/// Without it, a local program that sends steadily would start a new
/// handshake with every datagram after a failure (a server whose certificate
/// does not verify fails in milliseconds), and one misconfigured tunnel would
/// hammer the server. After `n` failures in a row no new session starts for
/// `initial × 2^(n-1)`, at most `maximum`; datagrams of local peers without a
/// session are dropped and counted meanwhile. One completed handshake clears it.
struct HandshakeBackoff {
    static let initial = TimeAmount.milliseconds(500)
    static let maximum = TimeAmount.seconds(30)

    private(set) var failures = 0
    private(set) var until = NIODeadline.distantPast

    /// Whether a new session may start now.
    func allows(_ now: NIODeadline) -> Bool { now >= until }

    /// A handshake failed; returns the pause now in force.
    @discardableResult
    mutating func failed(at now: NIODeadline) -> TimeAmount {
        failures += 1
        let shift = min(failures - 1, 16)
        let pause = min(Self.maximum, .nanoseconds(Self.initial.nanoseconds << Int64(shift)))
        until = now + pause
        return pause
    }

    /// A handshake completed.
    mutating func succeeded() {
        failures = 0
        until = .distantPast
    }
}
