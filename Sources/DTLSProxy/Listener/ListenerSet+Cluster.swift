import NIOCore

/// The cluster link's place in the listener set: started with the daemon,
/// its peers and secret changed by a reload, its `listen` fixed until restart.
extension ListenerSet {
    /// Binds `[cluster] listen` and points the link at the listeners' routers.
    func startCluster(_ configuration: ProxyConfiguration) async throws {
        guard let cluster = configuration.cluster else { return }
        let link = try await ClusterLink.start(
            cluster, nodeID: configuration.daemon.nodeID, on: loops[0], metrics: metrics, logger: logger)
        link.setListeners { [weak self] name in self?.routers(of: name) ?? [] }
        clusterLink.withLockedValue { $0 = link }
    }

    /// The routers of the listener named `name`, for messages from other instances.
    func routers(of name: String) -> [NIOLoopBound<ListenerRouter>] {
        currentListeners.first { $0.runtime.name == name }?.sockets.routers ?? []
    }

    /// The link new runtimes use and the peers a reload gives it; refuses a
    /// reload that adds, removes or moves `[cluster]` (that needs a restart:
    /// the link's socket is bound once).
    func checkCluster(
        _ configuration: ProxyConfiguration
    ) throws -> (link: ClusterLink?, peers: [UInt8: SocketAddress]?) {
        let link = clusterLink.withLockedValue { $0 }
        let running = self.configuration.cluster
        guard (configuration.cluster == nil) == (link == nil),
            configuration.cluster?.listen == running?.listen
        else {
            throw ConfigurationError(
                file: configuration.sourcePath, key: "cluster.listen",
                cause: "adding, removing or moving [cluster] takes effect at restart; the running link stays")
        }
        guard let cluster = configuration.cluster else { return (nil, nil) }
        return (link, try ClusterLink.resolve(cluster.peers))
    }
}
