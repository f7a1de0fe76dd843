import ArgumentParser
import DTLSProxy
import Foundation
import Logging
import ServiceLifecycle

/// The command line: run, `--check-config`, `--version`. Process lifecycle only;
/// everything else lives in the DTLSProxy library.
@main
struct DTLSProxyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dtls-proxyd",
        abstract: "Terminates DTLS on UDP ports and forwards the datagrams to plaintext UDP services.",
        version: DaemonVersion.string
    )

    @Option(name: .long, help: "The configuration file.")
    var config: String = "/etc/dtls-proxy/dtls-proxy.toml"

    @Flag(name: .long, help: "Validate the configuration and every file it names, then exit.")
    var checkConfig = false

    /// EX_CONFIG from sysexits.h: systemd's RestartPreventExitStatus keys on it.
    static let configurationExitCode: Int32 = 78

    func run() async throws {
        // A closed stderr or stdout pipe must give EPIPE, not kill the daemon.
        LogWriter.ignoreBrokenPipe()
        defer { LogWriter.standardError.flush() }
        let configuration: ProxyConfiguration
        do {
            // `--config credential:NAME` reads the file systemd's LoadCredential= passed.
            var path = config
            if CredentialPath.isCredential(config) {
                path = try CredentialPath.resolve(config, relativeTo: "/").mapError {
                    ConfigurationError(file: config, key: "", cause: $0.description)
                }.get()
            }
            configuration = try ConfigurationLoader.load(path: path)
            if checkConfig {
                for listener in configuration.listeners {
                    _ = try DTLSServerContext(listener: listener, configFile: configuration.sourcePath)
                }
                for connector in configuration.connectors {
                    _ = try DTLSClientContext(connector: connector, configFile: configuration.sourcePath)
                }
            }
        } catch {
            Self.fail(error.description, code: Self.configurationExitCode)
        }
        if checkConfig {
            print(
                "configuration OK: \(configuration.sourcePath) (\(configuration.listeners.count) listener(s), \(configuration.connectors.count) connector(s))"
            )
            return
        }

        let activation: SocketActivation
        do {
            activation = try SocketActivation.fromEnvironment(configFile: configuration.sourcePath)
            try activation.checkNames(against: configuration.listeners, configFile: configuration.sourcePath)
        } catch {
            Self.fail(error.description, code: Self.configurationExitCode)
        }

        // One level for every logger, changed by a reload.
        let level = LogLevelControl(configuration.daemon.logLevel.loggerLevel)
        LoggingSystem.bootstrap { _ in DaemonLogHandler(control: level) }
        let logger = Logger(label: "dtls-proxyd")
        // The lifecycle library's own debug lines print whole configurations; keep them out.
        var lifecycleLogger = Logger(label: "dtls-proxyd.lifecycle")
        lifecycleLogger.logLevel = .notice
        let service = ProxyService(
            configuration: configuration, logger: logger, logLevel: level, activation: activation)
        // No gracefulShutdownSignals: ProxyService traps SIGTERM and SIGINT itself,
        // because a second one during the drain must end it, and the group acts on
        // the first only. The service returns when it has stopped, which ends the group.
        let group = ServiceGroup(
            configuration: .init(
                services: [.init(service: service, successTerminationBehavior: .gracefullyShutdownGroup)],
                gracefulShutdownSignals: [],
                logger: lifecycleLogger
            ))
        do {
            try await group.run()
        } catch let error as ConfigurationError {
            Self.fail(error.description, code: Self.configurationExitCode)
        } catch let error as StartupError {
            Self.fail(error.description, code: 1)
        } catch {
            Self.fail("\(error)", code: 1)
        }
    }

    /// One line on stderr, then exit: what systemd and scripts read.
    /// Queued log lines go first; a line stderr refuses is lost, but the exit code still says why.
    static func fail(_ message: String, code: Int32) -> Never {
        LogWriter.standardError.enqueue("dtls-proxyd: \(message)\n")
        LogWriter.standardError.flush()
        Foundation.exit(code)
    }
}
