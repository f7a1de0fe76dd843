import Foundation

/// One cell of the echo matrix: `sessions` asked for, `admitted` of them
/// established, each keeping `window` datagrams of `payload` bytes in flight.
struct MatrixCell: Codable {
    var sessions, payload, window: Int
    /// Sessions the target let in (socat admits few); the run uses only these.
    var admitted: Int
    /// Nil when no session was admitted.
    var run: ThroughputResult?
    /// The target's CPU seconds per million datagrams relayed in this cell (nil for direct UDP).
    var cpuSecondsPerMillionDatagrams: Double?
}

/// The echo matrix the performance issue asks for: 1, 16 and 256 sessions ×
/// 64 and 1200 bytes, window 8, for every target, over one set of sessions per
/// session count (both payloads run on the same sessions).
extension BenchRunner {
    static let matrixSessions = [1, 16, 256]
    static let matrixPayloads = [64, 1200]
    static let window = 8

    /// Fills `result.matrix`, and from the 16-session set `bulk` (16×8, 1200 B,
    /// 0.5 s warm-up), `latency` (window 1 on the first session), `admitted`
    /// and the CPU per datagram of the bulk run. `open` establishes up to the
    /// count it is given and may return fewer (socat); `atSixteen` runs with the
    /// 16 sessions still open, after the bulk run (the daemon's per-loop counts).
    /// `sessions` and `payloads` are the matrix's rows and columns.
    func runMatrix(
        into result: inout TargetResult, child: Child?,
        sessions: [Int] = BenchRunner.matrixSessions, payloads: [Int] = BenchRunner.matrixPayloads,
        open: (Int) throws -> [EchoClient], atSixteen: () throws -> Void = {}
    ) throws {
        var cells: [MatrixCell] = []
        for count in sessions {
            let clients = try open(count)
            defer { clients.forEach { $0.close() } }
            if clients.count < count {
                notes.append(
                    "\(result.name): \(clients.count) of \(count) sessions admitted; the \(count)-session cells use those"
                )
            }
            // 1200 B first on the 16-session set: the headline figure and the
            // latency run come right after the handshakes, as in earlier runs.
            for payload in payloads.sorted(by: { count == 16 ? $0 > $1 : $0 < $1 }) {
                guard !clients.isEmpty else {
                    cells.append(MatrixCell(sessions: count, payload: payload, window: Self.window, admitted: 0))
                    continue
                }
                // `payload` here is the cell's; the runner's (1200 B) marks the headline cell.
                let headline = count == 16 && payload == self.payload
                let cell = measureCell(
                    clients, asked: count, payload: payload, child: child, warmup: headline ? 0.5 : 0.3)
                cells.append(cell)
                if headline {
                    result.admitted = clients.count
                    result.bulk = cell.run
                    result.cpuSecondsPerMillionDatagrams = cell.cpuSecondsPerMillionDatagrams
                    try atSixteen()
                    result.latency = LoadGenerator.latency(
                        client: clients[0], payload: payload, count: 50_000, seconds: seconds)
                }
            }
            if count == 16, clients.isEmpty { result.admitted = 0 }
        }
        result.matrix = cells.sorted { ($0.sessions, $0.payload) < ($1.sessions, $1.payload) }
    }

    private func measureCell(
        _ clients: [EchoClient], asked: Int, payload: Int, child: Child?, warmup: Double
    ) -> MatrixCell {
        let cpuBefore = child?.cpuSeconds ?? 0
        let run = LoadGenerator.throughput(
            clients: clients, window: Self.window, payload: payload, warmup: warmup, seconds: seconds)
        let cpu = child.map { run.cpuSecondsPerMillionDatagrams(cpuSeconds: $0.cpuSeconds - cpuBefore) }
        return MatrixCell(
            sessions: asked, payload: payload, window: Self.window, admitted: clients.count,
            run: run, cpuSecondsPerMillionDatagrams: cpu)
    }
}
