import TOMLKit

/// The `[cluster]` table: where this instance listens for its peers, who they
/// are, and the secret that authenticates what they send each other.
extension ConfigurationLoader {
    static let clusterKeys = ["listen", "peers", "peers_file", "secret_file"]

    static func parseCluster(_ table: Table, nodeID: Int) throws(ConfigurationError) -> ClusterConfiguration {
        try table.rejectUnknownKeys(known: clusterKeys)
        guard let listenText = try table.string("listen"), !listenText.isEmpty else {
            throw table.error("listen", "required: the UDP address this instance receives its peers' datagrams on")
        }
        let listen = try table.address("listen", listenText)
        guard let secretFile = try table.path("secret_file") else {
            throw table.error("secret_file", "required: a file of at least 16 bytes that every instance shares")
        }
        let secret: [UInt8]
        switch ConfigFileAccess.read(secretFile, limit: 4096) {
        case .failure(let failure): throw table.error("secret_file", failure.cause(path: secretFile))
        case .success(let bytes) where bytes.count < 16:
            throw table.error(
                "secret_file", "\(secretFile) holds \(bytes.count) bytes; a cluster secret needs at least 16")
        case .success(let bytes): secret = bytes
        }
        var peers = try inlinePeers(table)
        let peersFile = try table.path("peers_file")
        if let peersFile { peers += try filePeers(peersFile, table: table) }
        guard !peers.isEmpty else { throw table.error("peers", "at least one peer is needed (peers or peers_file)") }
        var seen: Set<Int> = []
        for peer in peers {
            guard peer.nodeID != nodeID else {
                throw table.error("peers", "node_id \(peer.nodeID) is this instance's own ([daemon] node_id)")
            }
            guard seen.insert(peer.nodeID).inserted else {
                throw table.error("peers", "node_id \(peer.nodeID) is listed twice")
            }
        }
        return ClusterConfiguration(
            listen: listen, peers: peers, peersFile: peersFile, secretFile: secretFile, secret: secret)
    }

    /// `peers = [{ node_id = 2, address = "10.0.0.2:7000" }, …]`.
    private static func inlinePeers(_ table: Table) throws(ConfigurationError) -> [ClusterPeer] {
        guard let value = table.table["peers"] else { return [] }
        guard let array = value.array else { throw table.typeError("peers", expected: .array, found: value) }
        var peers: [ClusterPeer] = []
        for (index, element) in array.enumerated() {
            let key = "peers[\(index)]"
            guard let entry = element.table else {
                throw table.error(key, "expected a table { node_id = N, address = \"HOST:PORT\" }")
            }
            let peer = Table(entry, prefix: table.prefix + key + ".", context: table.context)
            try peer.rejectUnknownKeys(known: ["node_id", "address"])
            guard let nodeID = try peer.int("node_id", in: 0...255) else { throw peer.error("node_id", "required") }
            guard let text = try peer.string("address"), !text.isEmpty else { throw peer.error("address", "required") }
            peers.append(ClusterPeer(nodeID: nodeID, address: try peer.address("address", text)))
        }
        return peers
    }

    /// A `peers_file`: one `NODE_ID ADDRESS` per line; `#` starts a comment.
    private static func filePeers(_ path: String, table: Table) throws(ConfigurationError) -> [ClusterPeer] {
        let bytes: [UInt8]
        switch ConfigFileAccess.read(path) {
        case .failure(let failure): throw table.error("peers_file", failure.cause(path: path))
        case .success(let read): bytes = read
        }
        var peers: [ClusterPeer] = []
        for (number, rawLine) in String(decoding: bytes, as: UTF8.self).split(
            separator: "\n", omittingEmptySubsequences: false
        ).enumerated() {
            let line = rawLine.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard !fields.isEmpty else { continue }
            let place = "\(path) line \(number + 1)"
            guard fields.count == 2, let nodeID = Int(fields[0]), (0...255).contains(nodeID) else {
                throw table.error("peers_file", "\(place): expected NODE_ID (0 to 255) and ADDRESS, found \"\(line)\"")
            }
            do {
                peers.append(ClusterPeer(nodeID: nodeID, address: try EndpointAddress(parsing: String(fields[1]))))
            } catch {
                throw table.error("peers_file", "\(place): invalid address \"\(fields[1])\": \(error)")
            }
        }
        return peers
    }
}
