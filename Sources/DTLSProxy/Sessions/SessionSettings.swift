import Logging
import NIOCore

/// What a session takes from its runtime, the same for both roles: built
/// once per runtime (``ListenerRuntime``, ``ConnectorRuntime``) so that a
/// reload hands new sessions new settings and the sessions already open keep
/// theirs.
struct SessionSettings: Sendable {
    let logger: Logger
    let idleTimeout: TimeAmount
    let handshakeTimeout: TimeAmount
    /// `handshake_timeout` as configured, for the close line of a handshake that ran out of time.
    let handshakeTimeoutText: String
    /// Closes a session after this many datagrams in a row from its DTLS peer
    /// yielded nothing (`max_undecryptable_datagrams`); 0: never.
    let maxUndecryptableDatagrams: Int
    /// The role's counters.
    let stats: any SessionStats
    /// ` listener=NAME` or ` connector=NAME server=ADDRESS`: where every session log line says the session belongs.
    let logFields: String
    /// `busy_poll`: how long the loops of the role spin after a flush (``BusyPoll``).
    let busyPoll: TimeAmount

    init(
        logger: Logger, idleTimeout: ConfigDuration, handshakeTimeout: ConfigDuration, maxUndecryptableDatagrams: Int,
        stats: any SessionStats, logFields: String, busyPoll: ConfigDuration = .zero
    ) {
        self.busyPoll = .nanoseconds(busyPoll.nanoseconds)
        self.logger = logger
        self.idleTimeout = .nanoseconds(idleTimeout.nanoseconds)
        self.handshakeTimeout = .nanoseconds(handshakeTimeout.nanoseconds)
        handshakeTimeoutText = handshakeTimeout.description
        self.maxUndecryptableDatagrams = maxUndecryptableDatagrams
        self.stats = stats
        self.logFields = logFields
    }
}
