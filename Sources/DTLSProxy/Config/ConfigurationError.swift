/// A configuration that cannot be used: what the daemon prints on stderr
/// (one line) before it exits with status 78 (EX_CONFIG).
///
/// ```
/// /etc/dtls-proxy/dtls-proxy.toml: listener[0].private_key: missing: a listener with a certificate needs a private_key
/// /etc/dtls-proxy/dtls-proxy.toml: cannot read: No such file or directory
/// ```
public struct ConfigurationError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The configuration file, as given on the command line or made absolute by the loader.
    public var file: String
    /// The key at fault, e.g. `listener[0].private_key`, `daemon.workers`, `listener`;
    /// empty when the fault is the file as a whole (unreadable, not TOML).
    public var key: String
    /// What is wrong, e.g. `file not found: /etc/dtls-proxy/server.key`.
    public var cause: String

    public init(file: String, key: String, cause: String) {
        self.file = file
        self.key = key
        self.cause = cause
    }

    /// `FILE: KEY: CAUSE`, or `FILE: CAUSE` when there is no key; always a single line.
    public var description: String {
        let line = key.isEmpty ? "\(file): \(cause)" : "\(file): \(key): \(cause)"
        return String(line.map { $0.isNewline ? " " : $0 })
    }
}
