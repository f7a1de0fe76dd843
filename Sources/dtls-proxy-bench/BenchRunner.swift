import COpenSSL
import Foundation

/// Starts each target in front of one echo backend, measures it, stops it.
/// Every process it starts is stopped before it returns, on success or error.
final class BenchRunner {
    let paths: BenchPaths
    let seconds: Double
    let workers: Int
    /// Rounds of the target matrix in `run` (each target once per round, the order alternating).
    var rounds = 5
    /// When set, a second daemon target runs with this `busy_poll` (a duration, "100us"); nil: none.
    var busyPoll: String?
    static let busyPollKind = "daemon-busy-poll"
    let payload = 1200
    let context: ClientContext
    var notes: [String] = []

    init(paths: BenchPaths, seconds: Double, workers: Int) throws {
        self.paths = paths
        self.seconds = seconds
        self.workers = workers
        context = try ClientContext()
    }

    func runAll(memorySessions: [Int]) throws -> BenchReport {
        let machine = machineInfo()
        let started = monotonicNanoseconds()
        let (echo, backendEndpoint) = try startEchoBackend()
        defer { echo.stop() }

        let relayEndpoint = Endpoint(port: Endpoint.freePort())
        let relay = try Child(
            name: "relay", executable: "/proc/self/exe",
            arguments: ["relay", "--listen", "\(relayEndpoint)", "--backend", "\(backendEndpoint)"],
            logDirectory: paths.work)
        defer { relay.stop() }
        try relay.waitForLog("listening", seconds: 10)
        var socat: Child?
        let socatEndpoint = Endpoint(port: Endpoint.freePort())
        if FileManager.default.isExecutableFile(atPath: paths.socat) {
            socat = try Child(
                name: "socat", executable: paths.socat,
                arguments: [
                    "OPENSSL-DTLS-SERVER:\(socatEndpoint.port),bind=127.0.0.1,reuseaddr,cert=\(paths.certificate),key=\(paths.key),verify=0,fork",
                    "UDP:\(backendEndpoint)",
                ], logDirectory: paths.work)
            usleep(300_000)  // socat logs nothing when it is ready: give it time to bind
        } else {
            notes.append("socat not found at \(paths.socat): its row is missing")
        }
        defer { socat?.stop() }

        var plan: [RoundTarget] = [
            RoundTarget(kind: "direct", name: "direct UDP") {
                try self.measurePlain(name: "direct UDP", kind: "direct", target: backendEndpoint, child: nil)
            },
            RoundTarget(kind: "relay", name: "plaintext relay") {
                try self.measurePlain(name: "plaintext relay", kind: "relay", target: relayEndpoint, child: relay)
            },
            daemonTarget(kind: "daemon", name: "dtls-proxyd", backend: backendEndpoint),
        ]
        if let busyPoll {
            plan.append(
                daemonTarget(
                    kind: Self.busyPollKind, name: "dtls-proxyd, busy_poll \(busyPoll)", backend: backendEndpoint,
                    busyPoll: busyPoll))
        }
        if let socat {
            plan.append(
                RoundTarget(kind: "socat", name: "socat") {
                    var result = try self.measureDTLS(
                        name: "socat", kind: "socat", target: socatEndpoint, child: socat, admitSeconds: 10)
                    result.note = "socat forks one process per client; CPU includes its live children"
                    return result
                })
        }
        let measured = try measureInRounds(plan)
        let targets = plan.map { Self.median(of: measured[$0.kind] ?? []) }
        var goals = Self.goals(measured)
        if let busyPoll {
            goals += Self.goals(measured, daemonKind: Self.busyPollKind, label: "busy_poll \(busyPoll): ")
        }

        var workerRuns: [WorkersResult] = []
        for count in [1, 2] {
            progress("workers comparison: workers=\(count)")
            workerRuns.append(
                try withDaemon(workers: count, backend: backendEndpoint) { daemon, endpoint in
                    let (clients, _) = HandshakeDriver(context: context, target: endpoint).establish(
                        count: 16, concurrency: 16, seconds: 10)
                    defer { clients.forEach { $0.close() } }
                    let (bulk, cpu) = daemon.measuringCPU {
                        LoadGenerator.throughput(
                            clients: clients, window: 8, payload: payload, warmup: 0.5, seconds: seconds)
                    }
                    let perLoop = try sessionsPerLoop(daemon)
                    return WorkersResult(
                        workers: count, bulk: bulk, perLoop: perLoop,
                        cpuSecondsPerMillionDatagrams: bulk.cpuSecondsPerMillionDatagrams(cpuSeconds: cpu))
                })
        }

        progress("cluster: a tunnel's 16 sessions served by node 1, then forwarded through node 2")
        let cluster = try measureCluster(backend: backendEndpoint)

        var memory: MemoryResult?
        if !memorySessions.isEmpty {
            progress("memory: \(memorySessions.map(String.init).joined(separator: ", ")) idle sessions")
            memory = try withDaemon(workers: workers, backend: backendEndpoint) { daemon, endpoint in
                try measureMemory(daemon: daemon, target: endpoint, counts: memorySessions)
            }
        }
        noteSharedCores()
        return BenchReport(
            machine: machine, seconds: Double(monotonicNanoseconds() - started) / 1e9, payload: payload,
            targets: targets, memory: memory, workers: workerRuns, cluster: cluster, notes: notes,
            rounds: rounds, goals: goals,
            directP50: Spread((measured["direct"] ?? []).compactMap { $0.latency?.p50 }))
    }

