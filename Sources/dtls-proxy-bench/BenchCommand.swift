// dtls-proxy-bench: measures dtls-proxyd beside direct UDP, a lean plaintext
// relay and socat's DTLS server, in one run, on loopback.

import ArgumentParser
import CBenchRelay
import Foundation

@main
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dtls-proxy-bench",
        abstract: "Benchmark dtls-proxyd against direct UDP, a plaintext relay and socat (loopback only).",
        subcommands: [Run.self, Load.self, Relay.self, Idle.self],
        defaultSubcommand: Run.self
    )
}

/// `dtls-proxy-bench run`: the whole comparison; prints a table, writes JSON.
struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run every measurement and write the results.")

    @Option(help: "Folder with the release binaries dtls-proxyd and udp-echo.")
    var binaries: String = ".build/release"

    @Option(help: "Folder for the JSON results, logs and the throw-away certificate.")
    var output: String = "bench-results"

    @Option(help: "socat binary; empty or missing skips the socat target.")
    var socat: String = "/usr/bin/socat"

    @Option(help: "Measured seconds per throughput and handshake figure.")
    var seconds: Double = 3

    @Option(help: "Daemon event loops for the main runs (the workers comparison runs 1 and 2 regardless).")
    var workers: Int = 2

    @Option(parsing: .upToNextOption, help: "Idle sessions for the memory figure.")
    var memorySessions: [Int] = [1000, 10000]

    @Flag(help: "Skip the memory measurement (it opens 10 000 sessions).")
    var skipMemory = false

    func validate() throws {
        guard seconds > 0, seconds <= 30 else { throw ValidationError("--seconds must be in (0, 30]") }
        guard (1...64).contains(workers) else { throw ValidationError("--workers must be 1...64") }
        guard memorySessions.allSatisfy({ (1...15000).contains($0) }) else {
            throw ValidationError("--memory-sessions: 1...15000 each")
        }
    }

    func run() throws {
        let work = URL(fileURLWithPath: "\(output)/work").standardizedFileURL.path
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        let paths = BenchPaths(binaries: binaries, work: work, socat: socat)
        for binary in ["dtls-proxyd", "udp-echo"]
        where !FileManager.default.isExecutableFile(atPath: "\(binaries)/\(binary)") {
            throw BenchError("\(binaries)/\(binary) is missing: build with `swift build -c release` first")
        }
        try paths.makeCertificate()
        let runner = try BenchRunner(paths: paths, seconds: seconds, workers: workers)
        let report = try runner.runAll(memorySessions: skipMemory ? [] : memorySessions.sorted())
        print("")
        print(report.table())
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let path = "\(output)/latest.json"
        try encoder.encode(report).write(to: URL(fileURLWithPath: path))
        print("\nwrote \(path)")
    }
}
