import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// The cluster row: what forwarding a session's datagrams between two
/// instances costs, against the same session served directly.
///
/// Two daemons (node 1 and node 2) share a cluster secret; the daemon's own
/// connector, offering connection IDs, tunnels 16 plaintext clients to node 1
/// through the lean relay. First measured as is (direct), then the relay gives
/// every flow a new source port towards node 2 (as a balancer that hashed the
/// new 5-tuples to another instance), so every datagram crosses the cluster
/// link to node 1 and every reply comes back through node 2.
struct ClusterResult: Codable {
    /// Echoes per second, 16 sessions × window 8, 1200 B, through the tunnel, each path.
    var directEchoesPerSecond, forwardedEchoesPerSecond: Double
    /// CPU seconds per million datagrams (one echo is two): of node 1 alone (direct);
    /// of node 1 and node 2 together (forwarded); and of that, the receiving node's part.
    var directCPU, forwardedCPU, receivingNodeCPU: Double
}

extension BenchRunner {
    func measureCluster(backend: Endpoint) throws -> ClusterResult {
        let secret = "\(paths.work)/cluster.secret"
        try Data("the benchmark's cluster secret, 32 bytes".utf8).write(to: URL(fileURLWithPath: secret))
        chmod(secret, 0o600)
        let listen = [Endpoint(port: Endpoint.freePort()), Endpoint(port: Endpoint.freePort())]
        let cluster = [Endpoint(port: Endpoint.freePort()), Endpoint(port: Endpoint.freePort())]
        var nodes: [Child] = []
        defer { nodes.forEach { $0.stop(grace: 8) } }
        for index in 0..<2 {
            let config = "\(paths.work)/cluster-node\(index + 1).toml"
            let text = """
                [daemon]
                log_level = "info"
                workers = 1
                node_id = \(index + 1)

                [cluster]
                listen = "\(cluster[index])"
                secret_file = "\(secret)"
                peers = [{ node_id = \(2 - index), address = "\(cluster[1 - index])" }]

                [[listener]]
                name = "bench"
                listen = "\(listen[index])"
                backend = "\(backend)"
                certificate = "\(paths.certificate)"
                private_key = "\(paths.key)"
                idle_timeout = "600s"
                handshake_rate_per_source = 0

                """
            try text.write(toFile: config, atomically: true, encoding: .utf8)
            let node = try Child(
                name: "cluster-node\(index + 1)", executable: "\(paths.binaries)/dtls-proxyd",
                arguments: ["--config", config], logDirectory: paths.work)
            nodes.append(node)
            try node.waitForLog("ready:", seconds: 15)
        }
        let relayEndpoint = Endpoint(port: Endpoint.freePort())
        let relay = try Child(
            name: "cluster-relay", executable: "/proc/self/exe",
            arguments: [
                "relay", "--listen", "\(relayEndpoint)", "--backend", "\(listen[0])", "--switch-to", "\(listen[1])",
            ],
            logDirectory: paths.work)
        defer { relay.stop() }
        try relay.waitForLog("listening", seconds: 10)
        let tunnelEndpoint = Endpoint(port: Endpoint.freePort())
        let tunnelConfig = "\(paths.work)/cluster-tunnel.toml"
        try """
        [daemon]
        log_level = "info"
        workers = 1

        [[connector]]
        name = "tunnel"
        listen = "\(tunnelEndpoint)"
        server = "\(relayEndpoint)"
        server_ca = "\(paths.certificate)"
        server_name = "localhost"
        connection_id = true
        idle_timeout = "600s"

        """.write(toFile: tunnelConfig, atomically: true, encoding: .utf8)
        let tunnel = try Child(
            name: "cluster-tunnel", executable: "\(paths.binaries)/dtls-proxyd", arguments: ["--config", tunnelConfig],
            logDirectory: paths.work)
        defer { tunnel.stop(grace: 8) }
        try tunnel.waitForLog("ready:", seconds: 15)

        let clients: [EchoClient] = try (0..<16).map { _ in try PlainClient(target: tunnelEndpoint) }
        defer { clients.forEach { $0.close() } }
        // Every client's session is made on node 1 by its first echoes.
        _ = LoadGenerator.throughput(clients: clients, window: 1, payload: payload, warmup: 0, seconds: 1)
        let (direct, directCPU) = nodes[0].measuringCPU {
            LoadGenerator.throughput(
                clients: clients, window: Self.window, payload: payload, warmup: 0.3, seconds: seconds)
        }
        kill(relay.pid, SIGUSR1)
        usleep(200_000)
        let cpuBefore = (nodes[0].cpuSeconds, nodes[1].cpuSeconds)
        let forwarded = LoadGenerator.throughput(
            clients: clients, window: Self.window, payload: payload, warmup: 0.3, seconds: seconds)
        let owner = nodes[0].cpuSeconds - cpuBefore.0
        let receiver = nodes[1].cpuSeconds - cpuBefore.1
        let forwardedLines =
            try String(contentsOfFile: nodes[0].logPath, encoding: .utf8)
            .components(separatedBy: "session moved peer=").count - 1
        if forwardedLines < 16 {
            notes.append("cluster: only \(forwardedLines) of 16 sessions moved to the forwarded path")
        }
        return ClusterResult(
            directEchoesPerSecond: direct.echoesPerSecond, forwardedEchoesPerSecond: forwarded.echoesPerSecond,
            directCPU: direct.cpuSecondsPerMillionDatagrams(cpuSeconds: directCPU),
            forwardedCPU: forwarded.cpuSecondsPerMillionDatagrams(cpuSeconds: owner + receiver),
            receivingNodeCPU: forwarded.cpuSecondsPerMillionDatagrams(cpuSeconds: receiver))
    }
}
