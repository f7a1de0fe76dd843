import TOMLKit

/// The listener keys that say where clients go: `backend`/`backends` with
/// `balance` and `proxy_protocol` (the default route), and the
/// `[[listener.route]]` blocks that send some clients elsewhere.
extension ConfigurationLoader {
    static let targetKeys = ["backend", "backends", "balance", "proxy_protocol"]
    static let routingKeys = targetKeys + ["route", "backend_backoff", "proxy_protocol_tlvs"]
    static let routeKeys =
        targetKeys + ["name", "server_name", "psk_identity", "client_identity", "certificate", "private_key"]

    /// Fills in the default route, the routes and the pool settings of `listener`,
    /// whose credentials and security keys are already parsed.
    static func parseRouting(_ table: Table, into listener: inout ListenerConfiguration) throws(ConfigurationError) {
        listener.backendBackoff = try table.duration("backend_backoff", allowZero: false) ?? listener.backendBackoff
        listener.proxyProtocolTLVs = try table.bool("proxy_protocol_tlvs") ?? listener.proxyProtocolTLVs
        let proxyProtocol = try table.proxyProtocol() ?? .none
        listener.defaultTarget = try parseTarget(table, proxyProtocol: proxyProtocol)
        listener.routes = try parseRoutes(table, listener: listener, proxyProtocol: proxyProtocol)
        if listener.defaultTarget == nil, listener.routes.isEmpty {
            throw table.error(
                "backend",
                "missing: every listener needs a backend address, e.g. \"127.0.0.1:5683\" (or backends, or [[listener.route]] blocks)"
            )
        }
    }

    /// `backend` or `backends` (+ `balance`, `proxy_protocol`) of a listener or route; nil when neither is set.
    private static func parseTarget(
        _ table: Table, proxyProtocol inherited: ProxyProtocolSetting
    ) throws(ConfigurationError) -> BackendTarget? {
        let single = try table.string("backend").flatMap { $0.isEmpty ? nil : $0 }
        let pool = try table.entries("backends", problem: { $0.isEmpty ? "empty entry" : nil })
        let balanceText = try table.string("balance")
        if single != nil, table.table["backends"] != nil {
            throw table.error("backends", "set either backend (one address) or backends (a pool), not both")
        }
        if table.table["backends"] != nil, pool.isEmpty {
            throw table.error(
                "backends", "empty: list at least one address, e.g. [\"127.0.0.1:6001\", \"127.0.0.1:6002\"]")
        }
        var balance = BalanceMode.hash
        if let balanceText {
            guard let mode = BalanceMode(rawValue: balanceText) else {
                throw table.error("balance", "unknown mode \"\(balanceText)\" (use \"hash\" or \"round_robin\")")
            }
            guard table.table["backends"] != nil else {
                throw table.error("balance", "applies to a pool: set backends = [...]")
            }
            balance = mode
        }
        let proxyProtocol = try table.proxyProtocol() ?? inherited
        if let single {
            return BackendTarget(
                backends: [try table.address("backend", single)], balance: balance, proxyProtocol: proxyProtocol)
        }
        guard !pool.isEmpty else { return nil }
        var addresses: [EndpointAddress] = []
        for (index, text) in pool.enumerated() {
            let address = try table.address("backends[\(index)]", text)
            if addresses.contains(address) { throw table.error("backends[\(index)]", "\(address) is listed twice") }
            addresses.append(address)
        }
        return BackendTarget(backends: addresses, balance: balance, proxyProtocol: proxyProtocol)
    }

    private static func parseRoutes(
        _ table: Table, listener: ListenerConfiguration, proxyProtocol: ProxyProtocolSetting
    ) throws(ConfigurationError) -> [RouteConfiguration] {
        guard let value = table.table["route"] else { return [] }
        guard let array = value.array else {
            throw table.typeError(
                "route", expected: .array, found: value, hint: "write each route as a [[listener.route]] block")
        }
        var routes: [RouteConfiguration] = []
        for (index, element) in array.enumerated() {
            guard let routeTable = element.table else {
                throw table.error("route[\(index)]", "expected a table ([[listener.route]]), found \(found(element))")
            }
            let route = try parseRoute(
                Table(routeTable, prefix: "\(table.prefix)route[\(index)].", context: table.context),
                index: index, listener: listener, proxyProtocol: proxyProtocol)
            if let earlier = routes.first(where: { $0.sameMatch(as: route) }) {
                throw table.error(
                    "route[\(index)]",
                    "matches exactly the clients of route[\(earlier.index)] (\"\(earlier.name)\"), which comes first: it would never be chosen"
                )
            }
            if routes.contains(where: { $0.name == route.name }) {
                throw table.error("route[\(index)].name", "duplicate route name \"\(route.name)\"")
            }
            routes.append(route)
        }
        return routes
    }

