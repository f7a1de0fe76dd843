import Atomics
import CoreMetrics

/// A count several event loops hold under a ceiling: sessions, handshakes in progress.
///
/// `reserve` takes a slot only while fewer than `limit` are held, with a
/// compare-and-swap loop so that two loops can never both take the last one.
struct BoundedCount: Sendable {
    private let held = ManagedAtomic<Int>(0)

    var current: Int { held.load(ordering: .relaxed) }

    /// The count with the new slot, or nil when `limit` are held.
    func reserve(limit: Int) -> Int? {
        while true {
            let current = held.load(ordering: .relaxed)
            guard current < limit else { return nil }
            if held.compareExchange(expected: current, desired: current + 1, ordering: .relaxed).exchanged {
                return current + 1
            }
        }
    }

    /// Gives a slot back; returns the count left.
    @discardableResult
    func release() -> Int {
        held.wrappingDecrementThenLoad(ordering: .relaxed)
    }
}

/// What listener and connector stats share: a session ceiling, the count of
/// parked session sockets and named counters. The gauge of active sessions
/// is set when metrics are scraped, not on every session opened or closed.
protocol SessionStats: AnyObject, Sendable {
    var sessions: BoundedCount { get }
    var counters: CounterSet { get }
    /// Session sockets of idle sessions held without a NIO channel (``ParkableSocket``).
    var parkedSockets: ManagedAtomic<Int> { get }
    /// The counter of the kernel's drops on a session's own socket, named for what that socket reaches.
    var sessionSocketKernelDrops: StatsCounter { get }
}

extension SessionStats {
    func increment(_ counter: StatsCounter, by amount: Int = 1) {
        counters.increment(counter, by: amount)
    }

    func value(_ counter: StatsCounter) -> Int {
        counters.value(counter)
    }

    /// Every `dropped_*` counter added up, for the systemd status line.
    var droppedTotal: Int {
        counters.names.filter { $0.rawValue.hasPrefix("dropped_") }.reduce(0) { $0 + value($1) }
    }

    /// Sessions (handshaking or established) held now, over all event loops.
    var active: Int { sessions.current }

    /// Takes a session slot unless `limit` are held; false means refuse the peer.
    func reserveSession(limit: Int) -> Bool {
        sessions.reserve(limit: limit) != nil
    }

    func releaseSession() {
        sessions.release()
    }
}

/// Named event counters of a listener or connector: each an atomic (for the
/// stats line) and the Prometheus series it also moves, if any.
struct CounterSet: Sendable {
    /// The counters kept, in stats-line order.
    let names: [StatsCounter]
    /// Where each ``StatsCounter`` is in `names`, by its position in `allCases`; -1 if not kept.
    private let slots: [Int]
    private let counters: [ManagedAtomic<Int>]
    private let series: [CoreMetrics.Counter?]

    /// `series` names the Prometheus counter each name also moves.
    init(names: [StatsCounter], series: (StatsCounter) -> CoreMetrics.Counter?) {
        self.names = names
        slots = StatsCounter.allCases.map { names.firstIndex(of: $0) ?? -1 }
        counters = names.map { _ in ManagedAtomic<Int>(0) }
        self.series = names.map(series)
    }

    private func slot(_ name: StatsCounter) -> Int? {
        let slot = slots[StatsCounter.allCases.firstIndex(of: name)!]
        assert(slot >= 0, "\(name.rawValue) is not a counter of this role")
        return slot >= 0 ? slot : nil
    }

    func increment(_ name: StatsCounter, by amount: Int = 1) {
        guard let index = slot(name) else { return }
        counters[index].wrappingIncrement(by: amount, ordering: .relaxed)
        series[index]?.increment(by: amount)
    }

    func value(_ name: StatsCounter) -> Int {
        guard let index = slot(name) else { return 0 }
        return counters[index].load(ordering: .relaxed)
    }

    /// ` name=N` for every counter kept, in stats-line order.
    var logFields: String {
        names.map { " \($0.rawValue)=\(value($0))" }.joined()
    }
}
