import Logging
import ServiceLifecycle
import UnixSignals

/// The daemon as a swift-service-lifecycle service: start the data plane,
/// tell systemd it is ready, serve until a stop is asked for (SIGTERM, SIGINT,
/// or the service group's graceful shutdown), drain for `drain_timeout` when
/// it is set, then close every session with close_notify and stop.
///
/// While serving: SIGHUP reloads (``ReloadCoordinator``), SIGUSR1 logs the
/// stats lines, `STATUS=` is refreshed every few seconds, `WATCHDOG=1` is sent
/// while every event loop makes progress, and the HTTP endpoints answer
/// (metrics, `/healthz`, `/readyz`).
///
/// SIGTERM and SIGINT are trapped here, not by the service group: the group
/// acts on the first graceful-shutdown signal only, and the drain needs the
/// second one too (it ends the drain at once). The group's own graceful
/// shutdown still counts as a stop request (``StopRequests``).
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
        // Trap before anything is bound: a signal that arrives just after
        // READY=1 must not meet the default action, which is to exit.
        let signals = await UnixSignalsSequence(trapping: .sigusr1, .sighup)
        // Apart from SIGHUP and SIGUSR1: a stop must not wait for a reload under way.
        let stopSignals = await UnixSignalsSequence(trapping: .sigterm, .sigint)
        HeapTrim.mapLargeBlocksSeparately()
        // Started now rather than at the first park: its thread and epoll
        // descriptor are then part of the daemon from the start, and the
        // open-descriptor count an operator watches does not step up later.
        ParkedSocketWatcher.start()
        let server = try await ListenerSet.start(configuration: configuration, logger: logger, activation: activation)
        let watchdogMicroseconds = Watchdog.requestedMicroseconds()
        let progress = LoopProgress(
            loops: server.loops,
            interval: watchdogMicroseconds.map {
                min(LoopProgress.defaultInterval, Watchdog.checkInInterval(watchdogMicroseconds: $0))
            } ?? LoopProgress.defaultInterval)
        let watchdog = watchdogMicroseconds.map { usec in
            Watchdog(watchdogMicroseconds: usec, progress: progress, logger: logger) { [notifier] in
                notifier.notify("WATCHDOG=1")
            }
        }
        // /healthz fails when the watchdog would withhold WATCHDOG=1.
        let health = HealthState(
            progress: progress, stallThreshold: watchdog?.period ?? HealthState.defaultStallThreshold)
        progress.start()
        let endpoints = HTTPEndpoints(server: server, health: health, logger: logger)
        do {
            try await endpoints.reconfigure(to: configuration.daemon)
        } catch {
            progress.stop()
            await server.stop()
            throw error
        }
        let status = StatusReporter(server: server, notifier: notifier)
        let reloader = ReloadCoordinator(
            server: server, endpoints: endpoints, logLevel: logLevel, notifier: notifier, status: status,
            health: health, logger: logger)
        FileLimit.check(configuration, eventLoops: server.loops.count, logger: logger)
        // Unbounded: every SIGHUP is one reload, as before reload_on_change
        // (whose debounce already makes a burst of changes one request).
        let (reloadRequests, reloads) = AsyncStream<Void>.makeStream()
        let changes = ReloadOnChange(logger: logger) { reloads.yield() }
        await changes.follow(server.configuration)
        let listeners = server.runtimes.count
        health.advance(to: .ready)
        logger.info("ready: \(listeners) listener(s), \(server.connectors.runtimes.count) connector(s)")
        notifier.ready(status: status.line())

        let stops = StopRequests()
        await withGracefulShutdownHandler {
            await withTaskGroup(of: Void.self) { outer in
                // The heartbeat continues while draining and stopping: systemd's watchdog still runs then.
                if let watchdog {
                    logger.info("watchdog: WATCHDOG=1 every \(watchdog.period) while every event loop makes progress")
                    outer.addTask { await watchdog.run() }
                }
                await withTaskGroup(of: Void.self) { group in
                    group.addTask {
                        for await signal in signals {
                            if signal == .sigusr1 {
                                await logStats(server)
                            } else if health.readiness == .ready {
                                reloads.yield()
                            } else {
                                // systemd refuses a reload of a unit that is stopping; so does the daemon.
                                logger.notice("reload: ignored while \(health.readiness)")
                            }
                        }
                    }
                    // SIGHUP and reload_on_change ask this one task, so reloads never overlap.
                    group.addTask {
                        for await _ in reloadRequests where health.readiness == .ready {
                            await reloader.reload()
                            await changes.follow(server.configuration)
                        }
                    }
                    group.addTask {
                        for await _ in stopSignals { stops.request() }
                    }
                    group.addTask { await status.run(every: Self.statusInterval) }
                    await stops.wait(for: 1)
                    await drain(server.configuration.daemon.drainTimeout, stops: stops, health: health, status: status)
                    // Cancelling ends the signal and reload loops; a reload under way finishes first.
                    reloads.finish()
                    group.cancelAll()
                }
                await changes.stop()
                health.advance(to: .stopping)
                await stop(server, endpoints: endpoints, progress: progress)
                outer.cancelAll()
            }
        } onGracefulShutdown: {
            stops.request()
        }
    }

    /// The drain: `/readyz` answers 503 and `STATUS=` says so, while sessions and
    /// new handshakes are still served, for `timeout` or until a second stop request.
    ///
    /// `STOPPING=1` goes out now rather than at the stop: when the SIGTERM did not
    /// come from systemd, this is what tells it the unit is deactivating (and
    /// starts `TimeoutStopSec=`, which must cover the drain and the stop).
    private func drain(
        _ timeout: ConfigDuration, stops: StopRequests, health: HealthState, status: StatusReporter
    ) async {
        guard timeout > .zero else { return }
        health.advance(to: .draining)
        status.drainStarted()
        notifier.notify("STOPPING=1\nSTATUS=\(status.line())")
        logger.notice(
            "draining: /readyz answers 503; sessions and new handshakes are served for drain_timeout \(timeout), then the stop (a second SIGTERM stops now)"
        )
        let cutShort = await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                await stops.wait(for: 2)
                return true
            }
            group.addTask {
                try? await Task.sleep(for: timeout.duration)
                return false
            }
            let first = await group.next() ?? false
            group.cancelAll()
            return first
        }
        if cutShort { logger.notice("draining: ended early by a second stop request") }
    }

    /// STOPPING=1, close_notify to every session, sockets closed, within `shutdown_timeout`.
    private func stop(_ server: ListenerSet, endpoints: HTTPEndpoints, progress: LoopProgress) async {
        notifier.stopping()
        logger.info("stopping: sending close_notify to every session")
        let timeout = server.configuration.daemon.shutdownTimeout
        let finished = await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                await server.closeListeners()
                await endpoints.close()
                // Before the loops shut down: cancelling a repeated task schedules on its loop.
                progress.stop()
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
