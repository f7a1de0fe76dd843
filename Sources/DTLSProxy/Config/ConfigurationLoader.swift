import TOMLKit

/// Reads the TOML configuration file and turns it into a validated ``ProxyConfiguration``.
///
/// The tables are walked by hand so that every error names its key exactly
/// (`daemon.workers`, `listener[1].idle_timeout`). Unknown keys are errors. Relative
/// paths are resolved against the configuration file's folder, and every file the
/// configuration names is checked to exist and be readable; the PSK file is parsed
/// and the cookie secret's length checked. The contents of certificates and keys are
/// left to the DTLS code.
public enum ConfigurationLoader {
    /// Reads and validates the configuration file at `path`.
    ///
    /// - Throws: ``ConfigurationError``; an unreadable file gives the key `""` and the
    ///   cause `cannot read: <reason>`, with `file` being `path` as given.
    public static func load(path: String) throws(ConfigurationError) -> ProxyConfiguration {
        let bytes: [UInt8]
        switch ConfigFileAccess.read(path) {
        case .success(let read): bytes = read
        case .failure(let failure):
            throw ConfigurationError(file: path, key: "", cause: "cannot read: \(failure.reason)")
        }
        let text = String(decoding: bytes, as: UTF8.self)
        guard text.utf8.elementsEqual(bytes) else {
            throw ConfigurationError(file: path, key: "", cause: "cannot read: not valid UTF-8 text")
        }
        return try parse(toml: text, sourcePath: path)
    }

    /// Validates configuration text as if it had been read from `sourcePath`.
    ///
    /// `sourcePath` is made absolute against the current directory; relative paths in
    /// the configuration are resolved against its folder, and the files they name are
    /// checked just as ``load(path:)`` does.
    public static func parse(toml: String, sourcePath: String) throws(ConfigurationError) -> ProxyConfiguration {
        let file = ConfigFileAccess.absolute(sourcePath, relativeTo: ConfigFileAccess.currentDirectory())
        let context = Context(file: file, folder: ConfigFileAccess.directory(of: file))
        let root = try context.parseDocument(toml)
        // TOMLKit never frees a parsed document (its tables have no deinit), so
        // every reload would keep its whole tree. Emptying the root frees every
        // node under it; what stays is the empty root table. Everything this
        // function returns has been copied out into Swift values by then.
        defer { root.clear() }
        let top = Table(root, prefix: "", context: context)
        try top.rejectUnknownKeys(known: ["daemon", "listener", "connector", "cluster"])

        var daemon = DaemonConfiguration()
        if let value = root["daemon"] {
            guard let table = value.table else { throw top.typeError("daemon", expected: .table, found: value) }
            daemon = try parseDaemon(Table(table, prefix: "daemon.", context: context))
        }

        let none = "no [[listener]] or [[connector]] defined; at least one is required"
        var array: TOMLArray?
        if let listenerValue = root["listener"] {
            guard let listenerArray = listenerValue.array else {
                throw context.error(
                    "listener", "expected an array of tables ([[listener]]), found \(found(listenerValue))")
            }
            array = listenerArray
        }
        let elements: [TOMLValueConvertible] = array.map { Array($0) } ?? []
        let listeners = try parseSections(elements, named: "listener", context: context) {
            (table, index) throws(ConfigurationError) in try parseListener(table, index: index)
        }
        let connectors = try parseConnectors(root, context: context, listeners: listeners)
        guard !listeners.isEmpty || !connectors.isEmpty else { throw context.error("listener", none) }
        var configuration = ProxyConfiguration(
            sourcePath: file, daemon: daemon, listeners: listeners, connectors: connectors)
        if let value = root["cluster"] {
            guard let table = value.table else { throw top.typeError("cluster", expected: .table, found: value) }
            configuration.cluster = try parseCluster(
                Table(table, prefix: "cluster.", context: context), nodeID: daemon.nodeID)
        }
        return configuration
    }

    // MARK: - Tables

