import TOMLKit

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The listener keys of ``ListenerSecurity``: client certificates and their
/// allow-lists, the PSK hint, protocol policy, session tickets, key-file modes.
///
/// Everything that can be judged without OpenSSL is judged here, so that the
/// error names the key; cipher strings and group lists are judged by OpenSSL
/// when the listener's context is built (`--check-config` does both).
extension ConfigurationLoader {
    static let securityKeys = [
        "client_auth", "verify_depth", "allow_cn", "allow_dns", "allow_uri", "psk_identity_hint",
        "max_version", "ciphers", "groups", "session_tickets", "ticket_key_file", "ticket_key_rotation",
        "allow_world_readable_keys",
    ]

    /// Parses a version key's text; the cause of the error otherwise.
    static func parseVersion(_ text: String, dtls13Supported: Bool) -> Result<DTLSVersionSetting, ConfigValueProblem> {
        guard let setting = DTLSVersionSetting(rawValue: text) else {
            let also = dtls13Supported ? ", \"1.2\" or \"1.3\"" : " or \"1.2\""
            return .failure(ConfigValueProblem("unknown version \"\(text)\" (use \"1.0\"\(also))"))
        }
        if setting == .dtls1_3, !dtls13Supported {
            return .failure(
                ConfigValueProblem(
                    "DTLS 1.3 is not supported by the linked OpenSSL (\(OpenSSLLibrary.versionText)); use \"1.2\""))
        }
        return .success(setting)
    }

    static func parseSecurity(
        _ table: Table, listener: ListenerConfiguration
    ) throws(ConfigurationError) -> ListenerSecurity {
        var security = ListenerSecurity()
        let hasCA = listener.clientCA != nil

        if let text = try table.string("client_auth") {
            guard let mode = ClientAuthMode(rawValue: text) else {
                throw table.error("client_auth", "unknown mode \"\(text)\" (use \"require\", \"optional\" or \"none\")")
            }
            if mode != .none, !hasCA {
                throw table.error(
                    "client_auth", "client_auth = \"\(text)\" needs client_ca (the CAs that issue client certificates)")
            }
            security.clientAuth = mode
        } else {
            security.clientAuth = hasCA ? .require : .none
        }
        // Like client_ca = "", a verify_depth without client_ca is accepted and unused,
        // so that a configuration may show every key with its default.
        security.verifyDepth = try table.int("verify_depth", in: 0...32) ?? security.verifyDepth

        let cn = try table.entries("allow_cn", problem: ClientIdentityPolicy.problem(cn:))
        let dns = try table.entries("allow_dns", problem: ClientIdentityPolicy.problem(dns:))
        let uri = try table.entries("allow_uri", problem: ClientIdentityPolicy.problem(uri:))
        for (key, list) in [("allow_cn", cn), ("allow_dns", dns), ("allow_uri", uri)] where !list.isEmpty {
            guard hasCA else {
                throw table.error(
                    key, "allow-lists need client_ca: they choose among clients whose certificates it verified")
            }
            guard security.clientAuth != .none else {
                throw table.error(key, "has no effect with client_auth = \"none\"")
            }
        }
        security.identityPolicy = ClientIdentityPolicy(allowCN: cn, allowDNS: dns, allowURI: uri)

        if let hint = try table.string("psk_identity_hint"), !hint.isEmpty {
            guard listener.pskFile != nil else { throw table.error("psk_identity_hint", "needs psk_file") }
            guard hint.utf8.count <= 128,
                !hint.unicodeScalars.contains(where: { $0.properties.generalCategory == .control })
            else {
                throw table.error("psk_identity_hint", "at most 128 bytes without control characters")
            }
            security.pskIdentityHint = hint
        }

        security.maxVersion = try table.version("max_version") ?? security.maxVersion
        try table.checkVersionRange(min: listener.minVersion, max: security.maxVersion)
        security.ciphers = try table.openSSLList("ciphers") ?? security.ciphers
        security.groups = try table.openSSLList("groups") ?? security.groups

        security.sessionTickets = try table.bool("session_tickets") ?? security.sessionTickets
        security.ticketKeyRotation =
            try table.duration("ticket_key_rotation", allowZero: false) ?? security.ticketKeyRotation
        guard security.ticketKeyRotation >= .seconds(1), security.ticketKeyRotation <= .hours(24 * 7) else {
            throw table.error("ticket_key_rotation", "must be between 1s and 168h, found \(security.ticketKeyRotation)")
        }
        if let path = try table.path("ticket_key_file") {
            guard security.sessionTickets else {
                throw table.error("ticket_key_file", "has no effect with session_tickets = false")
            }
            switch ConfigFileAccess.read(path, limit: TicketKeySchedule.maximumSecretLength + 1) {
            case .failure(let failure): throw table.error("ticket_key_file", failure.cause(path: path))
            case .success(let bytes):
                if let problem = TicketKeySchedule.problem(withFileContents: bytes, path: path) {
                    throw table.error("ticket_key_file", problem)
                }
                security.ticketKeyFile = path
                security.ticketSecret = bytes
            }
        }

        security.allowWorldReadableKeys = try table.bool("allow_world_readable_keys") ?? false
        if !security.allowWorldReadableKeys {
            for (key, path) in [
                ("private_key", listener.privateKey), ("psk_file", listener.pskFile),
                ("ticket_key_file", security.ticketKeyFile),
            ] {
                if let path, let mode = permissionBits(path), mode & 0o044 != 0 {
                    throw table.error(key, ListenerSecurity.looseKeyCause(path: path, mode: mode))
                }
            }
        }
        return security
    }

