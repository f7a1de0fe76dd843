import NIOCore

/// Each source's share of the handshakes in progress (`max_handshakes_per_source`,
/// `max_handshakes_per_prefix`, `source_prefix_ipv4`, `source_prefix_ipv6`).
///
/// `max_handshakes_in_progress` bounds what half-open handshakes may cost the
/// daemon, but as one pool: a single host that completes the cookie exchange
/// and then stalls (every such handshake holds an `SSL` object and a socket
/// until `handshake_timeout`) could take every slot and lock everybody else
/// out. So each source address, and each network prefix (a /24 of IPv4 and a
/// /56 of IPv6 by default: what one customer or one NAT usually holds), may
/// hold only so many of them at once. Only cookie-verified clients get here,
/// so the address is one the client receives at.
///
/// Confined to one event loop, like the router that owns it; a source whose
/// ports hash to several loops gets its share on each.
final class HandshakeShares {
    /// What one source may hold, read from the listener's configuration at each reservation so that a reload applies.
    struct Limits {
        var perSource: Int
        var perPrefix: Int
        var ipv4PrefixLength: Int
        var ipv6PrefixLength: Int

        init(perSource: Int, perPrefix: Int, ipv4PrefixLength: Int, ipv6PrefixLength: Int) {
            self.perSource = perSource
            self.perPrefix = perPrefix
            self.ipv4PrefixLength = ipv4PrefixLength
            self.ipv6PrefixLength = ipv6PrefixLength
        }

        init(_ listener: ListenerConfiguration) {
            self.init(
                perSource: listener.maxHandshakesPerSource, perPrefix: listener.maxHandshakesPerPrefix,
                ipv4PrefixLength: listener.sourcePrefixIPv4, ipv6PrefixLength: listener.sourcePrefixIPv6)
        }
    }

    /// Why a reservation was refused.
    enum Refusal: Error {
        case source
        case prefix
    }

    private var bySource: [[UInt8]: Int] = [:]
    private var byPrefix: [[UInt8]: Int] = [:]

    /// Takes one slot for `peer`; the slot's ``HandshakeSlot/release()`` gives it back.
    func reserve(_ peer: SocketAddress, limits: Limits) -> Result<HandshakeSlot, Refusal> {
        let source = peer.hostMaterial
        let prefix = Self.prefix(of: source, limits: limits)
        guard bySource[source, default: 0] < limits.perSource else { return .failure(.source) }
        guard byPrefix[prefix, default: 0] < limits.perPrefix else { return .failure(.prefix) }
        bySource[source, default: 0] += 1
        byPrefix[prefix, default: 0] += 1
        return .success(HandshakeSlot(shares: self, source: source, prefix: prefix))
    }

    fileprivate func release(source: [UInt8], prefix: [UInt8]) {
        Self.decrement(&bySource, source)
        Self.decrement(&byPrefix, prefix)
    }

    /// Sources and prefixes holding a slot now (for tests): a table that only grows would be a leak.
    var trackedKeys: Int { bySource.count + byPrefix.count }

    /// Handshakes `peer`'s address holds now (for tests).
    func held(by peer: SocketAddress) -> Int { bySource[peer.hostMaterial, default: 0] }

    private static func decrement(_ table: inout [[UInt8]: Int], _ key: [UInt8]) {
        guard let count = table[key] else { return }
        table[key] = count > 1 ? count - 1 : nil
    }

    /// The family byte and the address bytes masked to the prefix length.
    static func prefix(of source: [UInt8], limits: Limits) -> [UInt8] {
        guard let family = source.first, family == 4 || family == 6 else { return source }
        let bits = family == 4 ? limits.ipv4PrefixLength : limits.ipv6PrefixLength
        var masked = source
        for index in 1..<masked.count {
            let bitOffset = (index - 1) * 8
            if bitOffset >= bits {
                masked[index] = 0
            } else if bitOffset + 8 > bits {
                masked[index] &= UInt8(truncatingIfNeeded: 0xFF << (8 - (bits - bitOffset)))
            }
        }
        return masked + [UInt8(bits)]
    }
}

/// One handshake's hold on its source's share; released exactly once, when
/// the handshake completes or its session closes before it did.
final class HandshakeSlot {
    private weak var shares: HandshakeShares?
    private let source: [UInt8]
    private let prefix: [UInt8]
    private var released = false

    fileprivate init(shares: HandshakeShares, source: [UInt8], prefix: [UInt8]) {
        self.shares = shares
        self.source = source
        self.prefix = prefix
    }

    func release() {
        guard !released else { return }
        released = true
        shares?.release(source: source, prefix: prefix)
    }

    deinit { release() }
}