    private static func parseDaemon(_ table: Table) throws(ConfigurationError) -> DaemonConfiguration {
        try table.rejectUnknownKeys(known: daemonKeys)
        var daemon = DaemonConfiguration()
        if let level = try table.string("log_level") {
            guard let setting = LogLevelSetting(rawValue: level) else {
                let names = LogLevelSetting.allCases.map(\.rawValue)
                throw table.error(
                    "log_level",
                    "unknown level \"\(level)\" (use \(names.dropLast().joined(separator: ", ")) or \(names.last!))")
            }
            daemon.logLevel = setting
        }
        daemon.workers = try table.int("workers", in: 0...1024) ?? daemon.workers
        if let path = try table.path("cookie_secret_file") {
            switch ConfigFileAccess.read(path, limit: 4096) {
            case .failure(let failure): throw table.error("cookie_secret_file", failure.cause(path: path))
            case .success(let bytes) where bytes.count < 16:
                throw table.error(
                    "cookie_secret_file", "\(path) holds \(bytes.count) bytes; a cookie secret needs at least 16")
            case .success(let bytes):
                daemon.cookieSecretFile = path
                daemon.cookieSecret = bytes
            }
        }
        if let text = try table.string("metrics_listen"), !text.isEmpty {
            daemon.metricsListen = try table.address("metrics_listen", text)
        }
        if let text = try table.string("health_listen"), !text.isEmpty {
            daemon.healthListen = try table.address("health_listen", text)
        }
        daemon.shutdownTimeout = try table.duration("shutdown_timeout", allowZero: true) ?? daemon.shutdownTimeout
        daemon.drainTimeout = try table.duration("drain_timeout", allowZero: true) ?? daemon.drainTimeout
        daemon.nodeID = try table.int("node_id", in: 0...255) ?? daemon.nodeID
        daemon.reloadOnChange = try table.bool("reload_on_change") ?? daemon.reloadOnChange
        if let busyPoll = try table.duration("busy_poll", allowZero: true) {
            guard busyPoll <= DaemonConfiguration.busyPollLimit else {
                throw table.error(
                    "busy_poll",
                    "\(busyPoll) is longer than \(DaemonConfiguration.busyPollLimit): a spin that long holds back the loop's other sockets and timers"
                )
            }
            daemon.busyPoll = busyPoll
        }
        return daemon
    }

    static let daemonKeys = [
        "log_level", "workers", "cookie_secret_file", "metrics_listen", "health_listen", "shutdown_timeout",
        "drain_timeout", "node_id", "reload_on_change", "busy_poll",
    ]

    static let listenerKeys =
        [
            "name", "listen", "certificate", "private_key", "client_ca", "psk_file",
            "min_version", "idle_timeout", "handshake_timeout", "mtu", "max_sessions", "connection_id",
            "connection_id_length",
        ] + admissionKeys + securityKeys + routingKeys

    private static func parseListener(_ table: Table, index: Int) throws(ConfigurationError) -> ListenerConfiguration {
        try table.rejectUnknownKeys(known: listenerKeys)
        let name = try table.string("name") ?? "listener\(index)"
        let nameCharacters = name.unicodeScalars.allSatisfy {
            $0.isASCII
                && (("A"..."Z").contains($0) || ("a"..."z").contains($0) || ("0"..."9").contains($0)
                    || "._-".unicodeScalars.contains($0))
        }
        guard (1...64).contains(name.unicodeScalars.count), nameCharacters else {
            throw table.error(
                "name", "invalid name \"\(name)\" (1 to 64 characters of A-Z, a-z, 0-9, \".\", \"_\" and \"-\")")
        }
        guard let listenText = try table.string("listen"), !listenText.isEmpty else {
            throw table.error("listen", "missing: every listener needs a listen address, e.g. \"0.0.0.0:5684\"")
        }
        var listener = ListenerConfiguration(
            index: index, name: name, listen: try table.address("listen", listenText), backend: nil)
        listener.certificate = try table.path("certificate")
        listener.privateKey = try table.path("private_key")
        listener.clientCA = try table.path("client_ca")
        listener.pskFile = try table.path("psk_file")
        listener.minVersion = try table.version("min_version") ?? listener.minVersion
        try parseSessionKeys(table, into: &listener)
        try parseAdmissionLimits(table, into: &listener)

        switch (listener.certificate, listener.privateKey, listener.pskFile) {
        case (.some, nil, _):
            throw table.error("private_key", "missing: a listener with a certificate needs a private_key")
        case (nil, .some, _):
            throw table.error("certificate", "missing: a listener with a private_key needs a certificate")
        case (nil, nil, nil):
            throw table.error(
                "certificate", "missing: a listener needs certificate + private_key, or psk_file (or both)")
        default: break
        }
        if listener.clientCA != nil, listener.certificate == nil {
            throw table.error("client_ca", "client certificates need the listener's own certificate + private_key")
        }
        for (key, path) in [
            ("certificate", listener.certificate), ("private_key", listener.privateKey),
            ("client_ca", listener.clientCA),
        ] {
            if let path, let failure = ConfigFileAccess.checkReadable(path) {
                throw table.error(key, failure.cause(path: path))
            }
        }
        if let path = listener.pskFile {
            do throws(PSKFileError) {
                listener.pskTable = try PSKTable.load(path: path)
            } catch {
                throw table.error("psk_file", error.description)
            }
        }
        listener.security = try parseSecurity(table, listener: listener)
        try parseRouting(table, into: &listener)
        return listener
    }

