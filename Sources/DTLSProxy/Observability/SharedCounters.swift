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

/// What listener and connector stats share: a session ceiling and named
/// counters. The gauge of active sessions is set when metrics are scraped,
/// not on every session opened or closed.
protocol SessionStats: AnyObject, Sendable {
    associatedtype Counter: CaseIterable & Equatable & Sendable & RawRepresentable<String>
    where Counter.AllCases.Index == Int
    var sessions: BoundedCount { get }
    var counters: CounterSet<Counter> { get }
    /// Session sockets of idle sessions held without a NIO channel (``ParkableSocket``).
    var parkedSockets: ManagedAtomic<Int> { get }
    /// The counter of the kernel's drops on a session's own socket, named for what that socket reaches.
    static var sessionSocketKernelDrops: Counter { get }
}

/// What the session core (``SessionCore``) counts, whichever its role. Each
/// role's counters carry the same names (the raw values), except the drops on
/// a session's own socket, which each role names for where that socket leads.
enum SessionEvent: String, CaseIterable, Sendable {
    case handshakeCompleted = "handshakes_completed"
    case handshakeFailed = "handshakes_failed"
    /// A plaintext datagram of zero bytes: a record cannot carry it (SSL_write refuses zero bytes).
    case droppedEmpty = "dropped_empty"
    /// A plaintext datagram larger than one record can carry at the MTU.
    case droppedOversize = "dropped_oversize"
    /// A datagram from the DTLS peer that yielded neither plaintext nor a reply.
    case droppedUndecryptable = "dropped_undecryptable"
    /// Datagrams the kernel dropped on a session's own socket, its receive queue full.
    case droppedKernelSessionSocket = ""
}

extension SessionStats {
    /// The role's counter for a core event.
    static func counter(for event: SessionEvent) -> Counter {
        guard event != .droppedKernelSessionSocket, let counter = Counter(rawValue: event.rawValue) else {
            return sessionSocketKernelDrops
        }
        return counter
    }

    func record(_ event: SessionEvent, by amount: Int = 1) {
        counters.increment(Self.counter(for: event), by: amount)
    }

    func increment(_ counter: Counter, by amount: Int = 1) {
        counters.increment(counter, by: amount)
    }

    func value(_ counter: Counter) -> Int {
        counters.value(counter)
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
struct CounterSet<Name: CaseIterable & Equatable & Sendable>: Sendable where Name.AllCases.Index == Int {
    private let counters: [ManagedAtomic<Int>]
    private let series: [CoreMetrics.Counter?]

    /// `series` names the Prometheus counter each name also moves.
    init(series: (Name) -> CoreMetrics.Counter?) {
        counters = Name.allCases.map { _ in ManagedAtomic<Int>(0) }
        self.series = Name.allCases.map(series)
    }

    func increment(_ name: Name, by amount: Int = 1) {
        let index = Name.allCases.firstIndex(of: name)!
        counters[index].wrappingIncrement(by: amount, ordering: .relaxed)
        series[index]?.increment(by: amount)
    }

    func value(_ name: Name) -> Int {
        counters[Name.allCases.firstIndex(of: name)!].load(ordering: .relaxed)
    }

    /// ` name=N` for every counter, in declaration order, for a stats line.
    func logFields(_ label: (Name) -> String) -> String {
        Name.allCases.map { " \(label($0))=\(value($0))" }.joined()
    }
}
