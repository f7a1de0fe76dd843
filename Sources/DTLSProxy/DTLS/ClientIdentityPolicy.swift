/// The allow-lists of a listener that checks client certificates:
/// `allow_cn`, `allow_dns` and `allow_uri`.
///
/// They are applied after OpenSSL has verified the certificate chain against
/// `client_ca`, so they only ever decide between clients the CA vouches for.
/// A client is admitted when it matches one entry of any non-empty list (the
/// lists name alternative ways to identify a client, e.g. devices by CN and
/// workloads by SPIFFE ID); when every list is empty, any verified client is.
///
/// Matching:
/// - `allow_cn`: the subject's common name, exactly (case-sensitive). When a
///   subject has several CNs, the last (most specific) one counts.
/// - `allow_dns`: each SAN dNSName, compared case-insensitively; an entry
///   `*.example.com` matches exactly one more label (`a.example.com`, not
///   `a.b.example.com` nor `example.com`). A wildcard in the certificate itself
///   only matches the identical entry.
/// - `allow_uri`: each SAN URI, exactly; an entry ending in `/*` matches every
///   URI that starts with the entry minus the `*` (`spiffe://example.org/sensors/*`).
public struct ClientIdentityPolicy: Sendable, Equatable {
    public var allowCN: [String]
    public var allowDNS: [String]
    public var allowURI: [String]

    public init(allowCN: [String] = [], allowDNS: [String] = [], allowURI: [String] = []) {
        self.allowCN = allowCN
        self.allowDNS = allowDNS
        self.allowURI = allowURI
    }

    /// True when no list restricts the verified clients.
    public var admitsEveryVerifiedClient: Bool {
        allowCN.isEmpty && allowDNS.isEmpty && allowURI.isEmpty
    }

    /// The keys of the non-empty lists, in a fixed order, for log lines.
    public var activeRules: [String] {
        [("allow_cn", allowCN), ("allow_dns", allowDNS), ("allow_uri", allowURI)]
            .filter { !$0.1.isEmpty }.map(\.0)
    }

    /// What the check decided.
    public enum Decision: Equatable, Sendable {
        /// Admitted; `rule` names the entry that matched (`allow_cn "dev1"`), nil when no list is set.
        case admitted(rule: String?)
        /// Refused: `rules` are the lists the client failed.
        case refused(rules: [String])
    }

    /// Applies the lists to a certificate that has already passed chain verification.
    public func evaluate(_ identity: CertificateIdentity) -> Decision {
        if admitsEveryVerifiedClient { return .admitted(rule: nil) }
        if let cn = identity.commonName, allowCN.contains(cn) {
            return .admitted(rule: "allow_cn \"\(cn)\"")
        }
        for name in identity.dnsNames {
            if let entry = allowDNS.first(where: { Self.dnsEntry($0, matches: name) }) {
                return .admitted(rule: "allow_dns \"\(entry)\"")
            }
        }
        for uri in identity.uris {
            if let entry = allowURI.first(where: { Self.uriEntry($0, matches: uri) }) {
                return .admitted(rule: "allow_uri \"\(entry)\"")
            }
        }
        return .refused(rules: activeRules)
    }

    static func dnsEntry(_ entry: String, matches name: String) -> Bool {
        let entry = entry.lowercased(), name = name.lowercased()
        if entry == name { return true }
        guard entry.hasPrefix("*.") else { return false }
        let suffix = entry.dropFirst(1)  // ".example.com"
        guard name.hasSuffix(suffix) else { return false }
        let label = name.dropLast(suffix.count)
        return !label.isEmpty && !label.contains(".") && !label.contains("*")
    }

    static func uriEntry(_ entry: String, matches uri: String) -> Bool {
        if entry.hasSuffix("/*") {
            return uri.hasPrefix(entry.dropLast()) && uri.count > entry.count - 1
        }
        return entry == uri
    }

    // MARK: - Validation of the configured entries

    /// Why an `allow_cn` entry is unusable, or nil when it is fine.
    public static func problem(cn entry: String) -> String? {
        if entry.isEmpty { return "empty entry" }
        if entry.utf8.count > 256 { return "entry longer than 256 bytes" }
        if entry.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) {
            return "entry \(quoted(entry)) contains a control character"
        }
        return nil
    }

    /// Why an `allow_dns` entry is not a DNS name (optionally `*.` + name), or nil.
    public static func problem(dns entry: String) -> String? {
        if entry.isEmpty { return "empty entry" }
        let name = entry.hasPrefix("*.") ? String(entry.dropFirst(2)) : entry
        // The host-name rules of `listen`/`backend` addresses, without the trailing dot
        // a certificate's names never carry.
        guard !name.hasSuffix("."), EndpointAddress.hostNameProblem(name) == nil else {
            return
                "\(quoted(entry)) is not a DNS name (letters, digits, \"-\" and \"_\" in dot-separated labels; a wildcard only as a leading \"*.\")"
        }
        return nil
    }

    /// Why an `allow_uri` entry is not an absolute URI (optionally ending in `/*`), or nil.
    public static func problem(uri entry: String) -> String? {
        if entry.isEmpty { return "empty entry" }
        guard let colon = entry.firstIndex(of: ":"), colon != entry.startIndex else {
            return "\(quoted(entry)) is not an absolute URI (expected scheme:..., e.g. \"spiffe://example.org/sensor\")"
        }
        let scheme = entry[..<colon]
        let schemeOK =
            scheme.first!.isASCII && scheme.first!.isLetter
            && scheme.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "+-.".contains($0)) }
        guard schemeOK, entry.index(after: colon) != entry.endIndex else {
            return "\(quoted(entry)) is not an absolute URI (expected scheme:..., e.g. \"spiffe://example.org/sensor\")"
        }
        if entry.contains(where: { $0 == " " || !$0.isASCII || $0.asciiValue! < 0x21 || $0.asciiValue! == 0x7F }) {
            return "\(quoted(entry)) contains a space, a control or a non-ASCII character; write URIs percent-encoded"
        }
        if let star = entry.firstIndex(of: "*"), !(entry.hasSuffix("/*") && star == entry.index(before: entry.endIndex))
        {
            return "\(quoted(entry)): \"*\" is only allowed as a final \"/*\" (every URI under that path)"
        }
        return nil
    }

    private static func quoted(_ text: String) -> String { "\"\(text)\"" }
}

/// The names a verified client certificate carries, as the allow-lists see them.
public struct CertificateIdentity: Sendable, Equatable {
    /// The subject's common name (the last one, when there are several).
    public var commonName: String?
    /// Its subjectAltName dNSName entries.
    public var dnsNames: [String]
    /// Its subjectAltName uniformResourceIdentifier entries.
    public var uris: [String]

    public init(commonName: String? = nil, dnsNames: [String] = [], uris: [String] = []) {
        self.commonName = commonName
        self.dnsNames = dnsNames
        self.uris = uris
    }

    /// The name the session's log lines show: the first SAN URI (e.g. a SPIFFE
    /// ID), else the CN, else the first dNSName, else nil.
    public var displayName: String? {
        uris.first ?? commonName ?? dnsNames.first
    }

    /// `cn="dev1" dns=[a.example] uri=[spiffe://x/y]`: what a refusal line shows.
    public var summary: String {
        let cn = commonName.map { LogValue.quote($0) } ?? "none"
        let dns = dnsNames.map(LogValue.quote).joined(separator: ",")
        let uri = uris.map(LogValue.quote).joined(separator: ",")
        return "cn=\(cn) dns=[\(dns)] uri=[\(uri)]"
    }
}