    // MARK: - Helpers

    /// What every error needs: the absolute file, and the folder relative paths start from.
    struct Context {
        var file: String
        var folder: String

        func error(_ key: String, _ cause: String) -> ConfigurationError {
            ConfigurationError(file: file, key: key, cause: cause)
        }

        func parseDocument(_ toml: String) throws(ConfigurationError) -> TOMLTable {
            // toml++ reads a C string: a NUL would silently end the document.
            if toml.utf8.contains(0) {
                var line = 1, column = 1
                for byte in toml.utf8.prefix(while: { $0 != 0 }) {
                    if byte == UInt8(ascii: "\n") { line += 1; column = 1 } else if byte & 0xC0 != 0x80 { column += 1 }
                }
                throw error("", "TOML syntax error at line \(line), column \(column): NUL characters are not allowed")
            }
            if let problem = TOMLPreflight.problem(in: toml) {
                throw error("", "TOML syntax error at line \(problem.line), column \(problem.column): \(problem.cause)")
            }
            do {
                return try TOMLTable(string: toml)
            } catch let parseError as TOMLParseError {
                let begin = parseError.source.begin
                throw error(
                    "", "TOML syntax error at line \(begin.line), column \(begin.column): \(parseError.description)")
            } catch {
                throw self.error("", "TOML syntax error: \(error)")
            }
        }
    }

    /// One TOML table and the key prefix its errors carry (`daemon.`, `listener[2].`).
    struct Table {
        var table: TOMLTable
        var prefix: String
        var context: Context

        init(_ table: TOMLTable, prefix: String, context: Context) {
            self.table = table
            self.prefix = prefix
            self.context = context
        }

        func error(_ key: String, _ cause: String) -> ConfigurationError {
            context.error(prefix + key, cause)
        }

        func typeError(
            _ key: String, expected: TOMLType, found value: TOMLValueConvertible, hint: String? = nil
        ) -> ConfigurationError {
            let article = expected == .int || expected == .array ? "an" : "a"
            let cause =
                "expected \(article) \(ConfigurationLoader.name(of: expected)), found \(ConfigurationLoader.found(value))"
            return error(key, hint.map { "\(cause) (\($0))" } ?? cause)
        }

        /// Counts the known keys first: TOMLKit's `keys` allocates a C array it
        /// never frees, so it is read only when there is an unknown key to name.
        func rejectUnknownKeys(known: [String]) throws(ConfigurationError) {
            guard known.filter({ table.contains(key: $0) }).count != table.count else { return }
            for key in table.keys.sorted() where !known.contains(key) {
                let closest = known.map { ($0, ConfigurationLoader.editDistance($0, key)) }.filter { $0.1 <= 2 }.min {
                    $0.1 < $1.1
                }
                throw error(key, closest.map { "unknown key; did you mean `\($0.0)`?" } ?? "unknown key")
            }
        }

        func string(_ key: String, hint: String? = nil) throws(ConfigurationError) -> String? {
            guard let value = table[key] else { return nil }
            guard let string = TOMLText.string(value) else {
                throw typeError(key, expected: .string, found: value, hint: hint)
            }
            return string
        }

        func int(_ key: String, in range: ClosedRange<Int>) throws(ConfigurationError) -> Int? {
            guard let value = table[key] else { return nil }
            guard let int = value.int else { throw typeError(key, expected: .int, found: value) }
            guard range.contains(int) else {
                throw error(key, "must be between \(range.lowerBound) and \(range.upperBound), found \(int)")
            }
            return int
        }

