import Foundation
import Testing

@testable import DTLSProxy

/// The loader gives back what the TOML parser allocated: a daemon reloaded in a
/// loop must not grow by a parsed document per reload.
@Suite("Configuration loader memory")
struct ConfigurationLoaderMemoryTests {
    private func heapInUse() -> Int { HeapTrim.bytesInUse }

    @Test func parsingAgainAndAgainKeepsNothing() throws {
        let folder = try ConfigTestFolder.withCredentials()
        var toml = """
            [daemon]
            log_level = "info"

            [[listener]]
            name = "coaps"
            listen = "127.0.0.1:5684"
            backend = "127.0.0.1:5683"
            certificate = "server.pem"
            private_key = "server.key"
            psk_file = "psk.txt"

            """
        for index in 0..<8 {
            toml += """

                [[listener.route]]
                name = "r\(index)"
                server_name = ["svc\(index).example", "*.svc\(index).example"]
                backends = ["127.0.0.1:\(6000 + index)", "127.0.0.1:\(7000 + index)"]

                """
        }
        for _ in 0..<50 { _ = try folder.parse(toml) }
        #expect(heapInUse() > 0, "the C library reports its heap")
        // The heap is the whole process's, and other suites run beside this one,
        // holding what they allocate while they run: the quietest of several
        // batches is closest to this loader's own growth. A real leak shows in
        // every batch, so it shows in that one too.
        let rounds = 100
        var batches: [Int] = []
        for _ in 0..<7 {
            let before = heapInUse()
            for _ in 0..<rounds { _ = try folder.parse(toml) }
            batches.append((heapInUse() - before) / rounds)
        }
        let perParse = batches.min()!
        // What stays is TOMLKit's own: the emptied root table and its parse-error record
        // (about 150 bytes); every string read used to keep its copy too (1.8 KiB here).
        #expect(perParse < 512, "each parse kept \(perParse) bytes of heap")
    }
}
