import Histogram

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Throughput of a closed loop: every session keeps `window` datagrams in
/// flight and sends one more for every echo it gets back.
struct ThroughputResult: Codable {
    var sessions, window, payload, echoes: Int
    var seconds: Double
    /// Windows refilled after 50 ms without an echo (datagrams presumed lost).
    var stalls: Int
    /// Echoes over warm-up and measurement together (what CPU readings around the call cover).
    var allEchoes: Int
    var echoesPerSecond: Double { seconds > 0 ? Double(echoes) / seconds : 0 }
    /// Payload megabits per second in each direction (one echo = payload out and back).
    var megabitsPerSecond: Double { echoesPerSecond * Double(payload) * 8 / 1e6 }

    /// A relay's `cpuSeconds` over this run (warm-up included, as `allEchoes` is)
    /// per million datagrams it relayed: one echo is two datagrams through it,
    /// one each way. A run without echoes counts as one, so the figure stays finite.
    func cpuSecondsPerMillionDatagrams(cpuSeconds: Double) -> Double {
        cpuSeconds / (Double(max(1, allEchoes)) * 2 / 1e6)
    }
}

/// Round-trip latency at window 1, in microseconds.
struct LatencyResult: Codable {
    var samples: Int
    var p50, p99, p999: Double
    var lost: Int
}

/// Drives established clients from one thread with poll: the load generator
/// is one core's worth of work, the target gets the rest of the machine.
enum LoadGenerator {
    static let stallNanoseconds: UInt64 = 50_000_000

    /// Runs `warmup` seconds unmeasured, then `seconds` measured.
    static func throughput(
        clients: [EchoClient], window: Int, payload: Int, warmup: Double, seconds: Double
    ) -> ThroughputResult {
        let message = [UInt8](repeating: 0x5A, count: payload)
        var scratch = [UInt8](repeating: 0, count: 65_536)
        var outstanding = [Int](repeating: 0, count: clients.count)
        var lastEcho = [UInt64](repeating: monotonicNanoseconds(), count: clients.count)
        var descriptors = clients.map { pollfd(fd: $0.fd, events: Int16(POLLIN), revents: 0) }
        var echoes = 0
        var stalls = 0
        let start = monotonicNanoseconds()
        let measureFrom = start + UInt64(warmup * 1e9)
        let end = measureFrom + UInt64(seconds * 1e9)
        // `echoes` counts from the start; the count at `measureFrom` splits it
        // into warm-up and measured (nil until then, and stays nil if one poll
        // spans the whole measured window: then everything counts as measured).
        var warmupEchoes: Int?
        var measured = seconds

        message.withUnsafeBytes { bytes in
            func fill(_ index: Int) {
                while outstanding[index] < window, clients[index].send(bytes) { outstanding[index] += 1 }
            }
            for index in clients.indices { fill(index) }
            while true {
                let now = monotonicNanoseconds()
                if now >= end {
                    measured = Double(now - measureFrom) / 1e9
                    break
                }
                if warmupEchoes == nil, now >= measureFrom { warmupEchoes = echoes }
                _ = poll(&descriptors, nfds_t(descriptors.count), 10)
                let after = monotonicNanoseconds()
                for index in clients.indices {
                    if descriptors[index].revents != 0 {
                        var got = 0
                        scratch.withUnsafeMutableBytes { buffer in
                            while clients[index].receive(into: buffer) != nil { got += 1 }
                        }
                        if got > 0 {
                            echoes += got
                            outstanding[index] = max(0, outstanding[index] - got)
                            lastEcho[index] = after
                            fill(index)
                        }
                    } else if after - lastEcho[index] > stallNanoseconds {
                        stalls += 1
                        outstanding[index] = 0
                        lastEcho[index] = after
                        fill(index)
                    }
                }
            }
        }
        return ThroughputResult(
            sessions: clients.count, window: window, payload: payload, echoes: echoes - (warmupEchoes ?? 0),
            seconds: measured, stalls: stalls, allEchoes: echoes)
    }

    /// One datagram at a time on `client`: `count` round trips or `seconds`, whichever ends first.
    /// Each datagram carries a sequence number; a reply to an earlier one (late, or left
    /// over from a throughput run) is discarded, so every sample is one real round trip.
    static func latency(client: EchoClient, payload: Int, count: Int, seconds: Double) -> LatencyResult {
        var histogram = Histogram<UInt64>(highestTrackableValue: 10_000_000_000, numberOfSignificantValueDigits: .three)
        var message = [UInt8](repeating: 0x5A, count: max(payload, 8))
        var scratch = [UInt8](repeating: 0, count: 65_536)
        var lost = 0
        // Let what an earlier run left in flight arrive, then drop it.
        usleep(100_000)
        scratch.withUnsafeMutableBytes { buffer in
            while client.receive(into: buffer) != nil {}
        }
        let end = monotonicNanoseconds() + UInt64(seconds * 1e9)
        var sequence: UInt64 = 0
        while Int(histogram.totalCount) < count, monotonicNanoseconds() < end {
            sequence += 1
            message.withUnsafeMutableBytes { $0.storeBytes(of: sequence, toByteOffset: 0, as: UInt64.self) }
            let sent = monotonicNanoseconds()
            let accepted = message.withUnsafeBytes { client.send($0) }
            guard accepted else { lost += 1; continue }
            var answered = false
            var received: UInt64 = 0
            scratch.withUnsafeMutableBytes { buffer in
                while !answered, UDP.waitReadable(client.fd, milliseconds: 100) {
                    while let length = client.receive(into: buffer) {
                        if length >= 8, buffer.load(fromByteOffset: 0, as: UInt64.self) == sequence {
                            answered = true
                            received = monotonicNanoseconds()
                        }
                    }
                }
            }
            guard answered else { lost += 1; continue }
            // The first round trips warm caches and branch predictors; they are not kept.
            if sequence <= 200 { continue }
            histogram.record(received - sent)
        }
        func micro(_ percentile: Double) -> Double { Double(histogram.valueAtPercentile(percentile)) / 1000 }
        return LatencyResult(
            samples: Int(histogram.totalCount), p50: micro(50), p99: micro(99), p999: micro(99.9), lost: lost)
    }
}
