import Logging
import NIOConcurrencyHelpers
import NIOCore

/// Every connector of the running daemon, with the same two-step life as
/// the listeners in ``ListenerSet``: ``prepare(_:loops:metrics:logger:)``
/// builds every DTLS context, resolves every server and binds every new
/// local socket without touching what serves; ``commit(_:)`` swaps it in.
///
/// A connector is the same across a reload when its `listen` address is:
/// its socket and live sessions stay, new sessions use the new settings.
final class ConnectorSet: Sendable {
    private let state = NIOLockedValueBox(State())

    private struct State {
        var sockets: [ConnectorSocket] = []
        /// Counters by connector name, kept across reloads.
        var stats: [String: ConnectorStats] = [:]
        var nextLoop = 0
    }

    /// What a reload (or the start) changes, new sockets already bound.
    struct Plan: Sendable {
        var entries: [(socket: ConnectorSocket, runtime: ConnectorRuntime, kept: Bool)]
        var removed: [ConnectorSocket]
        var stats: [String: ConnectorStats]
    }

    /// Every connector's counters since start, including removed ones.
    var allStats: [ConnectorStats] { state.withLockedValue { Array($0.stats.values) } }

    /// The runtimes new sessions use, in configuration order.
    var runtimes: [ConnectorRuntime] { state.withLockedValue { $0.sockets.map(\.runtime) } }

    func prepare(
        _ configuration: ProxyConfiguration, loops: [EventLoop], metrics: DaemonMetrics, logger: Logger
    ) async throws -> Plan {
        let (existing, knownStats) = state.withLockedValue { ($0.sockets, $0.stats) }
        var stats = knownStats
        var prepared: [(runtime: ConnectorRuntime, address: SocketAddress)] = []
        for connector in configuration.connectors {
            // A zero-length CID of its own: the server's records come back ordinary.
            let connectionID: ConnectionIDPolicy = connector.connectionID ? try .on() : .off
            let context = try DTLSClientContext(
                connector: connector, configFile: configuration.sourcePath, connectionID: connectionID)
            let server = try connector.server.resolved(for: "connector \"\(connector.name)\"", key: "server")
            let listen = try connector.listen.resolved(for: "connector \"\(connector.name)\"", key: "listen")
            let connectorStats =
                stats[connector.name] ?? ConnectorStats(connectorName: connector.name, metrics: metrics)
            stats[connector.name] = connectorStats
            prepared.append(
                (
                    ConnectorRuntime(
                        configuration: connector, context: context, serverAddress: server, logger: logger,
                        stats: connectorStats, busyPoll: configuration.daemon.busyPoll), listen
                ))
        }
        var entries: [(socket: ConnectorSocket, runtime: ConnectorRuntime, kept: Bool)] = []
        do {
            for (runtime, address) in prepared {
                if let socket = existing.first(where: { $0.address == address }) {
                    entries.append((socket, runtime, true))
                    continue
                }
                let loop = state.withLockedValue { state -> EventLoop in
                    defer { state.nextLoop += 1 }
                    return loops[state.nextLoop % loops.count]
                }
                entries.append(
                    (try await ConnectorSocket.open(runtime: runtime, address: address, on: loop), runtime, false))
            }
        } catch {
            for entry in entries where !entry.kept { await entry.socket.close() }
            throw error
        }
        let removed = existing.filter { old in !entries.contains { $0.socket === old } }
        return Plan(entries: entries, removed: removed, stats: stats)
    }

    /// Closes the sockets a plan opened that will not be committed.
    func abandon(_ plan: Plan) async {
        for entry in plan.entries where !entry.kept {
            await entry.socket.closeSessions(reason: .reload)
            await entry.socket.close()
        }
    }

    /// Swaps the plan in; removed connectors close their sessions (reason `reload`) and socket.
    func commit(_ plan: Plan, logger: Logger) async -> String {
        for entry in plan.entries where entry.kept {
            await entry.socket.update(runtime: entry.runtime)
        }
        state.withLockedValue {
            $0.sockets = plan.entries.map(\.socket)
            $0.stats = plan.stats
        }
        for socket in plan.removed {
            logger.info(
                "connector \(socket.runtime.name) removed: closing its sessions and \(socket.address.logDescription)")
            await socket.closeSessions(reason: .reload)
            await socket.close()
        }
        for entry in plan.entries where !entry.kept {
            logger.info(
                "connector \(entry.runtime.name) bound to \(entry.socket.channel.localAddress?.logDescription ?? entry.socket.address.logDescription), server \(entry.runtime.serverDescription)"
            )
        }
        let kept = plan.entries.filter(\.kept).count
        return
            "\(plan.entries.count) connector(s): \(kept) kept, \(plan.entries.count - kept) added, \(plan.removed.count) removed"
    }

    /// Graceful stop: close_notify on every session, then every local socket closed.
    func closeAll(reason: CloseReason) async {
        let sockets = state.withLockedValue { $0.sockets }
        for socket in sockets { await socket.closeSessions(reason: reason) }
        for socket in sockets { await socket.close() }
    }

    func sessionCounts() async -> [Int] {
        var counts: [Int] = []
        for socket in state.withLockedValue({ $0.sockets }) { counts.append(await socket.sessionCount()) }
        return counts
    }

    func flushTraffic(on loop: EventLoop) -> EventLoopFuture<Void> {
        let futures = state.withLockedValue { $0.sockets }.map { $0.flushTraffic() }
        return EventLoopFuture.andAllComplete(futures, on: loop)
    }
}
