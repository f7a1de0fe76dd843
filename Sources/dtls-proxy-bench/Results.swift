import Foundation

/// Everything measured for one target (direct UDP, the plaintext relay, the daemon, socat).
struct TargetResult: Codable {
    var name: String
    var kind: String
    /// Sessions established for the 16-session run (socat admits few).
    var admitted: Int?
    var cipher: String?
    /// The daemon's sessions per event loop during the bulk run (SIGUSR1).
    var perLoop: String?
    var bulk: ThroughputResult?
    var latency: LatencyResult?
    /// 1, 16 and 256 sessions × 64 and 1200 bytes, window 8 (`bulk` is the 16 × 1200 B cell).
    var matrix: [MatrixCell]?
    var handshakes8: Double?
    var handshakes64: Double?
    var handshakeFailures: Int?
    /// Resumed handshakes per second at 8 concurrent (fresh source ports,
    /// `SSL_set_session`), counting only those `SSL_session_reused` confirms.
    var resumedHandshakes8: Double?
    /// Handshakes in the resumption run that offered a session but were full ones.
    var resumedRefused: Int?
    var resumedFailures: Int?
    /// Whether the first full handshake of the resumption run brought a session ticket.
    var ticketIssued: Bool?
    /// The target's CPU per handshake of the resumption run (µs).
    var resumedCPUMicroseconds: Double?
    /// The target's CPU per completed handshake at 8 concurrent (µs), cookie exchange,
    /// session set-up and logging included: what bounds its handshake rate per core.
    var handshakeCPUMicroseconds: Double?
    /// The target's CPU seconds per million datagrams relayed during the bulk run
    /// (one echo = two datagrams through the relay: one each way).
    var cpuSecondsPerMillionDatagrams: Double?
    var note: String?
}

/// Resident memory of an idle daemon holding many established sessions.
struct MemoryResult: Codable {
    var workers: Int
    var baselineKiB: Int
    var sessions: [Int]
    var residentKiB: [Int]
    var perSessionKiB: [Double]
    var perLoop: String
}

/// The daemon with one event loop and with two, same load, same run.
struct WorkersResult: Codable {
    var workers: Int
    var bulk: ThroughputResult
    var perLoop: String
    var cpuSecondsPerMillionDatagrams: Double
}

/// The machine the figures come from.
struct MachineInfo: Codable {
    var cpu: String
    var cores: Int
    var kernel, openssl, loadAverageAtStart, date: String

    static func current(openssl: String) -> MachineInfo {
        let cpuinfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let model =
            cpuinfo.split(separator: "\n").first { $0.hasPrefix("model name") }
            .map { $0.split(separator: ":", maxSplits: 1).last.map { $0.trimmingCharacters(in: .whitespaces) } ?? "" }
            ?? "unknown"
        let kernel = ((try? String(contentsOfFile: "/proc/sys/kernel/osrelease", encoding: .utf8)) ?? "")
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let load = ((try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8)) ?? "").split(separator: " ").prefix(
            3
        ).joined(separator: " ")
        let formatter = ISO8601DateFormatter()
        return MachineInfo(
            cpu: model, cores: ProcessInfo.processInfo.activeProcessorCount, kernel: kernel,
            openssl: openssl, loadAverageAtStart: load, date: formatter.string(from: Date()))
    }
}

/// One `dtls-proxy-bench` run.
struct BenchReport: Codable {
    var machine: MachineInfo
    var seconds: Double
    var payload: Int
    var targets: [TargetResult]
    var memory: MemoryResult?
    var workers: [WorkersResult]
    /// Two instances: a session forwarded between them against the same served directly.
    var cluster: ClusterResult?
    var notes: [String]
    /// Rounds of the target matrix; `targets` holds each figure's median over them.
    var rounds: Int
    /// The performance issue's goals, median and spread over the rounds.
    var goals: [GoalRow]
    /// Direct UDP's p50 at window 1 over the rounds: the machine's wake-up latency in this run.
    var directP50: Spread?

