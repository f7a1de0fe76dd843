import NIOCore

/// One event loop's sessions of one listener, keyed by the peer's address.
///
/// A peer has at most one live session, plus at most one replacement: a new
/// handshake from the same address and port, run beside the live session
/// until it completes (RFC 6347 §4.2.8; OpenSSL does not do this itself).
/// Only the owning event loop touches the table, so it takes no lock.
final class SessionTable {
    private(set) var sessions: [SocketAddress: ListenerSession] = [:]
    private(set) var replacements: [SocketAddress: ListenerSession] = [:]

    var count: Int { sessions.count + replacements.count }

    func session(for peer: SocketAddress) -> ListenerSession? { sessions[peer] }

    func replacement(for peer: SocketAddress) -> ListenerSession? { replacements[peer] }

    func insert(_ session: ListenerSession) {
        sessions[session.peer] = session
    }

    func insertReplacement(_ session: ListenerSession) {
        replacements[session.peer] = session
    }

    /// Makes the replacement the peer's session; returns the session it displaced.
    func promoteReplacement(_ session: ListenerSession) -> ListenerSession? {
        guard replacements[session.peer] === session else { return nil }
        replacements[session.peer] = nil
        let displaced = sessions[session.peer]
        sessions[session.peer] = session
        return displaced
    }

    /// Removes `session` wherever it is; a newer entry for the same peer stays.
    ///
    /// A dictionary keeps its capacity when emptied: after a flood of thousands
    /// of half-open handshakes the table would hold their buckets for good. So
    /// a table that fell to a quarter of its capacity (and is large) is rebuilt
    /// at its size.
    func remove(_ session: ListenerSession) {
        if sessions[session.peer] === session { sessions[session.peer] = nil }
        if replacements[session.peer] === session { replacements[session.peer] = nil }
        Self.shrinkIfSparse(&sessions)
        Self.shrinkIfSparse(&replacements)
    }

    private static func shrinkIfSparse(_ table: inout [SocketAddress: ListenerSession]) {
        guard table.capacity >= 1024, table.count * 4 < table.capacity else { return }
        table = Dictionary(minimumCapacity: table.count * 2).merging(table) { $1 }
    }

    /// Calls `body` for every session and replacement without copying the table.
    func forEach(_ body: (ListenerSession) -> Void) {
        for session in sessions.values { body(session) }
        for session in replacements.values { body(session) }
    }

    /// Every session and replacement, for shutdown.
    var all: [ListenerSession] { Array(sessions.values) + Array(replacements.values) }
}
