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

/// `dtls-proxy-bench relay`: the lean plaintext relay used as the floor.
struct Relay: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve as the plaintext relay (the benchmark starts this itself).")

    @Option(help: "Address to receive on, 127.0.0.1:PORT.")
    var listen: String

    @Option(help: "Backend address, 127.0.0.1:PORT.")
    var backend: String

    func run() throws {
        guard let listen = Endpoint.parse(listen), let backend = Endpoint.parse(backend) else {
            throw ValidationError("addresses must be 127.0.0.1:PORT")
        }
        // bench_relay_run returns only when it cannot start; "listening" is printed just before.
        FileHandle.standardOutput.write(Data("relay listening on \(listen)\n".utf8))
        let result = bench_relay_run(listen.port, backend.port)
        throw BenchError("relay: cannot serve \(listen) (\(result)): \(errnoText())")
    }
}

/// `dtls-proxy-bench load`: one throughput and latency measurement against a
/// running target, for profiling it (perf, callgrind) under a steady load.
struct Load: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Load one running target (for profiling it).")

    @Option(help: "Target address, 127.0.0.1:PORT.")
    var target: String

    @Flag(help: "Speak DTLS 1.2 (a daemon or socat); without it, plain UDP.")
    var dtls = false

    @Option(help: "Sessions.")
    var sessions: Int = 16

    @Option(help: "Datagrams in flight per session.")
    var window: Int = 8

    @Option(help: "Payload bytes.")
    var payload: Int = 1200

    @Option(help: "Measured seconds.")
    var seconds: Double = 10

    @Option(
        help:
            "Seconds to stay idle between the handshakes and the load (the daemon frees idle sessions' buffers after 1-2 s)."
    )
    var idle: Double = 0

    func run() throws {
        guard let endpoint = Endpoint.parse(target) else { throw ValidationError("--target must be 127.0.0.1:PORT") }
        let clients: [EchoClient]
        if dtls {
            let context = try ClientContext()
            clients =
                HandshakeDriver(context: context, target: endpoint).establish(
                    count: sessions, concurrency: min(sessions, 64), seconds: 30
                ).clients
        } else {
            clients = try (0..<sessions).map { _ in try PlainClient(target: endpoint) }
        }
        defer { clients.forEach { $0.close() } }
        guard !clients.isEmpty else { throw BenchError("no session established with \(endpoint)") }
        if idle > 0 { usleep(UInt32(min(idle, 60) * 1e6)) }
        let result = LoadGenerator.throughput(
            clients: clients, window: window, payload: payload, warmup: 0.5, seconds: seconds)
        let latency = LoadGenerator.latency(client: clients[0], payload: payload, count: 20_000, seconds: 3)
        print(
            String(
                format:
                    "%d sessions × %d, %d B: %.0f echoes/s, %.0f Mbit/s each way, %d stalls; window 1: p50 %.1f µs p99 %.1f µs p99.9 %.1f µs",
                clients.count, window, payload, result.echoesPerSecond, result.megabitsPerSecond, result.stalls,
                latency.p50, latency.p99, latency.p999))
    }
}

/// `dtls-proxy-bench idle`: opens established sessions and leaves them idle,
/// for measuring a running daemon's memory per session (massif, malloc
/// statistics, RSS). Each session carries one 32-byte echo first unless
/// `--no-echo`, as in the memory figure of `run`; the server is never told the
/// sessions end (no close_notify), their source ports stay taken until exit.
struct Idle: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Open idle DTLS sessions on a running target and hold them (for memory profiling).")

    @Option(help: "Target address, 127.0.0.1:PORT.")
    var target: String

    @Option(help: "Sessions to open.")
    var sessions: Int = 1000

    @Option(help: "Seconds to hold them open after the last handshake.")
    var hold: Double = 30

    @Flag(inversion: .prefixedNo, help: "Send one echo on each session before leaving it idle.")
    var echo = true

    func run() throws {
        guard let endpoint = Endpoint.parse(target) else { throw ValidationError("--target must be 127.0.0.1:PORT") }
        let driver = HandshakeDriver(context: try ClientContext(), target: endpoint)
        let (sockets, outcome) = driver.openIdle(count: sessions, echo: echo, seconds: 600)
        defer { sockets.forEach { _ = close($0) } }
        FileHandle.standardOutput.write(
            Data("\(sockets.count) sessions open (\(outcome.failed) failed); holding \(hold) s\n".utf8))
        usleep(UInt32(min(hold, 3600) * 1e6))
    }
}
