import Foundation

/// Where the cookie HMAC's master secret comes from.
enum CookieSecret {
    /// The contents of `cookie_secret_file`, so that instances behind one load
    /// balancer accept each other's cookies; else 32 random bytes for this run.
    static func load(_ configuration: ProxyConfiguration) throws -> [UInt8] {
        guard let path = configuration.daemon.cookieSecretFile else {
            return CookieVerifier.randomSecret()
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigurationError(
                file: configuration.sourcePath, key: "daemon.cookie_secret_file", cause: "cannot read \(path)")
        }
        guard data.count >= 16 else {
            throw ConfigurationError(
                file: configuration.sourcePath, key: "daemon.cookie_secret_file",
                cause: "\(path) holds \(data.count) bytes; at least 16 are needed")
        }
        return Array(data)
    }
}
