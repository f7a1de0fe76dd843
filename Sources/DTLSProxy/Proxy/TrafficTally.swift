/// Plaintext datagrams and bytes one event loop's sessions of one listener
/// moved since the last flush.
///
/// Sessions add to it per datagram with plain integer arithmetic on their own
/// loop; the router adds the sums to the Prometheus counters once a second
/// and before every scrape, so the data path makes no metrics call.
struct TrafficTally {
    private(set) var datagramsIn = 0
    private(set) var bytesIn = 0
    private(set) var datagramsOut = 0
    private(set) var bytesOut = 0

    var isEmpty: Bool { datagramsIn == 0 && datagramsOut == 0 }

    /// One datagram from a client to the backend.
    mutating func fromClient(_ bytes: Int) {
        datagramsIn += 1
        bytesIn += bytes
    }

    /// One datagram from the backend to a client.
    mutating func toClient(_ bytes: Int) {
        datagramsOut += 1
        bytesOut += bytes
    }

    mutating func flush(into metrics: ListenerMetrics) {
        if datagramsIn > 0 {
            metrics.datagramsIn.increment(by: datagramsIn)
            metrics.bytesIn.increment(by: bytesIn)
        }
        if datagramsOut > 0 {
            metrics.datagramsOut.increment(by: datagramsOut)
            metrics.bytesOut.increment(by: bytesOut)
        }
        self = TrafficTally()
    }
}