    /// The daemon as a round target: a fresh daemon each round, as a fresh
    /// socat child serves each client; `busyPoll` sets its `busy_poll`.
    private func daemonTarget(kind: String, name: String, backend: Endpoint, busyPoll: String? = nil) -> RoundTarget {
        RoundTarget(kind: kind, name: name) {
            try self.withDaemon(workers: self.workers, backend: backend, busyPoll: busyPoll) { daemon, endpoint in
                try self.measureDTLS(name: name, kind: kind, target: endpoint, child: daemon, admitSeconds: 10)
            }
        }
    }

    // MARK: - The run around the targets

    func machineInfo() -> MachineInfo {
        MachineInfo.current(openssl: String(cString: OpenSSL_version(OPENSSL_VERSION)))
    }

    /// The bundled udp-echo (vector reads) that every target stands in front of; the caller stops it.
    func startEchoBackend() throws -> (child: Child, endpoint: Endpoint) {
        let endpoint = Endpoint(port: Endpoint.freePort())
        let echo = try Child(
            name: "udp-echo", executable: "\(paths.binaries)/udp-echo",
            arguments: ["--listen", "\(endpoint)", "--vector-reads", "32"], logDirectory: paths.work)
        do {
            try echo.waitForLog("listening", seconds: 10)
        } catch {
            echo.stop()
            throw error
        }
        return (echo, endpoint)
    }

    func noteSharedCores() {
        if ProcessInfo.processInfo.activeProcessorCount <= 2 {
            notes.append(
                "the load generator (one thread) shares the \(ProcessInfo.processInfo.activeProcessorCount) cores with the target and the echo backend"
            )
        }
    }

    // MARK: - Targets

    /// `sessions` and `payloads` narrow the matrix (the comparison's direct UDP runs only its headline cell).
    func measurePlain(
        name: String, kind: String, target: Endpoint, child: Child?,
        sessions: [Int] = BenchRunner.matrixSessions, payloads: [Int] = BenchRunner.matrixPayloads
    ) throws -> TargetResult {
        var result = TargetResult(name: name, kind: kind)
        try runMatrix(into: &result, child: child, sessions: sessions, payloads: payloads) { count in
            try (0..<count).map { _ in try PlainClient(target: target) }
        }
        return result
    }

    func measureDTLS(
        name: String, kind: String, target: Endpoint, child: Child, admitSeconds: Double
    ) throws -> TargetResult {
        var result = TargetResult(name: name, kind: kind)
        let driver = HandshakeDriver(context: context, target: target)
        var cipher: String?
        var perLoop: String?
        try runMatrix(
            into: &result, child: child,
            open: { count in
                let (clients, outcome) = driver.establish(
                    count: count, concurrency: min(count, 64), seconds: admitSeconds)
                if cipher == nil, !clients.isEmpty { cipher = outcome.cipher }
                return clients
            },
            atSixteen: {
                if kind == "daemon" { perLoop = try sessionsPerLoop(child) }
            })
        result.cipher = cipher
        result.perLoop = perLoop
        let threads = ProcessInfo.processInfo.activeProcessorCount
        // Full handshakes, 8 then 64 in flight; the CPU per handshake comes from the 8 run.
        let (at8, cpu8) = child.measuringCPU { driver.rate(concurrency: 8, seconds: seconds, threads: threads) }
        let at64 = driver.rate(concurrency: 64, seconds: seconds, threads: threads)
        result.handshakes8 = at8.rate
        result.handshakes64 = at64.rate
        result.handshakeFailures = at8.failed + at64.failed
        if at8.completed > 0 { result.handshakeCPUMicroseconds = cpu8 / Double(at8.completed) * 1e6 }
        // Resumption: 8 in flight, each from a fresh source port (cookie exchange
        // included), offering the SSL_SESSION of one earlier full handshake.
        let (resumed, cpu) = child.measuringCPU {
            driver.rate(concurrency: 8, seconds: seconds, threads: threads, resuming: true)
        }
        result.resumedHandshakes8 = resumed.rate
        result.resumedRefused = resumed.notResumed
        result.resumedFailures = resumed.failed
        result.ticketIssued = resumed.ticketIssued
        // Per handshake the run made (resumed or refused: both cost the target a
        // handshake), reported only when at least one resumption succeeded.
        if resumed.completed > 0 {
            result.resumedCPUMicroseconds = cpu / Double(resumed.completed + resumed.notResumed) * 1e6
        }
        if resumed.notResumed > 0 || resumed.completed == 0 {
            let ticket =
                resumed.ticketIssued.map { $0 ? "a session ticket was issued" : "no session ticket was issued" }
                ?? "no first handshake"
            notes.append(
                "\(name): resumption: \(resumed.completed) resumed, \(resumed.notResumed) offered a session but got a full handshake, \(resumed.failed) failed; \(ticket)"
            )
        }
        return result
    }

