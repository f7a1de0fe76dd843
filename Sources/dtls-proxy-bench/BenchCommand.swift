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
    static let configuration = CommandConfiguration(
        abstract: "Run every measurement and write the results (or compare two builds' daemons).")

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

    @Option(
        help: ArgumentHelp(
            "Folder with a second build's dtls-proxyd, the baseline, to compare with this one's.",
            discussion: """
                The run then measures only the daemons: in each round direct UDP (16×8, 1200 B and the round \
                trip), then the two daemons one after the other, their order alternating from round to round. \
                It writes compare.json and compare.md (medians and spread per figure) instead of latest.json.
                """))
    var baselineBinaries: String?

    @Option(
        help:
            "Rounds: every target (or, with --baseline-binaries, both daemons) once per round, the order alternating; figures are medians over the rounds."
    )
    var rounds: Int = 5

    @Option(
        help:
            "A second daemon target with this busy_poll (e.g. 100us), measured in the same rounds, with goal rows of its own; empty: none."
    )
    var busyPoll = "100us"

    @Option(help: "What the comparison calls this build.")
    var label = "current"

    @Option(help: "What the comparison calls the baseline build.")
    var baselineLabel = "baseline"

    func validate() throws {
        guard seconds > 0, seconds <= 30 else { throw ValidationError("--seconds must be in (0, 30]") }
        guard (1...64).contains(workers) else { throw ValidationError("--workers must be 1...64") }
        guard memorySessions.allSatisfy({ (1...15000).contains($0) }) else {
            throw ValidationError("--memory-sessions: 1...15000 each")
        }
        guard (1...50).contains(rounds) else { throw ValidationError("--rounds must be 1...50") }
        // The daemon checks the duration itself, and names what is wrong with it, when it starts.
        if !busyPoll.isEmpty, busyPoll.first?.isNumber != true {
            throw ValidationError("--busy-poll: \"\(busyPoll)\" is not a duration such as 100us")
        }
        guard label != baselineLabel else { throw ValidationError("--label and --baseline-label must differ") }
    }

    func run() throws {
        let work = URL(fileURLWithPath: "\(output)/work").standardizedFileURL.path
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        let paths = BenchPaths(binaries: binaries, work: work, socat: socat)
        try Self.requireExecutables(["dtls-proxyd", "udp-echo"], in: binaries)
        if let baselineBinaries { try Self.requireExecutables(["dtls-proxyd"], in: baselineBinaries) }
        try paths.makeCertificate()
        let runner = try BenchRunner(paths: paths, seconds: seconds, workers: workers)
        runner.rounds = rounds
        runner.busyPoll = busyPoll.isEmpty ? nil : busyPoll
        let memory = skipMemory ? [] : memorySessions.sorted()
        guard let baselineBinaries else {
            let report = try runner.runAll(memorySessions: memory)
            print("")
            print(report.table())
            try Self.write(report, to: "\(output)/latest.json")
            print("\nwrote \(output)/latest.json")
            return
        }
        let report = try runner.runComparison(
            current: BuildUnderTest(label: label, binaries: binaries, tag: ""),
            baseline: BuildUnderTest(label: baselineLabel, binaries: baselineBinaries, tag: "-baseline"),
            rounds: rounds, memorySessions: memory)
        let markdown = report.markdown()
        print("")
        print(markdown)
        try Self.write(report, to: "\(output)/compare.json")
        try markdown.write(toFile: "\(output)/compare.md", atomically: true, encoding: .utf8)
        print("\nwrote \(output)/compare.json and \(output)/compare.md")
    }

    private static func requireExecutables(_ names: [String], in folder: String) throws {
        for name in names where !FileManager.default.isExecutableFile(atPath: "\(folder)/\(name)") {
            throw BenchError("\(folder)/\(name) is missing: build with `swift build -c release` first")
        }
    }

    private static func write(_ value: some Encodable, to path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(value).write(to: URL(fileURLWithPath: path))
    }
}
