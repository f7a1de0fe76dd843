import NIOCore

/// What a completed handshake says about the client, as routes match it.
public struct HandshakeFacts: Sendable, Equatable {
    /// The SNI host name the client sent, lower-cased; nil without SNI.
    public var serverName: String?
    /// The PSK identity of a PSK handshake.
    public var pskIdentity: String?
    /// The names of a verified client certificate.
    public var certificate: CertificateIdentity?

    public init(serverName: String? = nil, pskIdentity: String? = nil, certificate: CertificateIdentity? = nil) {
        self.serverName = serverName
        self.pskIdentity = pskIdentity
        self.certificate = certificate
    }

    /// ` server_name=... psk_identity=...` for the refusal line.
    var summary: String {
        var parts: [String] = []
        parts.append("server_name=\(serverName.map(LogValue.quote) ?? "none")")
        if let pskIdentity { parts.append("psk_identity=\(LogValue.quote(pskIdentity))") }
        if let certificate { parts.append("certificate \(certificate.summary)") }
        return parts.joined(separator: " ")
    }
}

extension RouteConfiguration {
    /// Whether every match key this route sets admits `facts`.
    public func matches(_ facts: HandshakeFacts) -> Bool {
        if !serverNames.isEmpty {
            guard let name = facts.serverName,
                serverNames.contains(where: { ClientIdentityPolicy.dnsEntry($0, matches: name) })
            else { return false }
        }
        if !pskIdentities.isEmpty {
            guard let identity = facts.pskIdentity, pskIdentities.contains(identity) else { return false }
        }
        if !clientIdentities.isEmpty {
            guard let certificate = facts.certificate,
                clientIdentities.contains(where: { Self.identity($0, matches: certificate) })
            else { return false }
        }
        return true
    }

    /// `client_identity` entries name a certificate by its CN, a SAN dNSName or a SAN URI.
    static func identity(_ entry: String, matches certificate: CertificateIdentity) -> Bool {
        certificate.commonName == entry
            || certificate.dnsNames.contains { ClientIdentityPolicy.dnsEntry(entry, matches: $0) }
            || certificate.uris.contains { ClientIdentityPolicy.uriEntry(entry, matches: $0) }
    }
}

/// A route ready to serve: its backends resolved and their health tracked.
public struct ResolvedRoute: Sendable {
    /// The route's name; `default` for the listener's own backend.
    public let name: String
    public let pool: BackendPool
    public let proxyProtocol: ProxyProtocolSetting
}

/// A listener's routes in file order, then its default route.
///
/// Built once per configuration (start or reload) and shared by every event
/// loop; the backends' health lives in the pools, so it too is shared.
public final class RouteTable: Sendable {
    public let routes: [(configuration: RouteConfiguration, route: ResolvedRoute)]
    public let fallback: ResolvedRoute?

    public init(routes: [(configuration: RouteConfiguration, route: ResolvedRoute)], fallback: ResolvedRoute?) {
        self.routes = routes
        self.fallback = fallback
    }

    /// Resolves every backend of `listener`'s routes (names through the resolver).
    public static func resolve(
        _ listener: ListenerConfiguration, resolve: (EndpointAddress) throws -> SocketAddress
    ) throws -> RouteTable {
        let backoff = TimeAmount.nanoseconds(listener.backendBackoff.nanoseconds)
        func build(_ name: String, _ target: BackendTarget) throws -> ResolvedRoute {
            let pool = BackendPool(
                addresses: try target.backends.map(resolve), endpoints: target.backends, balance: target.balance,
                backoff: backoff)
            return ResolvedRoute(name: name, pool: pool, proxyProtocol: target.proxyProtocol)
        }
        let routes = try listener.routes.map { ($0, try build($0.name, $0.target)) }
        return RouteTable(routes: routes, fallback: try listener.defaultTarget.map { try build("default", $0) })
    }

    /// The first route that matches, else the default; nil when the client must be refused.
    public func select(_ facts: HandshakeFacts) -> ResolvedRoute? {
        routes.first { $0.configuration.matches(facts) }?.route ?? fallback
    }

    /// `default -> 127.0.0.1:5683; a -> [..] (hash)` for the startup line.
    public var summary: String {
        var parts = routes.map { "\($0.route.name) -> \(Self.describe($0.route))" }
        if let fallback { parts.append("default -> \(Self.describe(fallback))") }
        return parts.joined(separator: "; ")
    }

    private static func describe(_ route: ResolvedRoute) -> String {
        let target = BackendTarget(
            backends: route.pool.endpoints, balance: route.pool.balance, proxyProtocol: route.proxyProtocol)
        return target.description + (route.proxyProtocol == .v2 ? " proxy_protocol=v2" : "")
    }
}
