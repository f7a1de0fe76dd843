import CPlatform
import Foundation
import Testing

@testable import DTLSProxy

/// `reload_on_change`, the pure parts: which files a configuration names,
/// which directories and names are watched, which events matter, and how a
/// burst of events becomes one reload.
@Suite("reload_on_change: watched files, event matching, debounce")
struct ConfigWatchSetTests {
    /// Keys whose value is a file the daemon reads.
    static func namesAFile(_ key: String) -> Bool {
        key.hasSuffix("_file") || ["certificate", "private_key", "client_ca", "server_ca"].contains(key)
    }

    @Test func namedFilesListsEveryFileEveryKeyNames() throws {
        let folder = try ConfigTestFolder.withCredentials()
        try folder.write("cookie.secret", String(repeating: "c", count: 32))
        try folder.write("ticket.key", String(repeating: "t", count: 48))
        try folder.setMode("ticket.key", 0o600)
        try folder.write("route.pem", "-----BEGIN CERTIFICATE-----\n")
        try folder.write("route.key", "-----BEGIN PRIVATE KEY-----\n")
        try folder.setMode("route.key", 0o600)
        try folder.write("conn/ca.pem", "-----BEGIN CERTIFICATE-----\n")
        try folder.write("conn/client.pem", "-----BEGIN CERTIFICATE-----\n")
        try folder.write("conn/client.key", "-----BEGIN PRIVATE KEY-----\n")
        try folder.setMode("conn/client.key", 0o600)
        let toml = """
            [daemon]
            cookie_secret_file = "cookie.secret"
            [[listener]]
            listen = "127.0.0.1:5684"
            backend = "127.0.0.1:5683"
            certificate = "server.pem"
            private_key = "server.key"
            client_ca = "ca.pem"
            psk_file = "psk.txt"
            ticket_key_file = "ticket.key"
            [[listener.route]]
            server_name = "other.example"
            backend = "127.0.0.1:6001"
            certificate = "route.pem"
            private_key = "route.key"
            [[connector]]
            listen = "127.0.0.1:7000"
            server = "127.0.0.1:7001"
            server_ca = "conn/ca.pem"
            certificate = "conn/client.pem"
            private_key = "conn/client.key"
            psk_identity = "dev1"
            psk_file = "psk.txt"
            """
        let configuration = try folder.parse(toml)
        let expected = [
            "dtls-proxy.toml", "cookie.secret", "server.pem", "server.key", "ca.pem", "psk.txt", "ticket.key",
            "route.pem", "route.key", "conn/ca.pem", "conn/client.pem", "conn/client.key",
        ].map { folder.path + "/" + $0 }
        // psk.txt is named twice (listener and connector) and listed once.
        #expect(configuration.namedFiles == expected)

        // Every key that names a file is set above: a new one fails here until it is.
        let keys =
            ConfigurationLoader.daemonKeys + ConfigurationLoader.listenerKeys + ConfigurationLoader.routeKeys
            + ConfigurationLoader.connectorKeys
        for key in Set(keys) where Self.namesAFile(key) {
            #expect(toml.contains("\n\(key) = "), "the test configuration does not set \(key)")
        }
    }

    @Test func reloadOnChangeKey() throws {
        let folder = try ConfigTestFolder.withCredentials()
        let listener = """
            [[listener]]
            listen = "127.0.0.1:5684"
            backend = "127.0.0.1:5683"
            psk_file = "psk.txt"
            """
        #expect(try folder.parse(listener).daemon.reloadOnChange == false)
        #expect(try folder.parse("[daemon]\nreload_on_change = true\n" + listener).daemon.reloadOnChange)
        let error = folder.error("[daemon]\nreload_on_change = \"yes\"\n" + listener)
        #expect(error?.file == folder.configPath)
        #expect(error?.key == "daemon.reload_on_change")
        #expect(error?.cause.contains("expected a boolean") == true)
    }

