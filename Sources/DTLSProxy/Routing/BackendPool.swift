import Atomics
import NIOCore

/// The backends of one route, with their health, shared by every event loop.
///
/// A backend that answers a datagram with ICMP port unreachable (the session
/// socket reports ECONNREFUSED) is marked down for `backoff`: new sessions go
/// to the others, and sessions on it move to another backend with their next
/// datagram. When the back-off ends it gets new sessions again; another
/// refusal marks it down again. When every backend is down, the best choice
/// is used anyway: a datagram that may be refused beats a client refused for sure.
public final class BackendPool: Sendable {
    /// The resolved addresses, in configuration order.
    public let addresses: [SocketAddress]
    /// The addresses as configured, for log lines and hashing.
    public let endpoints: [EndpointAddress]
    public let balance: BalanceMode
    let backoff: TimeAmount
    /// What rendezvous hashing scores: the configured address, so the placement
    /// does not depend on how a name resolved.
    private let memberKeys: [[UInt8]]
    /// Per backend: the uptime (ns) until which it is down; 0 when it is up.
    private let downUntil: [ManagedAtomic<Int64>]
    private let turn = ManagedAtomic<Int>(0)

    public init(addresses: [SocketAddress], endpoints: [EndpointAddress], balance: BalanceMode, backoff: TimeAmount) {
        precondition(!addresses.isEmpty && addresses.count == endpoints.count)
        self.addresses = addresses
        self.endpoints = endpoints
        self.balance = balance
        self.backoff = backoff
        self.memberKeys = endpoints.map { Array($0.description.utf8) }
        self.downUntil = addresses.map { _ in ManagedAtomic<Int64>(0) }
    }

    /// The backend a new session of `client` uses.
    public func choose(for client: SocketAddress, now: NIODeadline = .now()) -> Int {
        guard addresses.count > 1 else { return 0 }
        switch balance {
        case .hash:
            let ranking = RendezvousHash.ranking(key: client.cookieMaterial, members: memberKeys)
            return ranking.first { !isDown($0, now: now) } ?? ranking[0]
        case .roundRobin:
            let start = Int(
                UInt(bitPattern: turn.loadThenWrappingIncrement(ordering: .relaxed)) % UInt(addresses.count))
            for step in 0..<addresses.count {
                let candidate = (start + step) % addresses.count
                if !isDown(candidate, now: now) { return candidate }
            }
            return start
        }
    }

    /// Whether `member` is in its back-off period. One relaxed load while it is up.
    public func isDown(_ member: Int, now: @autoclosure () -> NIODeadline = .now()) -> Bool {
        let until = downUntil[member].load(ordering: .relaxed)
        guard until != 0 else { return false }
        return Int64(now().uptimeNanoseconds) < until
    }

    /// Starts a back-off period for `member`; true when it was up until now
    /// (so only the first refusal of an outage is logged).
    @discardableResult
    public func markDown(_ member: Int, now: NIODeadline = .now()) -> Bool {
        let nowNanos = Int64(now.uptimeNanoseconds)
        let previous = downUntil[member].exchange(nowNanos + backoff.nanoseconds, ordering: .relaxed)
        return previous == 0 || previous <= nowNanos
    }

    /// Whether any other backend could take a session off `member` now.
    func hasAlternative(to member: Int, now: NIODeadline) -> Bool {
        addresses.indices.contains { $0 != member && !isDown($0, now: now) }
    }
}
