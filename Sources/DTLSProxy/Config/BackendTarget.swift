/// Where a route (or a listener's default route) sends plaintext: one backend
/// or a pool of them, how clients are spread over a pool, and whether each
/// datagram carries a PROXY protocol header.
public struct BackendTarget: Sendable, Equatable {
    /// `backend` (one address) or `backends` (a pool); never empty, no duplicates.
    public var backends: [EndpointAddress]
    /// `balance`: how a pool spreads new sessions. Irrelevant for one backend.
    public var balance: BalanceMode
    /// `proxy_protocol`: prefix every datagram to the backend with a PROXY v2 header.
    public var proxyProtocol: ProxyProtocolSetting

    public init(backends: [EndpointAddress], balance: BalanceMode = .hash, proxyProtocol: ProxyProtocolSetting = .none)
    {
        self.backends = backends
        self.balance = balance
        self.proxyProtocol = proxyProtocol
    }

    /// `127.0.0.1:6001` or `[127.0.0.1:6001, 127.0.0.1:6002] (hash)`, for log lines.
    public var description: String {
        guard backends.count > 1 else { return backends.first?.description ?? "none" }
        return "[\(backends.map(\.description).joined(separator: ", "))] (\(balance.rawValue))"
    }
}

/// The values `balance` accepts.
public enum BalanceMode: String, Sendable, Equatable, CaseIterable {
    /// Rendezvous (highest random weight) hashing of the client's address and
    /// port: a client lands on the same healthy backend every time, and taking
    /// one backend away moves only the clients it had.
    case hash
    /// Each new session goes to the next healthy backend in turn.
    case roundRobin = "round_robin"
}

/// The values `proxy_protocol` accepts.
public enum ProxyProtocolSetting: String, Sendable, Equatable, CaseIterable {
    /// Plain datagrams.
    case none
    /// Every datagram to the backend starts with a PROXY protocol version 2
    /// header (command PROXY, transport DGRAM).
    case v2
}
