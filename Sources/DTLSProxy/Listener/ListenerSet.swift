import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// A failure to start that is not a configuration error (exit code 1).
public struct StartupError: Error, CustomStringConvertible, Sendable {
    public var description: String
}

/// The running daemon's data plane: the event loops, every listener's
/// sockets and their routers, and the configuration they serve.
///
/// Each listener binds one socket per event loop on the same port with
/// SO_REUSEPORT, so the kernel spreads peers over the loops and a peer always
/// lands on the same one; its sessions and their backend sockets stay there.
///
/// Starting and reloading are the same two steps: ``prepare(_:)`` builds every
/// DTLS context and binds every new socket without touching what serves now,
/// and ``commit(_:)`` swaps it in. A reload that fails in `prepare` changes nothing.
public final class ListenerSet: Sendable {
    /// Every event loop, in order; their number is fixed for the life of the process.
    public let loops: [EventLoop]
    let metrics: DaemonMetrics
    /// The `[[connector]]` sockets and sessions (client mode), prepared and committed with the listeners.
    let connectors = ConnectorSet()
    /// `dtlsproxy_backend_up`, set before every scrape.
    let backendHealth: BackendHealthMetrics
    /// The link to the other instances, with `[cluster]`; started with the daemon.
    let clusterLink = NIOLockedValueBox<ClusterLink?>(nil)
    private let group: MultiThreadedEventLoopGroup
    private let activation: SocketActivation
    let logger: Logger
    private let state: NIOLockedValueBox<State>

    private struct State {
        var configuration: ProxyConfiguration
        var cookieSecret: [UInt8]
        var listeners: [ListenerSockets] = []
        /// Counters by listener name, kept across reloads (and across removal and re-adding).
        var stats: [String: ListenerStats] = [:]
        /// Round-robin position for passed sockets, each served on one loop.
        var nextLoop = 0
    }

