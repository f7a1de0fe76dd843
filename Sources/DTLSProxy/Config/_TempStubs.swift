public struct ConfigDuration: Sendable, Equatable, Hashable, CustomStringConvertible {
    public var nanoseconds: Int64
    public static func seconds(_ s: Int64) -> ConfigDuration { .init(nanoseconds: s * 1_000_000_000) }
    public var description: String { "\(nanoseconds)ns" }
}
public struct ConfigurationError: Error, CustomStringConvertible, Equatable, Sendable {
    public var file: String; public var key: String; public var cause: String
    public init(file: String, key: String, cause: String) { self.file = file; self.key = key; self.cause = cause }
    public var description: String { "\(file): \(key): \(cause)" }
}
public enum ConfigurationLoader {
    public static func load(path: String) throws -> ProxyConfiguration { fatalError() }
}
