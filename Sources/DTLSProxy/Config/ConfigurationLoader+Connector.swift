import TOMLKit

/// The `[[connector]]` blocks (client mode).
///
/// Same conventions as the listener keys: every error names
/// `connector[N].KEY`, unknown keys are refused with a suggestion, every file
/// named is checked readable (key files also for their mode), and what needs
/// OpenSSL (certificates, cipher strings) is judged when ``DTLSClientContext``
/// is built, which `--check-config` does too.
extension ConfigurationLoader {
    static let connectorKeys = [
        "name", "listen", "server", "server_ca", "server_name", "verify_depth",
        "certificate", "private_key", "psk_identity", "psk_file",
        "min_version", "max_version", "ciphers", "groups",
        "idle_timeout", "handshake_timeout", "mtu", "max_sessions", "allow_world_readable_keys",
        "session_tickets", "connection_id",
    ]

    /// Parses every `[[connector]]` table; an absent key gives none.
    /// `listeners` are checked so that no connector binds a listener's address.
    static func parseConnectors(
        _ root: TOMLTable, context: Context, listeners: [ListenerConfiguration]
    ) throws(ConfigurationError) -> [ConnectorConfiguration] {
        guard let value = root["connector"] else { return [] }
        guard let array = value.array else {
            throw context.error("connector", "expected an array of tables ([[connector]]), found \(found(value))")
        }
        let connectors = try parseSections(Array(array), named: "connector", context: context) {
            (table, index) throws(ConfigurationError) in try parseConnector(table, index: index)
        }
        for connector in connectors {
            if let other = listeners.first(where: { $0.listen == connector.listen }) {
                throw context.error(
                    connector.keyPath("listen"), "\(connector.listen) is also the address of listener[\(other.index)]")
            }
        }
        return connectors
    }

    private static func parseConnector(_ table: Table, index: Int) throws(ConfigurationError) -> ConnectorConfiguration
    {
        if table.table["psk"] != nil {
            // The configuration file is usually readable by everyone; a key belongs in a 0600 file.
            throw table.error(
                "psk",
                "inline keys are not accepted (the configuration file is usually world-readable); put \"identity:hexkey\" in a psk_file (mode 0600) and name the identity with psk_identity"
            )
        }
        try table.rejectUnknownKeys(known: connectorKeys)
        let name = try table.string("name") ?? "connector\(index)"
        if let problem = nameProblem(name) { throw table.error("name", problem) }
        guard let listenText = try table.string("listen"), !listenText.isEmpty else {
            throw table.error(
                "listen", "missing: every connector needs a local listen address, e.g. \"127.0.0.1:5683\"")
        }
        guard let serverText = try table.string("server"), !serverText.isEmpty else {
            throw table.error(
                "server", "missing: every connector needs the DTLS server's address, e.g. \"proxy.example.org:5684\"")
        }
        var connector = ConnectorConfiguration(
            index: index, name: name,
            listen: try table.address("listen", listenText),
            server: try table.address("server", serverText))
        connector.serverCA = try table.path("server_ca")
        connector.certificate = try table.path("certificate")
        connector.privateKey = try table.path("private_key")
        connector.pskFile = try table.path("psk_file")
        if let identity = try table.string("psk_identity"), !identity.isEmpty { connector.pskIdentity = identity }
        connector.verifyDepth = try table.int("verify_depth", in: 0...32) ?? connector.verifyDepth
        connector.minVersion = try table.version("min_version") ?? connector.minVersion
        connector.maxVersion = try table.version("max_version") ?? connector.maxVersion
        try table.checkVersionRange(min: connector.minVersion, max: connector.maxVersion)
        connector.ciphers = try table.openSSLList("ciphers") ?? connector.ciphers
        connector.groups = try table.openSSLList("groups") ?? connector.groups
        try parseSessionKeys(table, into: &connector)
        connector.allowWorldReadableKeys = try table.bool("allow_world_readable_keys") ?? false
        connector.sessionTickets = try table.bool("session_tickets") ?? connector.sessionTickets
        connector.connectionID = try table.bool("connection_id") ?? connector.connectionID
        try parseServerName(table, into: &connector)
        try checkConnectorCredentials(table, connector: &connector)
        return connector
    }