        /// An absolute path, or nil when the key is absent or `""`; `credential:NAME`
        /// and `$CREDENTIALS_DIRECTORY/NAME` resolve in systemd's credentials directory.
        func path(_ key: String) throws(ConfigurationError) -> String? {
            guard let text = try string(key), !text.isEmpty else { return nil }
            switch CredentialPath.resolve(text, relativeTo: context.folder) {
            case .success(let path): return path
            case .failure(let failure): throw error(key, failure.description)
            }
        }

        func duration(_ key: String, allowZero: Bool) throws(ConfigurationError) -> ConfigDuration? {
            guard let text = try string(key, hint: "write a duration with a unit, e.g. \"30s\"") else { return nil }
            do {
                return try ConfigDuration(parsing: text, allowZero: allowZero)
            } catch {
                throw self.error(key, "invalid duration \"\(text)\": \(error)")
            }
        }

        func address(_ key: String, _ text: String) throws(ConfigurationError) -> EndpointAddress {
            do {
                return try EndpointAddress(parsing: text)
            } catch {
                throw self.error(key, "invalid address \"\(text)\": \(error)")
            }
        }
    }

    static func name(of type: TOMLType) -> String {
        switch type {
        case .bool: "boolean"
        default: type.description
        }
    }

    static func found(_ value: TOMLValueConvertible) -> String {
        name(of: value.type)
    }

    /// Levenshtein distance, for "did you mean" suggestions.
    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        guard !a.isEmpty else { return b.count }
        var previous = Array(0...b.count)
        for i in 1...a.count {
            var current = [i] + Array(repeating: 0, count: b.count)
            for j in stride(from: 1, through: b.count, by: 1) {
                let substitution = previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)
                current[j] = Swift.min(previous[j] + 1, current[j - 1] + 1, substitution)
            }
            previous = current
        }
        return previous[b.count]
    }
}

// MARK: - Admission limits and socket buffers

extension ConfigurationLoader {
    static let admissionKeys = [
        "max_handshakes_in_progress", "handshake_rate_per_source",
        "max_handshakes_per_source", "max_handshakes_per_prefix", "source_prefix_ipv4", "source_prefix_ipv6",
        "socket_receive_buffer", "socket_send_buffer", "backend_receive_buffer", "max_undecryptable_datagrams",
    ]

    /// The keys that bound what a listener spends on clients before they finish a handshake.
    fileprivate static func parseAdmissionLimits(
        _ table: Table, into listener: inout ListenerConfiguration
    ) throws(ConfigurationError) {
        listener.maxHandshakesInProgress =
            try table.int("max_handshakes_in_progress", in: 1...10_000_000) ?? listener.maxHandshakesInProgress
        listener.handshakeRatePerSource =
            try table.int("handshake_rate_per_source", in: 0...1_000_000) ?? listener.handshakeRatePerSource
        listener.maxHandshakesPerSource =
            try table.int("max_handshakes_per_source", in: 1...10_000_000) ?? listener.maxHandshakesPerSource
        listener.maxHandshakesPerPrefix =
            try table.int("max_handshakes_per_prefix", in: 1...10_000_000) ?? listener.maxHandshakesPerPrefix
        listener.sourcePrefixIPv4 = try table.int("source_prefix_ipv4", in: 8...32) ?? listener.sourcePrefixIPv4
        listener.sourcePrefixIPv6 = try table.int("source_prefix_ipv6", in: 16...128) ?? listener.sourcePrefixIPv6
        if listener.maxHandshakesPerSource > listener.maxHandshakesPerPrefix {
            throw table.error(
                "max_handshakes_per_source",
                "\(listener.maxHandshakesPerSource) is more than max_handshakes_per_prefix (\(listener.maxHandshakesPerPrefix)), which also counts the source"
            )
        }
        listener.socketReceiveBuffer =
            try table.int("socket_receive_buffer", in: 0...(1 << 30)) ?? listener.socketReceiveBuffer
        listener.socketSendBuffer = try table.int("socket_send_buffer", in: 0...(1 << 30)) ?? listener.socketSendBuffer
        listener.backendReceiveBuffer =
            try table.int("backend_receive_buffer", in: 0...(1 << 30)) ?? listener.backendReceiveBuffer
        listener.maxUndecryptableDatagrams =
            try table.int("max_undecryptable_datagrams", in: 0...1_000_000) ?? listener.maxUndecryptableDatagrams
        listener.connectionID = try table.bool("connection_id") ?? listener.connectionID
        listener.connectionIDLength = try table.int("connection_id_length", in: 4...16) ?? listener.connectionIDLength
    }
}
