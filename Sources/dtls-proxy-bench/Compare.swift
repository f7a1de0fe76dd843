import Foundation

/// One build of dtls-proxyd in a comparison: what the report calls it, where its binaries
/// are, and the tag that tells its daemon's log and configuration file apart from the other
/// build's in the work folder.
struct BuildUnderTest: Codable {
    var label, binaries, tag: String
}

/// What one round measured of one build's daemon; `position` is 1 when it ran first of the
/// two daemons in its round, 2 when second.
struct BuildRound: Codable {
    var round, position: Int
    var daemon: TargetResult
    var memory: MemoryResult?
}

/// A figure over the rounds of one build: the median and the spread around it.
struct Spread: Codable {
    var values: [Double]
    var median: Double
    var min: Double
    var max: Double

    init?(_ values: [Double]) {
        guard !values.isEmpty else { return nil }
        let sorted = values.sorted()
        let middle = sorted.count / 2
        self.values = values
        median = sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
        min = sorted[0]
        max = sorted[sorted.count - 1]
    }

    /// (max − min) / median, in per cent.
    var rangePercent: Double? { median != 0 ? (max - min) / abs(median) * 100 : nil }

    func overlaps(_ other: Spread) -> Bool { min <= other.max && other.min <= max }
}

/// One figure of the comparison, both builds.
struct ComparedFigure: Codable {
    var name: String
    /// Throughput: higher is better; latency, CPU and memory: lower is.
    var higherIsBetter: Bool
    var baseline, current: Spread?
    /// The current build's median over the baseline's.
    var ratio: Double?
}

/// A `dtls-proxy-bench run --baseline-binaries` run: two builds' daemons in alternating rounds.
struct ComparisonReport: Codable {
    var machine: MachineInfo
    /// How long the run took, and `--seconds` (measured seconds per throughput and handshake figure).
    var seconds, secondsPerFigure: Double
    var workers: Int
    var current, baseline: BuildUnderTest
    /// Direct UDP in each round (16×8, 1200 B and the round trip), against the same echo backend.
    var direct: [TargetResult]
    var directP50, directEchoesPerSecond: Spread?
    var currentRounds, baselineRounds: [BuildRound]
    var figures: [ComparedFigure]
    var notes: [String]
}

extension BenchRunner {
    /// Direct UDP, then both daemons in each of `rounds` rounds: the current build first in odd
    /// rounds, the baseline first in even ones, so that a drift of the machine over the run
    /// weighs on both alike. Each daemon is a fresh process, measured as `run` measures it
    /// (the echo matrix, the round trip, handshakes) and, unless `memorySessions` is empty,
    /// a second fresh one for the memory figure.
    func runComparison(
        current: BuildUnderTest, baseline: BuildUnderTest, rounds: Int, memorySessions: [Int]
    ) throws -> ComparisonReport {
        let machine = machineInfo()
        let started = monotonicNanoseconds()
        let (echo, backend) = try startEchoBackend()
        defer { echo.stop() }
        var direct: [TargetResult] = []
        var measured: [String: [BuildRound]] = [current.tag: [], baseline.tag: []]
        for round in 1...rounds {
            progress("round \(round) of \(rounds): direct UDP → udp-echo \(backend)")
            direct.append(
                try measurePlain(
                    name: "direct UDP", kind: "direct", target: backend, child: nil, sessions: [16],
                    payloads: [payload]))
            let order = round % 2 == 1 ? [current, baseline] : [baseline, current]
            for (index, build) in order.enumerated() {
                progress("round \(round) of \(rounds): dtls-proxyd \(build.label), workers=\(workers)")
                let daemon = try withDaemon(workers: workers, backend: backend, build: build) { child, endpoint in
                    try measureDTLS(
                        name: "dtls-proxyd \(build.label)", kind: "daemon", target: endpoint, child: child,
                        admitSeconds: 10)
                }
                var memory: MemoryResult?
                if !memorySessions.isEmpty {
                    progress("round \(round) of \(rounds): dtls-proxyd \(build.label), memory")
                    memory = try withDaemon(workers: workers, backend: backend, build: build) { child, endpoint in
                        try measureMemory(daemon: child, target: endpoint, counts: memorySessions)
                    }
                }
                measured[build.tag, default: []].append(
                    BuildRound(round: round, position: index + 1, daemon: daemon, memory: memory))
            }
        }
        noteSharedCores()
        let currentRounds = measured[current.tag] ?? []
        let baselineRounds = measured[baseline.tag] ?? []
        let directByRound = Dictionary(uniqueKeysWithValues: direct.enumerated().map { ($0.offset + 1, $0.element) })
        let figures = Self.figureDefinitions(memorySessions: memorySessions).map { definition in
            let spreads = [baselineRounds, currentRounds].map { rounds in
                Spread(rounds.compactMap { definition.value($0, directByRound[$0.round]) })
            }
            var ratio: Double?
            if let base = spreads[0], let now = spreads[1], base.median != 0 { ratio = now.median / base.median }
            return ComparedFigure(
                name: definition.name, higherIsBetter: definition.higherIsBetter, baseline: spreads[0],
                current: spreads[1], ratio: ratio)
        }
        return ComparisonReport(
            machine: machine, seconds: Double(monotonicNanoseconds() - started) / 1e9, secondsPerFigure: seconds,
            workers: workers, current: current, baseline: baseline, direct: direct,
            directP50: Spread(direct.compactMap { $0.latency?.p50 }),
            directEchoesPerSecond: Spread(direct.compactMap { $0.bulk?.echoesPerSecond }),
            currentRounds: currentRounds, baselineRounds: baselineRounds, figures: figures, notes: notes)
    }

