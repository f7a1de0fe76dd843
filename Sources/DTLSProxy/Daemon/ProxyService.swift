import Logging
import ServiceLifecycle
import UnixSignals

/// The daemon as a swift-service-lifecycle service: start the data plane,
/// tell systemd it is ready, serve until a graceful shutdown is asked for
/// (SIGTERM, SIGINT), then close every session with close_notify and stop.
///
/// While serving: SIGHUP reloads (``ReloadCoordinator``), and so does a
/// change of a file the configuration names with `reload_on_change`
/// (``ReloadOnChange``); SIGUSR1 logs the
/// stats lines, `STATUS=` is refreshed every few seconds, `WATCHDOG=1` is sent
/// while every event loop makes progress, and the metrics endpoint answers.
public struct ProxyService: Service {
    private let configuration: ProxyConfiguration
    private let logger: Logger
    private let logLevel: LogLevelControl
    private let activation: SocketActivation
    private let notifier = SystemdNotifier()
    /// How often `STATUS=` is refreshed.
    static let statusInterval: Duration = .seconds(2)

    public init(
        configuration: ProxyConfiguration, logger: Logger, logLevel: LogLevelControl,
        activation: SocketActivation = .none
    ) {
        self.configuration = configuration
        self.logger = logger
        self.logLevel = logLevel
        self.activation = activation
    }

    public func run() async throws {
        // Trap before anything is bound: a SIGHUP or SIGUSR1 that arrives just
        // after READY=1 must not meet the default action, which is to exit.
        let signals = await UnixSignalsSequence(trapping: .sigusr1, .sighup)
        HeapTrim.mapLargeBlocksSeparately()
        // Started now rather than at the first park: its thread and epoll
        // descriptor are then part of the daemon from the start, and the
        // open-descriptor count an operator watches does not step up later.
        ParkedSocketWatcher.start()
        let server = try await ListenerSet.start(configuration: configuration, logger: logger, activation: activation)
        let metricsEndpoint = MetricsEndpoint(server: server, logger: logger)
        do {
            try await metricsEndpoint.reconfigure(to: configuration.daemon.metricsListen)
        } catch {
            await server.stop()
            throw error
        }
        let status = StatusReporter(server: server, notifier: notifier)
        let reloader = ReloadCoordinator(
            server: server, metricsEndpoint: metricsEndpoint, logLevel: logLevel, notifier: notifier, status: status,
            logger: logger)
        let watchdog = Watchdog.requestedMicroseconds().map { usec in
            Watchdog(watchdogMicroseconds: usec, loops: server.loops, logger: logger) { [notifier] in
                notifier.notify("WATCHDOG=1")
            }
        }
        FileLimit.check(configuration, eventLoops: server.loops.count, logger: logger)
        // Unbounded: every SIGHUP is one reload, as before reload_on_change
        // (whose debounce already makes a burst of changes one request).
        let (reloadRequests, reloads) = AsyncStream<Void>.makeStream()
        let changes = ReloadOnChange(logger: logger) { reloads.yield() }
        await changes.follow(server.configuration)
        let listeners = server.runtimes.count
        logger.info("ready: \(listeners) listener(s), \(server.connectors.runtimes.count) connector(s)")
        notifier.ready(status: status.line())

        await withTaskGroup(of: Void.self) { outer in
            // The heartbeat continues while stopping: systemd's watchdog still runs then.
            if let watchdog {
                watchdog.start()
                logger.info("watchdog: WATCHDOG=1 every \(watchdog.period) while every event loop makes progress")
                outer.addTask { await watchdog.run() }
            }
            await withTaskGroup(of: Void.self) { group in
                group.addTask {
                    for await signal in signals {
                        if signal == .sigusr1 {
                            await logStats(server)
                        } else {
                            reloads.yield()
                        }
                    }
                }
                // SIGHUP and reload_on_change ask this one task, so reloads never overlap.
                group.addTask {
                    for await _ in reloadRequests {
                        await reloader.reload()
                        await changes.follow(server.configuration)
                    }
                }
                group.addTask { await status.run(every: Self.statusInterval) }
                try? await gracefulShutdown()
                // Cancelling ends the signal and reload loops; a reload under way finishes first.
                reloads.finish()
                group.cancelAll()
            }
            await changes.stop()
            await stop(server, metricsEndpoint: metricsEndpoint, watchdog: watchdog)
            outer.cancelAll()
        }
    }

    /// STOPPING=1, close_notify to every session, sockets closed, within `shutdown_timeout`.
    private func stop(_ server: ListenerSet, metricsEndpoint: MetricsEndpoint, watchdog: Watchdog?) async {
        notifier.stopping()
        logger.info("stopping: sending close_notify to every session")
        let timeout = server.configuration.daemon.shutdownTimeout
        let finished = await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                await server.closeListeners()
                await metricsEndpoint.close()
                watchdog?.stop()
                await server.shutdownLoops()
                return true
            }
            group.addTask {
                try? await Task.sleep(for: .nanoseconds(timeout.nanoseconds))
                return false
            }
            let first = await group.next() ?? false
            group.cancelAll()
            return first
        }
        if !finished {
            logger.warning("stop did not finish within shutdown_timeout \(timeout); exiting anyway")
        }
        for runtime in server.runtimes {
            logger.info("\(runtime.stats.logLine)")
        }
        for runtime in server.connectors.runtimes {
            logger.info("\(runtime.stats.logLine)")
        }
        logger.info("stopped")
    }

    private func logStats(_ server: ListenerSet) async {
        // The kernel's drops are read from the sockets now, so the lines are exact.
        try? await server.flushTraffic(on: server.loops[0]).get()
        let counts = await server.sessionCounts()
        for runtime in server.runtimes {
            logger.info("\(runtime.stats.logLine)")
        }
        for runtime in server.connectors.runtimes {
            logger.info("\(runtime.stats.logLine)")
        }
        if let link = server.clusterLink.withLockedValue({ $0 }) {
            logger.info("\(link.stats.logLine(node: link.nodeID))")
        }
        logger.info("sessions per event loop: \(counts.map(String.init).joined(separator: ","))")
    }
}
