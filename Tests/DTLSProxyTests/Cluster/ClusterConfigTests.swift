import Testing

@testable import DTLSProxy

@Suite("Configuration: [cluster]")
struct ClusterConfigTests {
    private func folder() throws -> ConfigTestFolder {
        let folder = try ConfigTestFolder.withCredentials()
        try folder.write("cluster.secret", "0123456789abcdef0123456789abcdef")
        try folder.setMode("cluster.secret", 0o600)
        return folder
    }

    private let header = "[daemon]\nnode_id = 1\n" + minimalListener + "\n"

    @Test func peersInlineAndFromAFileAreRead() throws {
        let folder = try folder()
        try folder.write("peers.txt", "# node address\n3 127.0.0.1:7003\n\n4 [::1]:7004  # the fourth\n")
        let config = try folder.parse(
            header + """
                [cluster]
                listen = "127.0.0.1:7001"
                secret_file = "cluster.secret"
                peers = [{ node_id = 2, address = "127.0.0.1:7002" }]
                peers_file = "peers.txt"
                """)
        let cluster = try #require(config.cluster)
        #expect(cluster.listen.description == "127.0.0.1:7001")
        #expect(cluster.peers.map(\.nodeID) == [2, 3, 4])
        #expect(cluster.peers.map(\.address.description) == ["127.0.0.1:7002", "127.0.0.1:7003", "[::1]:7004"])
        #expect(cluster.secret == Array("0123456789abcdef0123456789abcdef".utf8))
        #expect(
            config.namedFiles.contains(cluster.secretFile) && config.namedFiles.contains(folder.path + "/peers.txt"))
    }

    @Test(arguments: [
        (
            "listen = \"127.0.0.1:7001\"\npeers = [{ node_id = 2, address = \"127.0.0.1:7002\" }]",
            "cluster.secret_file",
            "required"
        ),
        (
            "secret_file = \"cluster.secret\"\npeers = [{ node_id = 2, address = \"127.0.0.1:7002\" }]",
            "cluster.listen",
            "required"
        ),
        ("listen = \"127.0.0.1:7001\"\nsecret_file = \"cluster.secret\"", "cluster.peers", "at least one peer"),
        (
            "listen = \"127.0.0.1:7001\"\nsecret_file = \"cluster.secret\"\npeers = [{ node_id = 1, address = \"127.0.0.1:7002\" }]",
            "cluster.peers", "this instance's own"
        ),
        (
            "listen = \"127.0.0.1:7001\"\nsecret_file = \"cluster.secret\"\npeers = [{ node_id = 2, address = \"a:1\" }, { node_id = 2, address = \"b:2\" }]",
            "cluster.peers", "listed twice"
        ),
        (
            "listen = \"127.0.0.1:7001\"\nsecret_file = \"cluster.secret\"\npeers = [{ node_id = 300, address = \"a:1\" }]",
            "cluster.peers[0].node_id", "between 0 and 255"
        ),
        (
            "listen = \"127.0.0.1:7001\"\nsecret_file = \"short.secret\"\npeers = [{ node_id = 2, address = \"a:1\" }]",
            "cluster.secret_file", "at least 16"
        ),
        (
            "listen = \"127.0.0.1:7001\"\nsecret_file = \"cluster.secret\"\npeers_file = \"bad-peers.txt\"",
            "cluster.peers_file", "line 1"
        ),
        ("listen = \"127.0.0.1:7001\"\nsecret_file = \"cluster.secret\"\npeer = []", "cluster.peer", "unknown key"),
    ])
    func mistakesNameTheKeyAndTheCause(body: String, key: String, cause: String) throws {
        let folder = try folder()
        try folder.write("short.secret", "too short")
        try folder.write("bad-peers.txt", "two 127.0.0.1:7002\n")
        let error = try #require(folder.error(header + "[cluster]\n" + body))
        #expect(error.key == key, "\(error)")
        #expect(error.cause.contains(cause), "\(error)")
        #expect(error.file == folder.configPath)
    }
}
