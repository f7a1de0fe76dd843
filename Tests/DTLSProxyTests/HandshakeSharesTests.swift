import NIOCore
import Testing

@testable import DTLSProxy

@Suite("Handshake shares per source and prefix")
struct HandshakeSharesTests {
    private func limits(source: Int, prefix: Int, v4: Int = 24, v6: Int = 56) -> HandshakeShares.Limits {
        HandshakeShares.Limits(perSource: source, perPrefix: prefix, ipv4PrefixLength: v4, ipv6PrefixLength: v6)
    }

    private func address(_ host: String, _ port: Int = 4000) throws -> SocketAddress {
        try SocketAddress(ipAddress: host, port: port)
    }

    @Test func oneAddressIsCappedWhateverItsPort() throws {
        let shares = HandshakeShares()
        let limits = limits(source: 2, prefix: 10)
        var slots: [HandshakeSlot] = []
        for port in 1...2 { slots.append(try shares.reserve(try address("192.0.2.1", port), limits: limits).get()) }
        guard case .failure(.source) = shares.reserve(try address("192.0.2.1", 3), limits: limits) else {
            Issue.record("a third handshake from the same address was admitted"); return
        }
        // Another address of the same /24 still has room.
        #expect(throws: Never.self) { _ = try shares.reserve(try address("192.0.2.2"), limits: limits).get() }
        slots[0].release()
        slots[0].release()  // releasing twice gives back one slot, not two
        #expect(shares.held(by: try address("192.0.2.1")) == 1)
    }

    @Test func aPrefixIsCappedAcrossItsAddresses() throws {
        let shares = HandshakeShares()
        let limits = limits(source: 5, prefix: 3)
        var slots: [HandshakeSlot] = []
        for host in ["10.1.2.3", "10.1.2.4", "10.1.2.200"] {
            slots.append(try shares.reserve(try address(host), limits: limits).get())
        }
        guard case .failure(.prefix) = shares.reserve(try address("10.1.2.9"), limits: limits) else {
            Issue.record("the /24 went past its share"); return
        }
        slots.append(try shares.reserve(try address("10.1.3.9"), limits: limits).get())  // another /24
        slots.removeAll()  // every slot released when its session goes
        #expect(shares.trackedKeys == 0)
    }

    @Test func prefixesMaskTheirAddresses() throws {
        let l = limits(source: 1, prefix: 1, v4: 20, v6: 56)
        let a = HandshakeShares.prefix(of: try address("192.168.31.77").hostMaterial, limits: l)
        let b = HandshakeShares.prefix(of: try address("192.168.16.1").hostMaterial, limits: l)
        let c = HandshakeShares.prefix(of: try address("192.168.32.1").hostMaterial, limits: l)
        #expect(a == b)
        #expect(a != c)
        let v6a = HandshakeShares.prefix(of: try address("2001:db8:1:20ff::1").hostMaterial, limits: l)
        let v6b = HandshakeShares.prefix(of: try address("2001:db8:1:2000::9").hostMaterial, limits: l)
        let v6c = HandshakeShares.prefix(of: try address("2001:db8:1:2100::9").hostMaterial, limits: l)
        #expect(v6a == v6b)
        #expect(v6a != v6c)
    }

    @Test func configurationKeysAreReadAndChecked() throws {
        let folder = try ConfigTestFolder.withCredentials()
        let config = try folder.parse(
            minimalListener + """

                max_handshakes_per_source = 8
                max_handshakes_per_prefix = 32
                source_prefix_ipv4 = 16
                source_prefix_ipv6 = 48
                """)
        let listener = try #require(config.listeners.first)
        #expect([listener.maxHandshakesPerSource, listener.maxHandshakesPerPrefix] == [8, 32])
        #expect([listener.sourcePrefixIPv4, listener.sourcePrefixIPv6] == [16, 48])
        let defaults = try #require(try folder.parse(minimalListener).listeners.first)
        #expect(
            [
                defaults.maxHandshakesPerSource, defaults.maxHandshakesPerPrefix, defaults.sourcePrefixIPv4,
                defaults.sourcePrefixIPv6,
            ]
                == [64, 256, 24, 56])
        let tooWide = folder.error(minimalListener + "\nsource_prefix_ipv4 = 33\n")
        #expect(tooWide?.key == "listener[0].source_prefix_ipv4")
        let inverted = folder.error(minimalListener + "\nmax_handshakes_per_source = 300\n")
        #expect(inverted?.key == "listener[0].max_handshakes_per_source")
        #expect(inverted?.cause.contains("max_handshakes_per_prefix") == true)
    }
}