    private static func parseRoute(
        _ table: Table, index: Int, listener: ListenerConfiguration, proxyProtocol: ProxyProtocolSetting
    ) throws(ConfigurationError) -> RouteConfiguration {
        try table.rejectUnknownKeys(known: routeKeys)
        guard let target = try parseTarget(table, proxyProtocol: proxyProtocol) else {
            throw table.error(
                "backend", "missing: every route needs a backend address, e.g. \"127.0.0.1:6001\" (or backends)")
        }
        let name = try table.string("name") ?? "route\(index)"
        if let problem = ClientIdentityPolicy.problem(cn: name) { throw table.error("name", problem) }
        var route = RouteConfiguration(index: index, name: name, target: target)
        route.serverNames = try table.stringOrEntries("server_name") { entry in
            ClientIdentityPolicy.problem(dns: entry)
        }.map { $0.lowercased() }
        route.pskIdentities = try table.stringOrEntries("psk_identity") { entry in
            guard let psk = listener.pskTable else { return "needs the listener's psk_file" }
            return psk[entry] == nil ? "identity \"\(entry)\" is not in \(listener.pskFile ?? "psk_file")" : nil
        }
        route.clientIdentities = try table.stringOrEntries("client_identity") { entry in
            guard listener.clientCA != nil, listener.security.clientAuth != .none else {
                return "needs client_ca (and client_auth other than \"none\"): it matches verified client certificates"
            }
            return ClientIdentityPolicy.problem(cn: entry)
        }
        guard !route.serverNames.isEmpty || !route.pskIdentities.isEmpty || !route.clientIdentities.isEmpty else {
            throw table.error(
                "server_name",
                "missing: a route needs at least one of server_name, psk_identity or client_identity (the listener's own backend is the route for everyone else)"
            )
        }
        route.certificate = try table.path("certificate")
        route.privateKey = try table.path("private_key")
        switch (route.certificate, route.privateKey) {
        case (.some, nil): throw table.error("private_key", "missing: a route with a certificate needs a private_key")
        case (nil, .some): throw table.error("certificate", "missing: a route with a private_key needs a certificate")
        case (.some, .some):
            guard !route.serverNames.isEmpty else {
                throw table.error("certificate", "a route's certificate is chosen by SNI: set server_name too")
            }
            guard listener.certificate != nil else {
                throw table.error(
                    "certificate",
                    "the listener needs its own certificate + private_key too, for clients whose name matches no route")
            }
        case (nil, nil): break
        }
        for (key, path) in [("certificate", route.certificate), ("private_key", route.privateKey)] {
            if let path, let failure = ConfigFileAccess.checkReadable(path) {
                throw table.error(key, failure.cause(path: path))
            }
        }
        if let key = route.privateKey, !listener.security.allowWorldReadableKeys, let mode = permissionBits(key),
            mode & 0o044 != 0
        {
            throw table.error("private_key", ListenerSecurity.looseKeyCause(path: key, mode: mode))
        }
        return route
    }
}

extension RouteConfiguration {
    /// True when both routes take exactly the same clients.
    func sameMatch(as other: RouteConfiguration) -> Bool {
        Set(serverNames) == Set(other.serverNames) && Set(pskIdentities) == Set(other.pskIdentities)
            && Set(clientIdentities) == Set(other.clientIdentities)
    }
}

extension ConfigurationLoader.Table {
    /// `proxy_protocol`, or nil when absent.
    func proxyProtocol() throws(ConfigurationError) -> ProxyProtocolSetting? {
        guard let text = try string("proxy_protocol") else { return nil }
        guard let setting = ProxyProtocolSetting(rawValue: text) else {
            throw error("proxy_protocol", "unknown value \"\(text)\" (use \"v2\" or \"none\")")
        }
        return setting
    }

    /// A string or an array of strings, each checked by `problem`; empty when absent.
    func stringOrEntries(_ key: String, problem: (String) -> String?) throws(ConfigurationError) -> [String] {
        guard let value = table[key] else { return [] }
        if let text = TOMLText.string(value) {
            if let cause = problem(text) { throw error(key, cause) }
            return [text]
        }
        guard value.array != nil else {
            throw typeError(key, expected: .string, found: value, hint: "write a string, or a list of strings")
        }
        return try entries(key, problem: problem)
    }
}
