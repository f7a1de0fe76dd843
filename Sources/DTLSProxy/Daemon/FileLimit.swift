import Foundation
import Logging

/// The open-file limit a full daemon needs: one socket per session.
///
/// The unit sets `LimitNOFILE=`; started by hand, a shell's soft limit (often
/// 1024) would refuse sockets long before `max_sessions`. The soft limit is
/// raised to the hard one, and a configuration that could still exceed it is
/// logged at start and again when a reload changes the figures, so the operator
/// learns it before clients do.
enum FileLimit {
    /// Raises the soft `RLIMIT_NOFILE` to the hard limit; returns the soft limit in force.
    @discardableResult
    static func raiseSoftLimit() -> UInt64 {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 0 }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { return UInt64(raised.rlim_cur) }
        }
        return UInt64(limit.rlim_cur)
    }

    /// Descriptors the configuration may hold at once: every listener session's
    /// backend socket, every connector session's server socket, every listener
    /// and connector socket, and some to spare (metrics, journal, loops).
    static func needed(by configuration: ProxyConfiguration, eventLoops: Int) -> UInt64 {
        let sessions =
            configuration.listeners.reduce(UInt64(0)) { $0 + UInt64($1.maxSessions) }
            + configuration.connectors.reduce(UInt64(0)) { $0 + UInt64($1.maxSessions) }
        return sessions + UInt64(configuration.listeners.count * eventLoops + configuration.connectors.count) + 64
    }

    /// The limit in force and what a configuration may need, when the first is below the second.
    struct Shortfall: Equatable {
        var limit: UInt64
        var needed: UInt64
    }

    /// The shortfall of `configuration` under the limit in force (raised to the hard limit first), if any.
    static func shortfall(of configuration: ProxyConfiguration, eventLoops: Int) -> Shortfall? {
        let limit = raiseSoftLimit()
        let needed = needed(by: configuration, eventLoops: eventLoops)
        // RLIM_INFINITY is the largest value, so it never compares below `needed`.
        guard limit > 0, limit < needed else { return nil }
        return Shortfall(limit: limit, needed: needed)
    }

    /// Logs a warning when the limit is below what `configuration` may need,
    /// unless it said the same for `previous` (the configuration a reload
    /// replaces): a reload that changes neither the limit nor the sessions the
    /// configuration may hold repeats nothing.
    static func check(
        _ configuration: ProxyConfiguration, previous: ProxyConfiguration? = nil, eventLoops: Int, logger: Logger
    ) {
        guard let shortfall = shortfall(of: configuration, eventLoops: eventLoops) else { return }
        if let previous, shortfall == Self.shortfall(of: previous, eventLoops: eventLoops) { return }
        logger.warning(
            "open-file limit \(shortfall.limit) is below the \(shortfall.needed) max_sessions of the listeners and connectors may need (one socket per session); raise LimitNOFILE= or lower max_sessions"
        )
    }
}