    /// The table printed at the end of a run (BENCHMARKS.md renders the same from the JSON).
    func table() -> String {
        func f(_ value: Double?, _ digits: Int = 0) -> String {
            guard let value else { return "–" }
            return String(format: "%.\(digits)f", value)
        }
        let direct = targets.first { $0.kind == "direct" }?.bulk?.echoesPerSecond
        var lines = [
            "target | admitted | echoes/s 16×8 1200 B | × direct | Mbit/s each way | p50 µs | p99 µs | p99.9 µs | hs/s @8 | hs/s @64 | resumed hs/s @8 | CPU µs / hs | CPU s / M dgram"
        ]
        lines.append(String(repeating: "-", count: lines[0].count))
        for target in targets {
            let ratio = direct.flatMap { d in target.bulk.map { $0.echoesPerSecond / d } }
            lines.append(
                [
                    target.name, target.admitted.map(String.init) ?? "–", f(target.bulk?.echoesPerSecond), f(ratio, 2),
                    f(target.bulk?.megabitsPerSecond), f(target.latency?.p50, 1), f(target.latency?.p99, 1),
                    f(target.latency?.p999, 1),
                    f(target.handshakes8), f(target.handshakes64), f(target.resumedHandshakes8),
                    f(target.handshakeCPUMicroseconds), f(target.cpuSecondsPerMillionDatagrams, 2),
                ].joined(separator: " | "))
        }
        lines += ["", "echoes/s (Mbit/s each way), window 8; [admitted of asked] where the target refused some"]
        let shapes = targets.compactMap(\.matrix).first?.map { ($0.sessions, $0.payload) } ?? []
        lines.append((["target"] + shapes.map { "\($0.0)×8 \($0.1) B" }).joined(separator: " | "))
        for target in targets {
            let cells = (target.matrix ?? []).map { cell -> String in
                guard let run = cell.run else { return "0 admitted" }
                let admitted = cell.admitted < cell.sessions ? " [\(cell.admitted) of \(cell.sessions)]" : ""
                return "\(f(run.echoesPerSecond)) (\(f(run.megabitsPerSecond)))\(admitted)"
            }
            lines.append(([target.name] + cells).joined(separator: " | "))
        }
        if let memory {
            lines.append("")
            for (index, count) in memory.sessions.enumerated() {
                lines.append(
                    "memory: \(count) idle sessions, workers=\(memory.workers): RSS \(memory.residentKiB[index]) KiB (baseline \(memory.baselineKiB) KiB) = \(f(memory.perSessionKiB[index], 1)) KiB per session"
                )
            }
            lines.append("memory: sessions per event loop at \(memory.sessions.last ?? 0): \(memory.perLoop)")
        }
        for run in workers {
            lines.append(
                "workers=\(run.workers): \(f(run.bulk.echoesPerSecond)) echoes/s 16×8 1200 B, sessions per loop \(run.perLoop), \(f(run.cpuSecondsPerMillionDatagrams, 2)) CPU s / M datagrams"
            )
        }
        if let cluster {
            lines.append(
                "cluster (tunnel, 16×8 1200 B): direct \(f(cluster.directEchoesPerSecond)) echoes/s at \(f(cluster.directCPU, 2)) CPU s / M datagrams (node 1); forwarded through node 2 \(f(cluster.forwardedEchoesPerSecond)) echoes/s at \(f(cluster.forwardedCPU, 2)) (both nodes; node 2 \(f(cluster.receivingNodeCPU, 2)))"
            )
        }
        for target in targets where target.perLoop != nil {
            lines.append("\(target.name): sessions per event loop in the 16-session run: \(target.perLoop ?? "")")
        }
        lines += ["", "goals (medians of \(rounds) alternating rounds, min–max in brackets):"]
        if let directP50 {
            lines.append(
                "direct UDP p50 at window 1 (the machine's wake-up latency): \(f(directP50.median, 1)) µs [\(f(directP50.min, 1))–\(f(directP50.max, 1))]"
            )
        }
        for goal in goals {
            func spread(_ value: Spread?) -> String {
                guard let value else { return "–" }
                let digits = value.median < 100 ? 1 : 0
                return "\(f(value.median, digits)) [\(f(value.min, digits))–\(f(value.max, digits))]"
            }
            let bound = "\(goal.higherIsBetter ? "≥" : "≤") \(f(goal.bound, 1))×"
            let admitted = goal.admitted.map { ", admitted \($0)" } ?? ""
            lines.append(
                "\(goal.goal) (\(goal.unit)): dtls-proxyd \(spread(goal.daemon)), \(goal.referenceName) \(spread(goal.reference)), ratio \(f(goal.ratio, 2)) (goal \(bound))\(admitted): \(goal.met ? "met" : "NOT met")"
            )
        }
        lines += notes.map { "note: \($0)" }
        return lines.joined(separator: "\n")
    }
}
