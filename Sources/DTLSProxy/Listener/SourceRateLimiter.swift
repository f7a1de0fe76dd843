import NIOCore

/// A token bucket per source address (`handshake_rate_per_source`): how many
/// handshakes one address may start a second.
///
/// Consulted only for ClientHellos whose cookie verified, so every address
/// in the table has proved it receives at that address: a flood of forged
/// sources never reaches it. Keyed by address without port, so one host
/// cannot escape the limit by changing ports. The table is bounded: past
/// `capacity` entries, buckets that have refilled (idle sources) are dropped.
/// One per event loop; a source whose ports hash to several loops gets the
/// rate on each.
struct SourceRateLimiter {
    private struct Bucket {
        var tokens: Double
        var updated: NIODeadline
    }

    private let rate: Double
    private let capacity: Int
    private var buckets: [[UInt8]: Bucket] = [:]

    /// - Parameter ratePerSecond: handshakes a second per address, also the burst; 0 disables the limit.
    init(ratePerSecond: Int, capacity: Int = 65_536) {
        self.rate = Double(ratePerSecond)
        self.capacity = capacity
    }

    /// Takes one token for `peer`'s address; false when its bucket is empty.
    mutating func admit(_ peer: SocketAddress, now: NIODeadline) -> Bool {
        guard rate > 0 else { return true }
        let key = peer.hostMaterial
        var bucket = buckets[key] ?? Bucket(tokens: rate, updated: now)
        let elapsed = Double((now - bucket.updated).nanoseconds) / 1e9
        bucket.tokens = min(rate, bucket.tokens + elapsed * rate)
        bucket.updated = now
        guard bucket.tokens >= 1 else {
            buckets[key] = bucket
            return false
        }
        bucket.tokens -= 1
        if buckets[key] == nil, buckets.count >= capacity { prune(now: now) }
        buckets[key] = bucket
        return true
    }

    /// Forgets every source whose bucket would be full by now: it is as if never seen.
    private mutating func prune(now: NIODeadline) {
        let rate = self.rate
        buckets = buckets.filter { _, bucket in
            bucket.tokens + Double((now - bucket.updated).nanoseconds) / 1e9 * rate < rate
        }
    }

    /// Sources tracked now (for tests).
    var trackedSources: Int { buckets.count }
}

extension SocketAddress {
    /// Family and address bytes, without the port.
    var hostMaterial: [UInt8] {
        var bytes: [UInt8] = []
        switch self {
        case .v4(let address):
            bytes.append(4)
            withUnsafeBytes(of: address.address.sin_addr) { bytes.append(contentsOf: $0) }
        case .v6(let address):
            bytes.append(6)
            withUnsafeBytes(of: address.address.sin6_addr) { bytes.append(contentsOf: $0) }
        case .unixDomainSocket:
            bytes.append(0)
        }
        return bytes
    }
}
