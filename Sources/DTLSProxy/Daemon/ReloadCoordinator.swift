import Foundation
import Logging

/// Live reload (SIGHUP, `systemctl reload`).
///
/// The new file is read and validated completely first: every key, every
/// DTLS context built (certificates, keys, CAs, PSKs), addresses resolved,
/// new sockets and the HTTP endpoints (metrics, health) bound. Only then is anything swapped:
/// listeners that stay get the new runtime for new handshakes while their live
/// sessions keep the old one, removed listeners close their sessions with
/// close_notify (reason `reload`), and the log level changes. When any step
/// before the swap fails, what was opened is closed again and the running
/// configuration keeps serving; the error is logged and shown in `STATUS=`.
///
/// systemd hears `RELOADING=1` with `MONOTONIC_USEC=` at the start and
/// `READY=1` at the end, whether the reload succeeded or not (unless a stop
/// began meanwhile).
final class ReloadCoordinator: Sendable {
    private let server: ListenerSet
    private let endpoints: HTTPEndpoints
    private let logLevel: LogLevelControl
    private let notifier: SystemdNotifier
    private let status: StatusReporter
    private let health: HealthState
    private let logger: Logger

    init(
        server: ListenerSet, endpoints: HTTPEndpoints, logLevel: LogLevelControl, notifier: SystemdNotifier,
        status: StatusReporter, health: HealthState, logger: Logger
    ) {
        self.health = health
        self.server = server
        self.endpoints = endpoints
        self.logLevel = logLevel
        self.notifier = notifier
        self.status = status
        self.logger = logger
    }

    /// Reloads the configuration file the daemon started with; returns whether it took effect.
    @discardableResult
    func reload() async -> Bool {
        let path = server.configuration.sourcePath
        notifier.notify("RELOADING=1\nMONOTONIC_USEC=\(Self.monotonicMicroseconds())\nSTATUS=reloading \(path)")
        logger.info("reload: reading \(path)")
        let succeeded: Bool
        // Counters first, then the log line: whoever watches the log sees metrics that already agree.
        do {
            let summary = try await apply(path: path)
            server.metrics.reloaded(success: true)
            status.reloadFailed(nil)
            logger.info("reload complete: \(summary)")
            succeeded = true
        } catch {
            let text = (error as? ConfigurationError)?.description ?? "\(error)"
            server.metrics.reloaded(success: false)
            status.reloadFailed(text)
            logger.error("reload failed; the running configuration stays: \(text)")
            succeeded = false
        }
        HeapTrim.afterReload()
        // A stop asked for while the reload ran: READY=1 now would tell systemd the unit is up again.
        notifier.notify(health.readiness == .ready ? "READY=1\nSTATUS=\(status.line())" : "STATUS=\(status.line())")
        return succeeded
    }

    private func apply(path: String) async throws -> String {
        let old = server.configuration
        let new = try ConfigurationLoader.load(path: path)
        let plan = try await server.prepare(new)
        do {
            try await endpoints.reconfigure(to: new.daemon)
        } catch {
            await server.abandon(plan)
            throw error
        }
        let summary = await server.commit(plan)
        FileLimit.check(new, previous: old, eventLoops: server.loops.count, logger: logger)
        if new.daemon.workers != old.daemon.workers {
            logger.warning(
                "reload: workers changed from \(old.daemon.workers) to \(new.daemon.workers); the number of event loops changes only at restart"
            )
        }
        if new.daemon.logLevel != old.daemon.logLevel {
            logLevel.level = new.daemon.logLevel.loggerLevel
            logger.notice("reload: log_level is now \(new.daemon.logLevel.rawValue)")
        }
        if new.daemon.busyPoll != old.daemon.busyPoll {
            logger.notice("reload: busy_poll is now \(new.daemon.busyPoll)")
        }
        return summary
    }

    /// `CLOCK_MONOTONIC` in microseconds, as systemd wants it in `MONOTONIC_USEC=`.
    static func monotonicMicroseconds() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1000
    }
}
