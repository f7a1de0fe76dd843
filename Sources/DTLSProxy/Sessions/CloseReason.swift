import CoreMetrics

/// Why a session ended, as its close log line and the metrics say it.
public enum CloseReason: String, Sendable, CaseIterable {
    /// No datagram either way for `idle_timeout`.
    case idle
    /// The peer sent close_notify.
    case closeNotify = "close_notify"
    /// The peer sent a fatal alert.
    case alert
    /// The handshake failed (bad certificate, no shared cipher, retransmissions exhausted).
    case handshakeFailed = "handshake_failed"
    /// The client's certificate verified but no allow-list admits it (access_denied sent).
    case accessDenied = "access_denied"
    /// The handshake did not finish within `handshake_timeout`.
    case handshakeTimeout = "handshake_timeout"
    /// The daemon is stopping.
    case shutdown
    /// A reload removed the session's listener (or moved it to another address).
    case reload
    /// The same client address completed a new handshake (RFC 6347 §4.2.8).
    case replaced
    /// A local failure: a record OpenSSL rejected, a backend socket that could not be opened.
    case error
}

extension CloseReason {
    /// One counter `label{owner, reason="…"}` per close reason, by raw value.
    static func counters(
        label: String, owner: (String, String), factory: any MetricsFactory
    ) -> [String: CoreMetrics.Counter] {
        var counters: [String: CoreMetrics.Counter] = [:]
        for reason in allCases {
            counters[reason.rawValue] = CoreMetrics.Counter(
                label: label, dimensions: [owner, ("reason", reason.rawValue)], factory: factory)
        }
        return counters
    }
}