    /// `server_name`: a DNS name (SNI and the certificate's dNSNames) or an IP
    /// literal (checked against iPAddress SANs; no SNI, which RFC 6066 §3 forbids
    /// for addresses). Absent, the host of `server` stands in.
    private static func parseServerName(
        _ table: Table, into connector: inout ConnectorConfiguration
    ) throws(ConfigurationError) {
        let explicit = try table.string("server_name")
        let key = explicit == nil ? "server" : "server_name"
        let name = explicit ?? connector.server.host
        guard !name.isEmpty else {
            throw table.error("server_name", "empty; leave the key out to check the host of server")
        }
        if EndpointAddress.isIPv4(name) || EndpointAddress.isIPv6(name) {
            connector.serverIP = name
        } else if let problem = EndpointAddress.hostNameProblem(name) {
            throw table.error(key, problem)
        } else {
            connector.serverName = name
        }
    }

    /// Who the connector is to the server and how it knows the server: at least
    /// one of `server_ca` and a PSK, since a tunnel that trusts any server protects nothing.
    private static func checkConnectorCredentials(
        _ table: Table, connector: inout ConnectorConfiguration
    ) throws(ConfigurationError) {
        switch (connector.pskIdentity, connector.pskFile) {
        case (.some, nil): throw table.error("psk_file", "missing: psk_identity needs a psk_file that holds its key")
        case (nil, .some):
            throw table.error(
                "psk_identity", "missing: psk_file needs psk_identity (which of its identities this connector uses)")
        default: break
        }
        if connector.serverCA == nil, connector.pskFile == nil {
            throw table.error(
                "server_ca",
                "missing: a connector needs server_ca (to verify the server's certificate) or psk_identity + psk_file; there is no unauthenticated mode"
            )
        }
        switch (connector.certificate, connector.privateKey) {
        case (.some, nil): throw table.error("private_key", "missing: a client certificate needs its private_key")
        case (nil, .some): throw table.error("certificate", "missing: a private_key needs its certificate")
        default: break
        }
        for (key, path) in [
            ("server_ca", connector.serverCA), ("certificate", connector.certificate),
            ("private_key", connector.privateKey),
        ] {
            if let path, let failure = ConfigFileAccess.checkReadable(path) {
                throw table.error(key, failure.cause(path: path))
            }
        }
        if let path = connector.pskFile, let identity = connector.pskIdentity {
            do throws(PSKFileError) {
                connector.pskTable = try PSKTable.load(path: path)
            } catch {
                throw table.error("psk_file", error.description)
            }
            guard connector.pskKey != nil else {
                throw table.error("psk_identity", "\"\(identity)\" is not an identity of \(path)")
            }
        }
        if !connector.allowWorldReadableKeys {
            for (key, path) in [("private_key", connector.privateKey), ("psk_file", connector.pskFile)] {
                if let path, let mode = permissionBits(path), mode & 0o044 != 0 {
                    throw table.error(key, ListenerSecurity.looseKeyCause(path: path, mode: mode))
                }
            }
        }
    }

    /// Nil when `name` is a valid listener or connector name; otherwise the cause.
    static func nameProblem(_ name: String) -> String? {
        let valid = name.unicodeScalars.allSatisfy {
            $0.isASCII
                && (("A"..."Z").contains($0) || ("a"..."z").contains($0) || ("0"..."9").contains($0)
                    || "._-".unicodeScalars.contains($0))
        }
        guard (1...64).contains(name.unicodeScalars.count), valid else {
            return "invalid name \"\(name)\" (1 to 64 characters of A-Z, a-z, 0-9, \".\", \"_\" and \"-\")"
        }
        return nil
    }
}
