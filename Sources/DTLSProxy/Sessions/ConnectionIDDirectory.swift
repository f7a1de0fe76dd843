import NIOConcurrencyHelpers
import NIOCore

/// Every connection ID (RFC 9146) this instance has issued, and the session
/// each one leads to.
///
/// A `tls12_cid` record is routed by its CID, not by the address it came
/// from: after a NAT rebinding the client's new 4-tuple may hash to another
/// event loop's listener socket (`SO_REUSEPORT`), so the lookup must span the
/// loops. The directory is the one place that does: it hands out CIDs that
/// are unique among the instance's sessions (the first byte the instance's
/// `node_id`, so that instances behind one balancer never collide, the rest
/// random), and tells a router which loop's session owns one. A lock guards
/// it; the per-datagram cost is one uncontended lock and one dictionary lookup.
final class ConnectionIDDirectory: Sendable {
    /// The directory of this process.
    static let shared = ConnectionIDDirectory()

    /// Where a CID's session lives: its event loop, and the session once it has bound itself.
    struct Owner: Sendable {
        let eventLoop: EventLoop
        let session: NIOLoopBound<WeakSession>
    }

    /// A weak reference, so a session that is gone never lingers through the directory.
    final class WeakSession {
        weak var session: ListenerSession?
        init(_ session: ListenerSession) { self.session = session }
    }

    private let owners = NIOLockedValueBox<[[UInt8]: Owner?]>([:])

    /// CIDs issued and not yet released.
    var count: Int { owners.withLockedValue { $0.count } }

    /// A new CID of `length` bytes: `nodeID`, then random bytes, unique among
    /// the CIDs issued and not released. Reserved until ``release(_:)``.
    func issue(length: Int, nodeID: UInt8) -> [UInt8] {
        precondition(length >= 2 && length <= ConnectionIDExtension.maximumLength)
        var generator = SystemRandomNumberGenerator()
        return owners.withLockedValue { owners in
            while true {
                var cid = [nodeID]
                cid.reserveCapacity(length)
                for _ in 1..<length { cid.append(UInt8.random(in: 0...255, using: &generator)) }
                if owners[cid] == nil {
                    owners[cid] = .some(nil)
                    return cid
                }
            }
        }
    }

    /// Points `cid` at `session`; call on the session's event loop.
    func bind(_ cid: [UInt8], to session: ListenerSession) {
        let owner = Owner(
            eventLoop: session.eventLoop,
            session: NIOLoopBound(WeakSession(session), eventLoop: session.eventLoop))
        owners.withLockedValue { $0[cid] = .some(owner) }
    }

    /// The CID may be issued again.
    func release(_ cid: [UInt8]) {
        _ = owners.withLockedValue { $0.removeValue(forKey: cid) }
    }

    /// The owner of `cid`, when it is issued and bound.
    func owner(of cid: [UInt8]) -> Owner? {
        owners.withLockedValue { $0[cid] ?? nil }
    }
}