    /// A figure read off one build's round (with that round's direct UDP run).
    struct FigureDefinition {
        var name: String
        var higherIsBetter: Bool
        var value: (BuildRound, TargetResult?) -> Double?
    }

    /// The figures compared, in the order of the report: the echo matrix, the round trip,
    /// handshakes, CPU, and memory per idle session when it was measured.
    static func figureDefinitions(memorySessions: [Int]) -> [FigureDefinition] {
        var definitions: [FigureDefinition] = []
        for sessions in matrixSessions {
            for payload in matrixPayloads {
                definitions.append(
                    FigureDefinition(name: "echoes/s \(sessions)×\(window), \(payload) B", higherIsBetter: true) {
                        round, _ in
                        round.daemon.matrix?.first { $0.sessions == sessions && $0.payload == payload }?.run?
                            .echoesPerSecond
                    })
            }
        }
        definitions += [
            FigureDefinition(name: "round trip p50 µs", higherIsBetter: false) { round, _ in
                round.daemon.latency?.p50
            },
            FigureDefinition(name: "round trip p50 − direct UDP p50 (same round) µs", higherIsBetter: false) {
                round, direct in
                guard let p50 = round.daemon.latency?.p50, let floor = direct?.latency?.p50 else { return nil }
                return p50 - floor
            },
            FigureDefinition(name: "round trip p99 µs", higherIsBetter: false) { round, _ in
                round.daemon.latency?.p99
            },
            FigureDefinition(name: "round trip p99.9 µs", higherIsBetter: false) { round, _ in
                round.daemon.latency?.p999
            },
            FigureDefinition(name: "full handshakes/s @8", higherIsBetter: true) { round, _ in
                round.daemon.handshakes8
            },
            FigureDefinition(name: "full handshakes/s @64", higherIsBetter: true) { round, _ in
                round.daemon.handshakes64
            },
            FigureDefinition(name: "resumed handshakes/s @8", higherIsBetter: true) { round, _ in
                round.daemon.resumedHandshakes8
            },
            FigureDefinition(name: "CPU µs / full handshake", higherIsBetter: false) { round, _ in
                round.daemon.handshakeCPUMicroseconds
            },
            FigureDefinition(name: "CPU s / M datagrams, 16×8, 1200 B", higherIsBetter: false) { round, _ in
                round.daemon.cpuSecondsPerMillionDatagrams
            },
        ]
        for (index, count) in memorySessions.enumerated() {
            definitions.append(
                FigureDefinition(name: "KiB per idle session at \(count)", higherIsBetter: false) { round, _ in
                    round.memory.flatMap { index < $0.perSessionKiB.count ? $0.perSessionKiB[index] : nil }
                })
        }
        return definitions
    }
}
