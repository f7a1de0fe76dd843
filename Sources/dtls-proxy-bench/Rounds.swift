import Foundation

/// One target of `run`'s rounds: what it is and how one round measures it.
struct RoundTarget {
    var kind, name: String
    var measure: () throws -> TargetResult
}

/// One goal of the performance issue, from the rounds of one run: the daemon's
/// figure and the one it is held against, each as median and spread over the rounds.
struct GoalRow: Codable {
    var goal: String
    /// What the figures are (echoes/s, µs, CPU s / M datagrams, KiB).
    var unit: String
    var daemon, reference: Spread?
    /// What the reference is ("socat", "relay + 5 µs", …).
    var referenceName: String
    /// The daemon's median over the reference's median.
    var ratio: Double?
    /// What the ratio must be: at least (higher is better) or at most.
    var bound: Double
    var higherIsBetter: Bool
    /// Sessions the daemon and the reference admitted, where a cell asked for several (the lowest over the rounds).
    var admitted: String?
    var met: Bool
}

extension BenchRunner {
    /// Measures every target once per round, in the plan's order in odd rounds
    /// and the reverse in even ones, so that a drift of the machine over the
    /// run weighs on every target alike. The results per target kind, in round order.
    func measureInRounds(_ plan: [RoundTarget]) throws -> [String: [TargetResult]] {
        var measured: [String: [TargetResult]] = [:]
        for round in 1...rounds {
            let order = round % 2 == 1 ? plan : plan.reversed()
            for target in order {
                progress("round \(round) of \(rounds): \(target.name)")
                measured[target.kind, default: []].append(try target.measure())
            }
        }
        return measured
    }

    /// One target's rounds as one result: every figure its median over the
    /// rounds (a throughput run, a latency run: the round with the median rate
    /// or p50), the admitted counts their lowest.
    static func median(of rounds: [TargetResult]) -> TargetResult {
        guard var result = rounds.first else { return TargetResult(name: "?", kind: "?") }
        func middle(_ values: [Double?]) -> Double? { Spread(values.compactMap { $0 })?.median }
        func medianElement<T>(_ items: [T], by key: (T) -> Double) -> T? {
            let sorted = items.sorted { key($0) < key($1) }
            return sorted.isEmpty ? nil : sorted[(sorted.count - 1) / 2]
        }
        result.admitted = rounds.compactMap(\.admitted).min()
        result.bulk = medianElement(rounds.compactMap(\.bulk)) { $0.echoesPerSecond }
        result.latency = medianElement(rounds.compactMap(\.latency)) { $0.p50 }
        result.cpuSecondsPerMillionDatagrams = middle(rounds.map(\.cpuSecondsPerMillionDatagrams))
        result.handshakes8 = middle(rounds.map(\.handshakes8))
        result.handshakes64 = middle(rounds.map(\.handshakes64))
        result.resumedHandshakes8 = middle(rounds.map(\.resumedHandshakes8))
        result.handshakeCPUMicroseconds = middle(rounds.map(\.handshakeCPUMicroseconds))
        result.resumedCPUMicroseconds = middle(rounds.map(\.resumedCPUMicroseconds))
        result.handshakeFailures = rounds.compactMap(\.handshakeFailures).max()
        result.matrix = result.matrix?.map { first in
            let same = rounds.compactMap {
                $0.matrix?.first { $0.sessions == first.sessions && $0.payload == first.payload }
            }
            var cell = medianElement(same) { $0.run?.echoesPerSecond ?? 0 } ?? first
            cell.admitted = same.map(\.admitted).min() ?? first.admitted
            cell.cpuSecondsPerMillionDatagrams = middle(same.map(\.cpuSecondsPerMillionDatagrams))
            return cell
        }
        return result
    }

    /// The performance issue's goals, each from the rounds' figures.
    /// `daemonKind` picks the daemon's target (the default configuration, or
    /// the `busy_poll` one); `label` prefixes each goal's name.
    static func goals(
        _ measured: [String: [TargetResult]], daemonKind: String = "daemon", label: String = ""
    )
        -> [GoalRow]
    {
        let daemon = measured[daemonKind] ?? []
        let socat = measured["socat"] ?? []
        let relay = measured["relay"] ?? []
        func cell(_ result: TargetResult, _ sessions: Int, _ payload: Int) -> MatrixCell? {
            result.matrix?.first { $0.sessions == sessions && $0.payload == payload }
        }
        func row(
            _ goal: String, unit: String, daemon: [Double], reference: [Double], referenceName: String,
            bound: Double, higherIsBetter: Bool, admitted: String? = nil, alsoRequired: Bool = true
        ) -> GoalRow {
            let ours = Spread(daemon)
            let theirs = Spread(reference)
            var ratio: Double?
            if let ours, let theirs, theirs.median != 0 { ratio = ours.median / theirs.median }
            let within = ratio.map { higherIsBetter ? $0 >= bound : $0 <= bound } ?? false
            return GoalRow(
                goal: goal, unit: unit, daemon: ours, reference: theirs, referenceName: referenceName, ratio: ratio,
                bound: bound, higherIsBetter: higherIsBetter, admitted: admitted, met: within && alsoRequired)
        }
        var rows: [GoalRow] = []
        for sessions in BenchRunner.matrixSessions {
            for payload in BenchRunner.matrixPayloads {
                let ours = daemon.compactMap { cell($0, sessions, payload) }
                let theirs = socat.compactMap { cell($0, sessions, payload) }
                let oursAdmitted = ours.map(\.admitted).min() ?? 0
                let theirsAdmitted = theirs.map(\.admitted).min() ?? 0
                rows.append(
                    row(
                        "\(label)\(sessions)×8, \(payload) B", unit: "echoes/s",
                        daemon: ours.compactMap { $0.run?.echoesPerSecond },
                        reference: theirs.compactMap { $0.run?.echoesPerSecond }, referenceName: "socat", bound: 1.3,
                        higherIsBetter: true,
                        admitted: "\(oursAdmitted) / \(theirsAdmitted) of \(sessions)",
                        alsoRequired: oursAdmitted == sessions))
            }
        }
        let p50 = daemon.compactMap { $0.latency?.p50 }
        rows.append(
            row(
                "\(label)p50, window 1", unit: "µs", daemon: p50, reference: socat.compactMap { $0.latency?.p50 },
                referenceName: "socat", bound: 1, higherIsBetter: false))
        rows.append(
            row(
                "\(label)p50, window 1", unit: "µs", daemon: p50,
                reference: relay.compactMap { $0.latency.map { $0.p50 + 5 } },
                referenceName: "relay + 5 µs", bound: 1, higherIsBetter: false))
        rows.append(
            row(
                "\(label)CPU per datagram, 16×8, 1200 B", unit: "CPU s / M datagrams",
                daemon: daemon.compactMap(\.cpuSecondsPerMillionDatagrams),
                reference: relay.compactMap(\.cpuSecondsPerMillionDatagrams), referenceName: "relay", bound: 1.3,
                higherIsBetter: false))
        return rows
    }
}
