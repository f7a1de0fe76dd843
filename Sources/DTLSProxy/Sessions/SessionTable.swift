import NIOCore

/// One event loop's sessions of one listener or connector, keyed by the
/// address of the peer on the router's socket, and the upkeep the router
/// runs over all of them (the idle sweep, the kernel's drops, shutdown).
///
/// A listener's peer has at most one live session, plus at most one
/// replacement: a new handshake from the same address and port, run beside
/// the live session until it completes (RFC 6347 §4.2.8; OpenSSL does not do
/// this itself). Only the owning event loop touches the table, so it takes no lock.
final class SessionTable<Session: SessionCore> {
    private(set) var sessions: [SocketAddress: Session] = [:]
    private(set) var replacements: [SocketAddress: Session] = [:]
    /// Sessions closed since the last sweep: each freed its SSL object and
    /// buffers, so a burst of them (half-open handshakes timing out together
    /// after a flood, a reload closing a listener) is worth a heap trim too.
    private var closedSinceSweep = 0
    /// Sessions closed in the sweeps since the last one that saw none.
    private var closedInBurst = 0

    var count: Int { sessions.count + replacements.count }

    func session(for peer: SocketAddress) -> Session? { sessions[peer] }

    func replacement(for peer: SocketAddress) -> Session? { replacements[peer] }

    func insert(_ session: Session) {
        sessions[session.peer] = session
    }

    func insertReplacement(_ session: Session) {
        replacements[session.peer] = session
    }

    /// Makes the replacement the peer's session; returns the session it displaced.
    func promoteReplacement(_ session: Session) -> Session? {
        guard replacements[session.peer] === session else { return nil }
        replacements[session.peer] = nil
        let displaced = sessions[session.peer]
        sessions[session.peer] = session
        return displaced
    }

    /// Keys `session` by its new ``SessionCore/peer``, no longer by `old`;
    /// returns the session that held the new address, if another did.
    func move(_ session: Session, from old: SocketAddress) -> Session? {
        if sessions[old] === session { sessions[old] = nil }
        let displaced = sessions[session.peer]
        sessions[session.peer] = session
        return displaced === session ? nil : displaced
    }

    /// Removes `session` wherever it is; a newer entry for the same peer stays.
    ///
    /// A dictionary keeps its capacity when emptied: after a flood of thousands
    /// of half-open handshakes the table would hold their buckets for good. So
    /// a table that fell to a quarter of its capacity (and is large) is rebuilt
    /// at its size.
    func remove(_ session: Session) {
        if sessions[session.peer] === session { sessions[session.peer] = nil }
        if replacements[session.peer] === session { replacements[session.peer] = nil }
        closedSinceSweep += 1
        Self.shrinkIfSparse(&sessions)
        Self.shrinkIfSparse(&replacements)
    }

    private static func shrinkIfSparse(_ table: inout [SocketAddress: Session]) {
        guard table.capacity >= 1024, table.count * 4 < table.capacity else { return }
        table = Dictionary(minimumCapacity: table.count * 2).merging(table) { $1 }
    }

    /// Calls `body` for every session and replacement without copying the table.
    func forEach(_ body: (Session) -> Void) {
        for session in sessions.values { body(session) }
        for session in replacements.values { body(session) }
    }

    /// Every session and replacement, for shutdown.
    var all: [Session] { Array(sessions.values) + Array(replacements.values) }

    /// Once a second (``IdleSweep/period``): lets every quiet session give
    /// back what it can, then hands freed pages back to the system when
    /// enough were freed to matter (see ``HeapTrim``).
    func sweepIdleSessions() {
        var released = closedSinceSweep
        // The first quiet sweep after a burst of closes trims once more, for
        // the closes that came after the burst's last trim.
        let burstEnded = closedSinceSweep == 0 && closedInBurst >= HeapTrim.threshold
        closedInBurst = closedSinceSweep == 0 ? 0 : closedInBurst + closedSinceSweep
        closedSinceSweep = 0
        let now = NIODeadline.now()
        forEach { released += $0.sweepIfIdle(now: now) }
        HeapTrim.afterReleasing(buffers: burstEnded ? max(released, HeapTrim.threshold) : released)
    }

    /// Counts the kernel's drops on every session's socket, parked ones
    /// included. One getsockopt per session, so this runs before a scrape or
    /// a stats line, not on a timer.
    func collectKernelDrops() {
        forEach { $0.collectKernelDrops() }
    }

    /// Closes every session with close_notify: `.shutdown` when the daemon
    /// stops, `.reload` when a reload removed the listener or connector.
    func closeAll(reason: CloseReason) {
        for session in all { session.close(reason, notifyPeer: true) }
    }
}
