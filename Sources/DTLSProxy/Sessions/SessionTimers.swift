import NIOCore

/// The timers of one session, listener or connector side, and its activity clock.
///
/// A session arms a handshake deadline when it starts, the retransmission
/// timer OpenSSL asks for (`DTLSv1_get_timeout`) while it handshakes, and
/// one idle timer once established. The idle timer fires once per idle
/// period, not per datagram: datagrams only move `lastActivity`, and the
/// timer re-arms for what is left of the period when it fires early.
/// Lives inside its session, on its event loop.
struct SessionTimers {
    let openedAt = NIODeadline.now()
    /// When a datagram last went either way.
    var lastActivity = NIODeadline.now()
    private var handshake: Scheduled<Void>?
    private var retransmission: Scheduled<Void>?
    private var idle: Scheduled<Void>?

    /// Arms the deadline a handshake must finish by.
    mutating func startHandshakeDeadline(on loop: EventLoop, in delay: TimeAmount, _ expired: @escaping () -> Void) {
        handshake = loop.assumeIsolated().scheduleTask(in: delay, expired)
    }

    /// Arms the retransmission timer for the flight `endpoint` just sent; none when OpenSSL runs no timer.
    mutating func armRetransmission(for endpoint: DTLSEndpoint, on loop: EventLoop, _ due: @escaping () -> Void) {
        retransmission?.cancel()
        retransmission = nil
        guard let delay = endpoint.nextTimeout() else { return }
        retransmission = loop.assumeIsolated().scheduleTask(in: delay, due)
    }

    /// The handshake completed: its deadline and retransmissions stop.
    mutating func handshakeCompleted() {
        handshake?.cancel()
        retransmission?.cancel()
        handshake = nil
        retransmission = nil
    }

    mutating func armIdle(on loop: EventLoop, in delay: TimeAmount, _ check: @escaping () -> Void) {
        idle = loop.assumeIsolated().scheduleTask(in: delay, check)
    }

    /// What is left of the idle period when the idle timer fires; nil when it has run out.
    func idleTimeLeft(of timeout: TimeAmount, now: NIODeadline = .now()) -> TimeAmount? {
        let quiet = now - lastActivity
        return quiet >= timeout ? nil : timeout - quiet
    }

    /// Cancels every timer; the session is closing.
    mutating func cancelAll() {
        for timer in [handshake, retransmission, idle] { timer?.cancel() }
        handshake = nil
        retransmission = nil
        idle = nil
    }

    /// ` duration=1.234s` for the close line.
    var durationField: String {
        let seconds = Double((NIODeadline.now() - openedAt).nanoseconds) / 1e9
        return " duration=\(String(format: "%.3f", seconds))s"
    }
}