    /// Builds every listener's DTLS context (loading credentials), resolves
    /// addresses and binds (or adopts) every socket. Throws `ConfigurationError`
    /// for bad credentials or passed sockets matching no listener, `StartupError`
    /// for anything else; nothing is left bound on failure.
    public static func start(
        configuration: ProxyConfiguration, logger: Logger, activation: SocketActivation = .none,
        metrics: DaemonMetrics = DaemonMetrics()
    ) async throws -> ListenerSet {
        let workers = configuration.daemon.workers == 0 ? System.coreCount : configuration.daemon.workers
        let group = MultiThreadedEventLoopGroup(numberOfThreads: workers)
        let server = ListenerSet(
            group: group, configuration: configuration, activation: activation, metrics: metrics, logger: logger)
        do {
            try await server.startCluster(configuration)
            let plan = try await server.prepare(configuration)
            _ = await server.commit(plan)
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
        return server
    }

    private init(
        group: MultiThreadedEventLoopGroup, configuration: ProxyConfiguration, activation: SocketActivation,
        metrics: DaemonMetrics, logger: Logger
    ) {
        self.group = group
        self.loops = Array(group.makeIterator())
        self.activation = activation
        self.metrics = metrics
        self.backendHealth = BackendHealthMetrics(metrics: metrics)
        self.logger = logger
        self.state = NIOLockedValueBox(State(configuration: configuration, cookieSecret: []))
    }

    /// The listeners serving now.
    var currentListeners: [ListenerSockets] { state.withLockedValue { $0.listeners } }

    /// The configuration being served.
    public var configuration: ProxyConfiguration { state.withLockedValue { $0.configuration } }

    /// Every listener's counters since start, including listeners a reload removed.
    var allStats: [ListenerStats] { state.withLockedValue { Array($0.stats.values) } }

    /// The runtimes new handshakes use, in configuration order.
    public var runtimes: [ListenerRuntime] { state.withLockedValue { $0.listeners.map(\.runtime) } }

    // MARK: - Prepare and commit

    /// What a reload (or the start) will change, with every new socket already bound.
    struct Plan: Sendable {
        var configuration: ProxyConfiguration
        var cookieSecret: [UInt8]
        /// Listeners in the new configuration's order: kept ones with their new runtime, and new ones.
        var listeners: [(sockets: ListenerSockets, runtime: ListenerRuntime, kept: Bool)]
        var removed: [ListenerSockets]
        var stats: [String: ListenerStats]
        var connectors: ConnectorSet.Plan
        /// The cluster's peers, resolved, for the link that stays.
        var clusterPeers: [UInt8: SocketAddress]?
    }

    /// Validates `configuration` completely and binds what it adds, touching nothing that serves.
    func prepare(_ configuration: ProxyConfiguration) async throws -> Plan {
        try activation.checkNames(against: configuration.listeners, configFile: configuration.sourcePath)
        let cluster = try checkCluster(configuration)
        // Without a file, the random secret of this run stays across reloads.
        let cookieSecret =
            configuration.daemon.cookieSecret
            ?? state.withLockedValue { $0.cookieSecret.isEmpty ? nil : $0.cookieSecret }
            ?? CookieVerifier.randomSecret()
        let (existing, knownStats) = state.withLockedValue { ($0.listeners, $0.stats) }
        var stats = knownStats
        var prepared: [(runtime: ListenerRuntime, key: SocketKey)] = []
        for listener in configuration.listeners {
            let context = try DTLSServerContext(
                listener: listener, configFile: configuration.sourcePath,
                connectionID: try ConnectionIDPolicy.listener(listener, nodeID: configuration.daemon.nodeID))
            let routes = try RouteTable.resolve(listener) {
                try $0.resolved(for: "listener \"\(listener.name)\"", key: "backend")
            }
            let listenerStats = stats[listener.name] ?? ListenerStats(listenerName: listener.name, metrics: metrics)
            stats[listener.name] = listenerStats
            let runtime = ListenerRuntime(
                configuration: listener, context: context, routes: routes, logger: logger, stats: listenerStats,
                nodeID: configuration.daemon.nodeID, cluster: cluster.link,
                busyPoll: configuration.daemon.busyPoll)
            let key: SocketKey =
                activation.sockets(named: listener.name).isEmpty
                ? .address(try listener.listen.resolved(for: "listener \"\(listener.name)\"", key: "listen"))
                : .passed(name: listener.name)
            prepared.append((runtime, key))
        }
        var listeners: [(sockets: ListenerSockets, runtime: ListenerRuntime, kept: Bool)] = []
        do {
            for (runtime, key) in prepared {
                if let sockets = existing.first(where: { $0.key == key }),
                    !listeners.contains(where: { $0.sockets === sockets })
                {
                    listeners.append((sockets, runtime, true))
                    continue
                }
                let sockets = try await ListenerSockets.open(
                    runtime: runtime, key: key, passed: activation.sockets(named: runtime.name), loops: loops,
                    pickLoop: { self.nextLoopForPassedSocket() }, cookieSecret: cookieSecret)
                listeners.append((sockets, runtime, false))
            }
        } catch {
            await abandon(listeners.filter { !$0.kept }.map(\.sockets))
            throw error
        }
        let connectorPlan: ConnectorSet.Plan
        do {
            connectorPlan = try await connectors.prepare(configuration, loops: loops, metrics: metrics, logger: logger)
        } catch {
            await abandon(listeners.filter { !$0.kept }.map(\.sockets))
            throw error
        }
        let removed = existing.filter { old in !listeners.contains { $0.sockets === old } }
        return Plan(
            configuration: configuration, cookieSecret: cookieSecret, listeners: listeners, removed: removed,
            stats: stats, connectors: connectorPlan, clusterPeers: cluster.peers)
    }

    /// Closes sockets a failed `prepare` (or a failed reload step after it) opened.
    func abandon(_ plan: Plan) async {
        await abandon(plan.listeners.filter { !$0.kept }.map(\.sockets))
        await connectors.abandon(plan.connectors)
    }

    private func abandon(_ sockets: [ListenerSockets]) async {
        for listener in sockets {
            await listener.closeSessions(reason: .reload)
            await listener.closeSockets()
        }
    }

    /// Swaps the plan in: kept listeners take their new runtime (live sessions keep
    /// theirs), removed ones close their sessions with close_notify (reason `reload`)
    /// and their sockets. Returns a summary line for the log.
    func commit(_ plan: Plan) async -> String {
        if let peers = plan.clusterPeers, let cluster = plan.configuration.cluster {
            clusterLink.withLockedValue { $0 }?.update(peers: peers, secret: cluster.secret)
        }
        for listener in plan.listeners where listener.kept {
            await listener.sockets.update(runtime: listener.runtime, cookieSecret: plan.cookieSecret)
        }
        state.withLockedValue {
            $0.configuration = plan.configuration
            $0.cookieSecret = plan.cookieSecret
            $0.listeners = plan.listeners.map(\.sockets)
            $0.stats = plan.stats
        }
        for listener in plan.removed {
            logger.info("listener \(listener.runtime.name) removed: closing its sessions and \(listener.key)")
            await listener.closeSessions(reason: .reload)
            await listener.closeSockets()
        }
        for listener in plan.listeners where !listener.kept {
            let sockets = listener.sockets
            let how =
                sockets.key.isPassed
                ? "serving the socket systemd passed, \(sockets.localAddresses), on one event loop per socket (listen = \"\(listener.runtime.configuration.listen)\" is not used)"
                : "bound to \(sockets.localAddresses), \(sockets.channels.count) event loop(s)"
            logger.info("listener \(listener.runtime.name) \(how), routes: \(listener.runtime.routes.summary)")
        }
        let connectorSummary = await connectors.commit(plan.connectors, logger: logger)
        let kept = plan.listeners.filter(\.kept).count
        return
            "\(plan.listeners.count) listener(s): \(kept) kept, \(plan.listeners.count - kept) added, \(plan.removed.count) removed\(plan.connectors.entries.isEmpty && plan.connectors.removed.isEmpty ? "" : "; " + connectorSummary)"
    }

    private func nextLoopForPassedSocket() -> EventLoop {
        state.withLockedValue {
            let loop = loops[$0.nextLoop % loops.count]
            $0.nextLoop += 1
            return loop
        }
    }

    // MARK: - Running

    /// Sessions per router (event loop), over every listener.
    public func sessionCounts() async -> [Int] {
        var counts: [Int] = []
        for listener in state.withLockedValue({ $0.listeners }) {
            counts += await listener.sessionCounts()
        }
        return counts + (await connectors.sessionCounts())
    }

    /// Adds every loop's traffic tallies to the metrics; completes on `loop`.
    func flushTraffic(on loop: EventLoop) -> EventLoopFuture<Void> {
        let futures =
            state.withLockedValue { $0.listeners }.map { $0.flushTraffic(on: loop) } + [
                connectors.flushTraffic(on: loop)
            ]
        return EventLoopFuture.andAllComplete(futures, on: loop)
    }

    /// Graceful stop: stop admitting, close_notify to every session, close the sockets, stop the loops.
    public func stop() async {
        await closeListeners()
        await shutdownLoops()
    }

    /// Stops admitting, sends close_notify to every session and closes every listener socket.
    public func closeListeners() async {
        await clusterLink.withLockedValue { $0 }?.close()
        await connectors.closeAll(reason: .shutdown)
        let listeners = state.withLockedValue { $0.listeners }
        for listener in listeners {
            await listener.closeSessions(reason: .shutdown)
        }
        for listener in listeners {
            await listener.closeSockets()
        }
    }

    /// Ends the event loops. Anything else on them (metrics endpoint, watchdog
    /// check-ins) must be closed first: a loop that has shut down runs nothing more.
    public func shutdownLoops() async {
        try? await group.shutdownGracefully()
    }
}

extension SocketKey {
    var isPassed: Bool {
        if case .passed = self { return true }
        return false
    }
}
