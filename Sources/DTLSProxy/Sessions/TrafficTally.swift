import CoreMetrics

/// Plaintext datagrams and bytes moved each way: "in" is what a session's
/// own peer sent (a listener's DTLS client, a connector's local peer), "out"
/// what went back to it.
///
/// Two uses: each session keeps one for its close line, and each router
/// keeps one per event loop that its sessions add to per datagram with plain
/// integer arithmetic; the router adds those sums to the Prometheus counters
/// once a second and before every scrape, so the data path makes no metrics call.
struct TrafficTally {
    private(set) var datagramsIn = 0
    private(set) var bytesIn = 0
    private(set) var datagramsOut = 0
    private(set) var bytesOut = 0

    var isEmpty: Bool { datagramsIn == 0 && datagramsOut == 0 }

    /// One datagram from the session's peer.
    mutating func countIn(_ bytes: Int) {
        datagramsIn += 1
        bytesIn += bytes
    }

    /// One datagram to the session's peer.
    mutating func countOut(_ bytes: Int) {
        datagramsOut += 1
        bytesOut += bytes
    }

    /// ` datagrams_in=N bytes_in=N datagrams_out=N bytes_out=N` for a session's close line.
    var logFields: String {
        " datagrams_in=\(datagramsIn) bytes_in=\(bytesIn) datagrams_out=\(datagramsOut) bytes_out=\(bytesOut)"
    }

    /// Adds the tally to `series` and resets it.
    mutating func flush(into series: TrafficCounters) {
        if datagramsIn > 0 {
            series.datagramsIn.increment(by: datagramsIn)
            series.bytesIn.increment(by: bytesIn)
        }
        if datagramsOut > 0 {
            series.datagramsOut.increment(by: datagramsOut)
            series.bytesOut.increment(by: bytesOut)
        }
        self = TrafficTally()
    }
}

/// The four Prometheus counters a listener's or a connector's traffic goes to:
/// datagrams and bytes, each `direction="in"` and `direction="out"`.
struct TrafficCounters: Sendable {
    let datagramsIn: CoreMetrics.Counter
    let datagramsOut: CoreMetrics.Counter
    let bytesIn: CoreMetrics.Counter
    let bytesOut: CoreMetrics.Counter

    /// `label` is the owner's dimension (`listener` or `connector`, and its name).
    init(datagrams: String, bytes: String, label: (String, String), factory: any MetricsFactory) {
        func counter(_ name: String, _ direction: String) -> CoreMetrics.Counter {
            CoreMetrics.Counter(label: name, dimensions: [label, ("direction", direction)], factory: factory)
        }
        datagramsIn = counter(datagrams, "in")
        datagramsOut = counter(datagrams, "out")
        bytesIn = counter(bytes, "in")
        bytesOut = counter(bytes, "out")
    }
}