    @Test func directoriesAndNamesWithLinkTargets() {
        let links = ["/etc/s/tls.crt": "/etc/s/..2024_01_01/tls.crt"]
        let set = ConfigWatchSet(
            files: ["/etc/d/dtls-proxy.toml", "/etc/s/tls.crt", "/etc/s/tls.key", "/etc/d/cookie"],
            resolve: { links[$0] })
        #expect(
            set.directories == [
                "/etc/d": ["dtls-proxy.toml", "cookie"], "/etc/s": ["tls.crt", "tls.key"],
                "/etc/s/..2024_01_01": ["tls.crt"],
            ])
        #expect(set.files.first == "/etc/d/cookie")
        #expect(ConfigWatchSet(files: ["/top"], resolve: { _ in nil }).directories == ["/": ["top"]])
    }

    @Test func eventsThatMatter() {
        let set = ConfigWatchSet(files: ["/etc/s/tls.crt", "/etc/d/dtls-proxy.toml"], resolve: { _ in nil })
        // A new file renamed over, a write closed, a removal, a mode change: each names the file.
        for mask in [DP_IN_MOVED_TO, DP_IN_CLOSE_WRITE, DP_IN_DELETE, DP_IN_ATTRIB, DP_IN_CREATE, DP_IN_MOVED_FROM] {
            #expect(set.change(inDirectory: "/etc/s", name: "tls.crt", mask: mask) == .file("/etc/s/tls.crt"))
        }
        // Kubernetes: ..data_tmp renamed onto ..data.
        #expect(set.change(inDirectory: "/etc/s", name: "..data", mask: DP_IN_MOVED_TO) == .file("/etc/s/..data"))
        #expect(set.change(inDirectory: "/etc/s", name: "..data_tmp", mask: DP_IN_CREATE) == nil)
        // Other files in a watched folder, a watched name in another folder, unknown watches.
        #expect(set.change(inDirectory: "/etc/s", name: "tls.crt.swp", mask: DP_IN_CLOSE_WRITE) == nil)
        #expect(set.change(inDirectory: "/etc/s", name: "dtls-proxy.toml", mask: DP_IN_CLOSE_WRITE) == nil)
        #expect(set.change(inDirectory: "", name: "tls.crt", mask: DP_IN_CLOSE_WRITE) == nil)
        // The folder itself.
        #expect(set.change(inDirectory: "/etc/s", name: "", mask: DP_IN_DELETE_SELF) == .directoryGone("/etc/s"))
        #expect(set.change(inDirectory: "/etc/s", name: "", mask: DP_IN_MOVE_SELF) == .directoryGone("/etc/s"))
        #expect(set.change(inDirectory: "/etc/s", name: "", mask: DP_IN_IGNORED) == nil)
        #expect(set.change(inDirectory: "", name: "", mask: DP_IN_Q_OVERFLOW) == .overflow)
        #expect(ConfigWatchSet.Change.directoryGone("/etc/s").description == "/etc/s (directory removed)")
    }

    @Test func debounceWaitsForQuietAndNoLongerThanLongest() {
        let ms: UInt64 = 1_000_000
        var debounce = ReloadDebounce(quiet: 500 * ms, longest: 2000 * ms)
        #expect(debounce.deadline == nil)
        #expect(debounce.takeIfDue(at: 10_000 * ms) == nil)
        debounce.record(.file("/a"), at: 1000 * ms)
        debounce.record(.file("/b"), at: 1200 * ms)
        debounce.record(.file("/a"), at: 1300 * ms)
        #expect(debounce.deadline == 1800 * ms)
        #expect(debounce.takeIfDue(at: 1799 * ms) == nil)
        #expect(debounce.takeIfDue(at: 1800 * ms) == ["/a", "/b"])
        #expect(debounce.deadline == nil, "one burst, one reload")

        // Events every 300 ms without end: due 2 s after the first all the same.
        for step in UInt64(0)..<10 { debounce.record(.file("/c"), at: (5000 + step * 300) * ms) }
        #expect(debounce.deadline == 7000 * ms)
        #expect(debounce.takeIfDue(at: 7000 * ms) == ["/c"])
    }

    @Test func debounceNamesAFewChangesAndCountsTheRest() {
        var debounce = ReloadDebounce()
        for index in 0..<(ReloadDebounce.namedLimit + 3) { debounce.record(.file("/f\(index)"), at: 1) }
        let changes = debounce.takeIfDue(at: UInt64.max / 2)
        #expect(changes?.count == ReloadDebounce.namedLimit + 1)
        #expect(changes?.last == "3 more")
    }
}