    /// The mode bits of the file `path` names (symbolic links followed); nil if it cannot be stat'ed.
    static func permissionBits(_ path: String) -> UInt32? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return UInt32(info.st_mode) & 0o7777
    }
}

/// Why a configured value is unusable, worded for the error line.
struct ConfigValueProblem: Error, Equatable {
    var cause: String
    init(_ cause: String) { self.cause = cause }
}

extension ConfigurationLoader.Table {
    func bool(_ key: String) throws(ConfigurationError) -> Bool? {
        guard let value = table[key] else { return nil }
        guard let bool = value.bool else {
            throw typeError(key, expected: .bool, found: value, hint: "write true or false, without quotes")
        }
        return bool
    }

    func version(_ key: String) throws(ConfigurationError) -> DTLSVersionSetting? {
        guard let text = try string(key, hint: "write \"1.0\" or \"1.2\" in quotes") else { return nil }
        switch ConfigurationLoader.parseVersion(text, dtls13Supported: OpenSSLLibrary.supportsDTLS13) {
        case .success(let setting): return setting
        case .failure(let problem): throw error(key, problem.cause)
        }
    }

    /// An array of strings, each checked by `problem`; duplicates are errors. Empty when absent.
    func entries(_ key: String, problem: (String) -> String?) throws(ConfigurationError) -> [String] {
        guard let value = table[key] else { return [] }
        guard let array = value.array else {
            throw typeError(key, expected: .array, found: value, hint: "write a list of strings, e.g. [\"a\", \"b\"]")
        }
        var result: [String] = []
        for (index, element) in array.enumerated() {
            guard let text = TOMLText.string(element) else {
                throw error("\(key)[\(index)]", "expected a string, found \(ConfigurationLoader.found(element))")
            }
            if let cause = problem(text) { throw error("\(key)[\(index)]", cause) }
            if result.contains(text) { throw error("\(key)[\(index)]", "\"\(text)\" is listed twice") }
            result.append(text)
        }
        return result
    }

    /// `min_version` must not be above `max_version`, for a listener and a connector alike.
    func checkVersionRange(min: DTLSVersionSetting, max: DTLSVersionSetting) throws(ConfigurationError) {
        guard min > max else { return }
        throw error("min_version", "\"\(min.rawValue)\" is above max_version \"\(max.rawValue)\"")
    }

    /// `ciphers` or `groups`: an OpenSSL list, or nil for the built-in one
    /// ("" means the built-in list, as "" means "none" for the file keys).
    func openSSLList(_ key: String) throws(ConfigurationError) -> String? {
        guard let text = try string(key), !text.isEmpty else { return nil }
        guard !text.allSatisfy({ $0 == " " || $0 == "\t" }) else {
            throw error(key, "blank; write \"\" (or leave the key out) for the built-in list")
        }
        return text
    }
}
