import Foundation
import Logging
import NIOConcurrencyHelpers
import Testing

@testable import DTLSProxy

/// The watcher's thread against the real inotify, in a temporary folder: a
/// file renamed over and a Kubernetes-style `..data` swap each give one report;
/// files beside the watched ones give none; stop returns.
@Suite("reload_on_change: the inotify watcher")
struct ConfigFileWatcherTests {
    /// Reports the watcher made, in order.
    final class Reports: Sendable {
        private let box = NIOLockedValueBox<[[String]]>([])
        func add(_ changes: [String]) { box.withLockedValue { $0.append(changes) } }
        var all: [[String]] { box.withLockedValue { $0 } }

        /// Waits up to `seconds` for at least `count` reports.
        func wait(for count: Int, seconds: Double) async throws -> [[String]] {
            let deadline = Date().addingTimeInterval(seconds)
            while all.count < count, Date() < deadline { try await Task.sleep(for: .milliseconds(50)) }
            return all
        }
    }

    private static func start(_ reports: Reports) throws -> ConfigFileWatcher {
        let watcher = ConfigFileWatcher.start(logger: Logger(label: "test")) { reports.add($0) }
        return try #require(watcher)
    }

    /// A folder holding `server.pem` ("old") and a watcher on it, its watch in place.
    private static func watchingACertificate() async throws -> (ConfigTestFolder, String, Reports, ConfigFileWatcher) {
        let folder = try ConfigTestFolder()
        let cert = try folder.write("server.pem", "old")
        let reports = Reports()
        let watcher = try start(reports)
        watcher.watch([cert])
        // watch(_:) hands the set to the thread; give it a moment to add the watch.
        try await Task.sleep(for: .milliseconds(200))
        return (folder, cert, reports, watcher)
    }

    @Test func aFileRenamedOverIsOneReport() async throws {
        let (folder, cert, reports, watcher) = try await Self.watchingACertificate()
        try folder.write("unrelated.txt", "not watched")
        try folder.write("server.pem.new", "new")
        try FileManager.default.removeItem(atPath: cert)
        try FileManager.default.moveItem(atPath: folder.path + "/server.pem.new", toPath: cert)
        let seen = try await reports.wait(for: 1, seconds: 5)
        #expect(seen == [[cert]])
        try await Task.sleep(for: .milliseconds(800))
        #expect(reports.all.count == 1, "one burst, one report")
        await watcher.stop()
    }

    @Test func aKubernetesDataSwapIsOneReport() async throws {
        let folder = try ConfigTestFolder()
        let manager = FileManager.default
        try folder.write("..2024_01/tls.crt", "old")
        try manager.createSymbolicLink(atPath: folder.path + "/..data", withDestinationPath: "..2024_01")
        try manager.createSymbolicLink(atPath: folder.path + "/tls.crt", withDestinationPath: "..data/tls.crt")
        let reports = Reports()
        let watcher = try Self.start(reports)
        watcher.watch([folder.path + "/tls.crt"])
        try await Task.sleep(for: .milliseconds(200))
        // What the kubelet does: a new timestamped folder, a new link to it renamed onto ..data, the old folder removed.
        try folder.write("..2024_02/tls.crt", "new")
        try manager.createSymbolicLink(atPath: folder.path + "/..data_tmp", withDestinationPath: "..2024_02")
        #expect(rename(folder.path + "/..data_tmp", folder.path + "/..data") == 0)
        try manager.removeItem(atPath: folder.path + "/..2024_01")
        let seen = try await reports.wait(for: 1, seconds: 5)
        #expect(seen.count == 1)
        #expect(seen.first?.contains(folder.path + "/..data") == true, "\(seen)")
        try await Task.sleep(for: .milliseconds(800))
        #expect(reports.all.count == 1, "one update, one report")

        // The next set (after the reload) watches the new target folder; an edit there is seen.
        watcher.watch([folder.path + "/tls.crt"])
        try await Task.sleep(for: .milliseconds(200))
        try folder.write("..2024_02/tls.crt", "edited in place")
        let again = try await reports.wait(for: 2, seconds: 5)
        #expect(again.count == 2)
        #expect(again.last?.contains(folder.path + "/..2024_02/tls.crt") == true, "\(again)")
        await watcher.stop()
    }

    @Test func anEmptySetReportsNothingAndStopReturns() async throws {
        let (folder, _, reports, watcher) = try await Self.watchingACertificate()
        watcher.watch([])
        try await Task.sleep(for: .milliseconds(200))
        try folder.write("server.pem", "new")
        try await Task.sleep(for: .milliseconds(900))
        #expect(reports.all.isEmpty)
        await watcher.stop()
        await watcher.stop()
    }
}
