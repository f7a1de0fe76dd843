/// The `[cluster]` table: instances behind one balancer that hand each other
/// the records of sessions they do not hold (see docs/routing.md, "Several
/// instances").
///
/// A client whose address changed may reach another instance than the one
/// holding its session; its connection ID's first byte (`[daemon] node_id`)
/// names the owner, and the receiving instance forwards the datagram there
/// over the cluster port, authenticated with the shared secret.
public struct ClusterConfiguration: Sendable, Equatable {
    /// `listen`: the UDP address this instance receives cluster messages on.
    public var listen: EndpointAddress
    /// `peers` (and `peers_file`): the other instances, by node id.
    public var peers: [ClusterPeer]
    /// `peers_file`: absolute path of a file of `NODE_ID ADDRESS` lines, re-read on every reload.
    public var peersFile: String?
    /// `secret_file`: absolute path of the secret every instance shares (at least 16 bytes).
    public var secretFile: String
    /// What the loader read from `secret_file`.
    public var secret: [UInt8]

    public init(
        listen: EndpointAddress, peers: [ClusterPeer], peersFile: String?, secretFile: String, secret: [UInt8]
    ) {
        self.listen = listen
        self.peers = peers
        self.peersFile = peersFile
        self.secretFile = secretFile
        self.secret = secret
    }
}

/// Another instance of the cluster.
public struct ClusterPeer: Sendable, Equatable {
    /// Its `[daemon] node_id`: the first byte of the connection IDs it issues.
    public var nodeID: Int
    /// Its cluster `listen` address.
    public var address: EndpointAddress

    public init(nodeID: Int, address: EndpointAddress) {
        self.nodeID = nodeID
        self.address = address
    }
}