    // MARK: - The daemon

    /// Starts `build`'s dtls-proxyd (this run's own unless told) in front of `backend`,
    /// runs `body` once it is ready, then stops it.
    func withDaemon<T>(
        workers: Int, backend: Endpoint, build: BuildUnderTest? = nil, busyPoll: String? = nil,
        _ body: (Child, Endpoint) throws -> T
    ) throws -> T {
        let build = build ?? BuildUnderTest(label: "dtls-proxyd", binaries: paths.binaries, tag: "")
        let endpoint = Endpoint(port: Endpoint.freePort())
        let config = try paths.writeDaemonConfig(
            workers: workers, listen: endpoint, backend: backend, tag: build.tag, busyPoll: busyPoll)
        let daemon = try Child(
            name: "dtls-proxyd-w\(workers)\(build.tag)", executable: "\(build.binaries)/dtls-proxyd",
            arguments: ["--config", config], logDirectory: paths.work)
        defer { daemon.stop(grace: 8) }
        try daemon.waitForLog("ready:", seconds: 15)
        return try body(daemon, endpoint)
    }

    /// Asks the daemon (SIGUSR1) for its per-loop session counts and reads them from its log.
    private func sessionsPerLoop(_ daemon: Child) throws -> String {
        let marker = "sessions per event loop: "
        let before = daemon.log.components(separatedBy: marker).count
        kill(daemon.pid, SIGUSR1)
        for _ in 0..<100 {
            let parts = daemon.log.components(separatedBy: marker)
            if parts.count > before, let line = parts.last?.split(separator: "\n").first {
                return String(line)
            }
            usleep(20_000)
        }
        throw BenchError("the daemon did not log its per-loop session counts after SIGUSR1")
    }

    func measureMemory(daemon: Child, target: Endpoint, counts: [Int]) throws -> MemoryResult {
        usleep(500_000)
        let baseline = daemon.residentKiB
        var sockets: [Int32] = []
        defer { sockets.forEach { _ = close($0) } }
        var resident: [Int] = []
        let driver = HandshakeDriver(context: context, target: target)
        for count in counts {
            // One echo per session first: the daemon frees an idle session's
            // record buffers only once its peer has sent application data.
            let (opened, run) = driver.openIdle(count: count - sockets.count, echo: true, seconds: 120)
            sockets += opened
            if run.failed > 0 {
                notes.append("memory: \(run.failed) handshakes failed while opening \(count) sessions")
            }
            // Long enough for the daemon's idle-buffer sweep to pass every session once.
            usleep(3_000_000)
            resident.append(daemon.residentKiB)
        }
        let perLoop = try sessionsPerLoop(daemon)
        let held = perLoop.split(separator: ",").compactMap { Int($0) }.reduce(0, +)
        if held != sockets.count {
            notes.append("memory: the daemon holds \(held) sessions, \(sockets.count) were opened")
        }
        return MemoryResult(
            workers: workers, baselineKiB: baseline, sessions: counts, residentKiB: resident,
            perSessionKiB: zip(counts, resident).map { Double($1 - baseline) / Double($0) }, perLoop: perLoop)
    }

    func progress(_ text: String) {
        FileHandle.standardError.write(Data("dtls-proxy-bench: \(text)\n".utf8))
    }
}
