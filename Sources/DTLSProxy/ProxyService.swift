import Logging
import ServiceLifecycle
import UnixSignals

/// The daemon as a swift-service-lifecycle service: start the data plane,
/// tell systemd it is ready, serve until a graceful shutdown is asked for
/// (SIGTERM, SIGINT), then close every session with close_notify and stop.
public struct ProxyService: Service {
    private let configuration: ProxyConfiguration
    private let logger: Logger
    private let notifier = SystemdNotifier()

    public init(configuration: ProxyConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    public func run() async throws {
        // Trap before anything is bound: a SIGHUP or SIGUSR1 that arrives just
        // after READY=1 must not meet the default action, which is to exit.
        let signals = await UnixSignalsSequence(trapping: .sigusr1, .sighup)
        let server = try await ProxyServer.start(configuration: configuration, logger: logger)
        let listeners = server.runtimes.count
        logger.info("ready: \(listeners) listener(s)")
        notifier.ready(status: "serving \(listeners) listener(s)")

        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                for await signal in signals {
                    if signal == .sigusr1 {
                        await logStats(server)
                    } else {
                        logger.warning("SIGHUP: configuration reload is not supported by this version; the running configuration stays")
                    }
                }
            }
            try? await gracefulShutdown()
            group.cancelAll()
        }

        notifier.stopping()
        logger.info("stopping: sending close_notify to every session")
        let timeout = configuration.daemon.shutdownTimeout
        let finished = await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                await server.stop()
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
        logger.info("stopped")
    }

    private func logStats(_ server: ProxyServer) async {
        let counts = await server.sessionCounts()
        for runtime in server.runtimes {
            logger.info("\(runtime.stats.logLine)")
        }
        logger.info("sessions per event loop: \(counts.map(String.init).joined(separator: ","))")
    }
}
