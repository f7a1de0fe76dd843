/// One `[[listener.route]]` block: which clients it takes and where they go.
///
/// A route matches when every match key it sets matches (a key holding a
/// list matches when any entry does). Routes are tried in file order when a
/// handshake completes; the first that matches wins, and a client that
/// matches none goes to the listener's own `backend`/`backends`, the default
/// route, or is refused when the listener has none.
public struct RouteConfiguration: Sendable, Equatable {
    /// Position within its listener, for error messages (`listener[0].route[1]`).
    public var index: Int
    /// `name`: shown in log lines; defaults to `route<index>`.
    public var name: String
    /// `server_name`: SNI host names, exact or `*.example.com` (one more label).
    public var serverNames: [String] = []
    /// `psk_identity`: PSK identities from the listener's `psk_file`.
    public var pskIdentities: [String] = []
    /// `client_identity`: a verified client certificate's subject CN, SAN
    /// dNSName (`*.` wildcards allowed) or SAN URI (a final `/*` allowed).
    public var clientIdentities: [String] = []
    /// Where the route's clients go.
    public var target: BackendTarget
    /// `certificate`: the chain served to clients whose SNI matches `server_name`.
    public var certificate: String? = nil
    /// `private_key`: the key of `certificate`.
    public var privateKey: String? = nil

    public init(index: Int, name: String, target: BackendTarget) {
        self.index = index
        self.name = name
        self.target = target
    }

    /// The key path used in error messages, e.g. `listener[0].route[1].server_name`.
    public func keyPath(listener: Int, _ key: String) -> String { "listener[\(listener)].route[\(index)].\(key)" }
}
