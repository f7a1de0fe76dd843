#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

extension EndpointAddress {
    /// Parses `host:port` as written in the configuration file.
    ///
    /// Accepted: `127.0.0.1:5683`, `0.0.0.0:5684`, `[::1]:5684`, `[::]:5684`,
    /// `[fe80::1%eth0]:5684`, `localhost:5683`, `backend.internal:5683`. The port is
    /// 1–65535. An IPv6 literal must be in brackets. Host names are checked for their
    /// form only; nothing is resolved.
    ///
    /// - Throws: ``EndpointParseError`` whose description is the human reason.
    public init(parsing text: String) throws(EndpointParseError) {
        guard !text.isEmpty else { throw EndpointParseError("empty (expected host:port)") }
        let host: String
        let portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else {
                throw EndpointParseError("missing \"]\" after the IPv6 address")
            }
            host = String(text[text.index(after: text.startIndex)..<close])
            let after = text[text.index(after: close)...]
            guard after.hasPrefix(":") else {
                throw EndpointParseError("missing port after \"]\" (expected [address]:port)")
            }
            portText = after.dropFirst()
            guard !host.isEmpty else { throw EndpointParseError("missing address between \"[\" and \"]\"") }
            guard Self.isIPv6(host) else {
                if Self.isIPv4(host) || !host.contains(":") {
                    throw EndpointParseError("brackets are only for IPv6 addresses (write \(host):port)")
                }
                throw EndpointParseError("invalid IPv6 address \"\(host)\"")
            }
        } else {
            guard let colon = text.lastIndex(of: ":") else {
                throw EndpointParseError("missing port (expected host:port)")
            }
            let hostPart = text[..<colon]
            if hostPart.contains(":") || hostPart.contains("]") {
                throw EndpointParseError("an IPv6 address must be in brackets, e.g. \"[::1]:5684\"")
            }
            guard !hostPart.isEmpty else { throw EndpointParseError("missing host (expected host:port)") }
            host = String(hostPart)
            portText = text[text.index(after: colon)...]
            if host.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == ".") }) {
                guard Self.isIPv4(host) else { throw EndpointParseError("invalid IPv4 address \"\(host)\"") }
            } else if let reason = Self.hostNameProblem(host) {
                throw EndpointParseError(reason)
            }
        }
        guard !portText.isEmpty else { throw EndpointParseError("missing port (expected host:port)") }
        guard portText.count <= 5, portText.allSatisfy({ $0.isASCII && $0.isNumber }),
            let port = Int(portText), (1...65535).contains(port)
        else {
            throw EndpointParseError("invalid port \"\(portText)\" (must be 1 to 65535)")
        }
        self.init(host: host, port: port)
    }

    static func isIPv4(_ text: String) -> Bool {
        var address = in_addr()
        return inet_pton(AF_INET, text, &address) == 1
    }

    /// An IPv6 literal, optionally with a zone (`fe80::1%eth0`).
    static func isIPv6(_ text: String) -> Bool {
        let parts = text.split(separator: "%", maxSplits: 1, omittingEmptySubsequences: false)
        if parts.count == 2, parts[1].isEmpty { return false }
        var address = in6_addr()
        return inet_pton(AF_INET6, String(parts[0]), &address) == 1
    }

    /// Nil when `host` has the form of a DNS name; otherwise the reason it does not.
    static func hostNameProblem(_ host: String) -> String? {
        guard host.utf8.count <= 253 else { return "host name longer than 253 characters" }
        let name = host.hasSuffix(".") ? String(host.dropLast()) : host
        for label in name.split(separator: ".", omittingEmptySubsequences: false) {
            guard !label.isEmpty else { return "invalid host name \"\(host)\" (empty label)" }
            guard label.utf8.count <= 63 else {
                return "invalid host name \"\(host)\" (label longer than 63 characters)"
            }
            guard label.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }) else {
                return "invalid host name \"\(host)\" (only letters, digits, \"-\", \"_\" and \".\")"
            }
            guard !label.hasPrefix("-"), !label.hasSuffix("-") else {
                return "invalid host name \"\(host)\" (a label cannot start or end with \"-\")"
            }
        }
        return nil
    }
}

/// Why a `host:port` string was rejected; ``description`` is the human reason.
public struct EndpointParseError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The reason, e.g. `an IPv6 address must be in brackets, e.g. "[::1]:5684"`.
    public var description: String

    public init(_ description: String) {
        self.description = description
    }
}
