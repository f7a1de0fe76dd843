import ArgumentParser
import CBenchRelay
import Foundation

/// `--target`, for the subcommands that work on a target someone else started.
struct TargetOption: ParsableArguments {
    @Option(help: "Target address, 127.0.0.1:PORT.")
    var target: String

    func endpoint() throws -> Endpoint {
        guard let endpoint = Endpoint.parse(target) else { throw ValidationError("--target must be 127.0.0.1:PORT") }
        return endpoint
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

    @Option(help: "A second backend, 127.0.0.1:PORT: SIGUSR1 moves every peer there, from a new source port.")
    var switchTo: String?

    func run() throws {
        guard let listen = Endpoint.parse(listen), let backend = Endpoint.parse(backend) else {
            throw ValidationError("addresses must be 127.0.0.1:PORT")
        }
        let second = try switchTo.map { text -> Endpoint in
            guard let endpoint = Endpoint.parse(text) else {
                throw ValidationError("--switch-to must be 127.0.0.1:PORT")
            }
            return endpoint
        }
        // The relay returns only when it cannot start; "listening" is printed just before.
        FileHandle.standardOutput.write(Data("relay listening on \(listen)\n".utf8))
        let result = bench_relay_run_switching(listen.port, backend.port, second?.port ?? 0)
        throw BenchError("relay: cannot serve \(listen) (\(result)): \(errnoText())")
    }
}

/// `dtls-proxy-bench load`: one throughput and latency measurement against a
/// running target, for profiling it (perf, callgrind) under a steady load.
struct Load: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Load one running target (for profiling it).")

    @OptionGroup var target: TargetOption

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
        let endpoint = try target.endpoint()
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

    @OptionGroup var target: TargetOption

    @Option(help: "Sessions to open.")
    var sessions: Int = 1000

    @Option(help: "Seconds to hold them open after the last handshake.")
    var hold: Double = 30

    @Flag(inversion: .prefixedNo, help: "Send one echo on each session before leaving it idle.")
    var echo = true

    func run() throws {
        let endpoint = try target.endpoint()
        let driver = HandshakeDriver(context: try ClientContext(), target: endpoint)
        let (sockets, outcome) = driver.openIdle(count: sessions, echo: echo, seconds: 600)
        defer { sockets.forEach { _ = close($0) } }
        FileHandle.standardOutput.write(
            Data("\(sockets.count) sessions open (\(outcome.failed) failed); holding \(hold) s\n".utf8))
        usleep(UInt32(min(hold, 3600) * 1e6))
    }
}
