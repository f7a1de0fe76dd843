import Foundation
import Testing

@testable import DTLSProxy

/// Every key the loader accepts is documented where operators look: a row or
/// mention in the configuration guides under docs/ (as `key`) and a line (live
/// or commented) in the annotated example configuration.
@Suite("Every configuration key is documented")
struct DocumentationCoverageTests {
    private static let repository = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    private static func text(_ relativePath: String) throws -> String {
        try String(contentsOf: repository.appendingPathComponent(relativePath), encoding: .utf8)
    }

    /// Keys named as tables (`[[listener.route]]`) rather than `key = value`.
    private static let tableKeys: Set<String> = ["route"]

    /// Where the keys are documented: listener and daemon keys, routes, connectors.
    private static let guides = [
        "docs/configuration.md", "docs/routing.md", "docs/client-mode.md", "docs/systemd.md", "docs/kubernetes.md",
    ]

    @Test func everyKeyIsInTheGuidesAndTheExampleConfiguration() throws {
        let readme = try Self.guides.map(Self.text).joined(separator: "\n")
        let example = try Self.text("config/dtls-proxy.toml")
        let keys =
            ConfigurationLoader.daemonKeys + ConfigurationLoader.listenerKeys + ConfigurationLoader.routeKeys
            + ConfigurationLoader.connectorKeys + ConfigurationLoader.clusterKeys
        for key in Set(keys) {
            if Self.tableKeys.contains(key) {
                #expect(readme.contains("[[listener.\(key)]]") && example.contains("[[listener.\(key)]]"), "\(key)")
                continue
            }
            #expect(readme.contains("`\(key)`"), "docs/ does not document `\(key)`")
            let line = try Regex("(?m)^#?\\s*\(key)\\s*=")
            #expect(example.contains(line), "config/dtls-proxy.toml has no line for \(key)")
        }
    }
}
