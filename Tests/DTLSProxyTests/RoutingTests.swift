import NIOCore
import Testing

@testable import DTLSProxy

@Suite("Route selection")
struct RouteSelectionTests {
    private func route(
        _ index: Int, names: [String] = [], psk: [String] = [], identities: [String] = []
    ) -> RouteConfiguration {
        var route = RouteConfiguration(
            index: index, name: "r\(index)",
            target: BackendTarget(backends: [EndpointAddress(host: "127.0.0.1", port: 6000 + index)]))
        route.serverNames = names
        route.pskIdentities = psk
        route.clientIdentities = identities
        return route
    }

    @Test func serverNamesMatchExactlyOrOneWildcardLabel() {
        let r = route(0, names: ["a.test", "*.b.test"])
        #expect(r.matches(HandshakeFacts(serverName: "a.test")))
        #expect(r.matches(HandshakeFacts(serverName: "x.b.test")))
        #expect(!r.matches(HandshakeFacts(serverName: "b.test")))
        #expect(!r.matches(HandshakeFacts(serverName: "y.x.b.test")))
        #expect(!r.matches(HandshakeFacts(serverName: "aa.test")))
        #expect(!r.matches(HandshakeFacts()), "no SNI matches no server_name route")
    }

    @Test func clientIdentityMatchesCommonNameDNSNameOrURI() {
        let cn = route(0, identities: ["device-7"])
        #expect(cn.matches(HandshakeFacts(certificate: CertificateIdentity(commonName: "device-7"))))
        #expect(!cn.matches(HandshakeFacts(certificate: CertificateIdentity(commonName: "device-8"))))
        #expect(!cn.matches(HandshakeFacts(pskIdentity: "device-7")), "a PSK identity is not a certificate identity")
        let uri = route(1, identities: ["spiffe://example.org/sensors/*"])
        #expect(
            uri.matches(HandshakeFacts(certificate: CertificateIdentity(uris: ["spiffe://example.org/sensors/t1"]))))
        #expect(
            !uri.matches(HandshakeFacts(certificate: CertificateIdentity(uris: ["spiffe://example.org/actuators/t1"]))))
        let dns = route(2, identities: ["*.devices.test"])
        #expect(dns.matches(HandshakeFacts(certificate: CertificateIdentity(dnsNames: ["d1.devices.test"]))))
    }

    @Test func everyKeyARouteSetsMustMatch() {
        let r = route(0, names: ["a.test"], psk: ["dev1"])
        #expect(r.matches(HandshakeFacts(serverName: "a.test", pskIdentity: "dev1")))
        #expect(!r.matches(HandshakeFacts(serverName: "a.test", pskIdentity: "dev2")))
        #expect(!r.matches(HandshakeFacts(pskIdentity: "dev1")))
    }

    @Test func theFirstMatchingRouteWinsThenTheDefault() throws {
        var listener = ListenerConfiguration(
            index: 0, name: "l", listen: EndpointAddress(host: "127.0.0.1", port: 5684),
            backend: EndpointAddress(host: "127.0.0.1", port: 5683))
        listener.routes = [route(0, names: ["*.a.test"]), route(1, names: ["x.a.test"]), route(2, psk: ["dev1"])]
        let table = try RouteTable.resolve(listener) { try SocketAddress(ipAddress: $0.host, port: $0.port) }
        #expect(table.select(HandshakeFacts(serverName: "x.a.test"))?.name == "r0")
        #expect(table.select(HandshakeFacts(pskIdentity: "dev1"))?.name == "r2")
        #expect(table.select(HandshakeFacts(serverName: "other.test"))?.name == "default")
        listener.defaultTarget = nil
        let strict = try RouteTable.resolve(listener) { try SocketAddress(ipAddress: $0.host, port: $0.port) }
        #expect(strict.select(HandshakeFacts(serverName: "other.test")) == nil, "no route and no default: refused")
    }
}

@Suite("Backend pools: rendezvous hashing, round robin, back-off")
struct BackendPoolTests {
    private static func pool(
        _ ports: [Int], balance: BalanceMode = .hash, backoff: TimeAmount = .seconds(10)
    ) throws -> BackendPool {
        let endpoints = ports.map { EndpointAddress(host: "127.0.0.1", port: $0) }
        return BackendPool(
            addresses: try endpoints.map { try SocketAddress(ipAddress: $0.host, port: $0.port) },
            endpoints: endpoints, balance: balance, backoff: backoff)
    }

    private static func clients(_ count: Int) throws -> [SocketAddress] {
        try (0..<count).map { try SocketAddress(ipAddress: "10.0.\($0 / 200).\($0 % 200 + 1)", port: 40000 + $0) }
    }

    @Test func hashingSpreadsClientsAndIsStable() throws {
        let pool = try Self.pool([6001, 6002, 6003])
        let clients = try Self.clients(3000)
        let placement = clients.map { pool.choose(for: $0) }
        let counts = (0..<3).map { member in placement.filter { $0 == member }.count }
        #expect(counts.allSatisfy { (800...1200).contains($0) }, "uneven spread: \(counts)")
        let again = try Self.pool([6001, 6002, 6003])
        #expect(
            clients.map { again.choose(for: $0) } == placement,
            "another pool object (another process) places the same way")
    }

    @Test func removingABackendMovesOnlyItsClients() throws {
        let three = try Self.pool([6001, 6002, 6003])
        let two = try Self.pool([6001, 6003])
        for client in try Self.clients(2000) {
            let before = three.endpoints[three.choose(for: client)]
            let after = two.endpoints[two.choose(for: client)]
            if before.port != 6002 { #expect(after == before) }
        }
    }

    @Test func aBackendMarkedDownGetsNoNewSessionsUntilTheBackOffEnds() throws {
        let pool = try Self.pool([6001, 6002], backoff: .seconds(5))
        let clients = try Self.clients(200)
        let start = NIODeadline.uptimeNanoseconds(1_000_000_000_000)
        let onFirst = clients.filter { pool.choose(for: $0, now: start) == 0 }
        #expect(!onFirst.isEmpty)
        #expect(pool.markDown(0, now: start), "the first refusal of an outage reports it")
        #expect(!pool.markDown(0, now: start + .seconds(1)), "a second refusal during the back-off does not")
        #expect(pool.isDown(0, now: start + .seconds(5)))
        #expect(clients.allSatisfy { pool.choose(for: $0, now: start + .seconds(2)) == 1 })
        #expect(!pool.isDown(0, now: start + .seconds(6) + .milliseconds(1)))
        #expect(
            onFirst.allSatisfy { pool.choose(for: $0, now: start + .seconds(7)) == 0 },
            "back after the back-off, on the same backend")
    }

    @Test func whenEveryBackendIsDownTheBestChoiceIsKept() throws {
        let pool = try Self.pool([6001, 6002])
        let client = try SocketAddress(ipAddress: "10.1.1.1", port: 5000)
        let now = NIODeadline.uptimeNanoseconds(1_000_000_000_000)
        let best = pool.choose(for: client, now: now)
        pool.markDown(0, now: now)
        pool.markDown(1, now: now)
        #expect(pool.choose(for: client, now: now) == best)
    }

    @Test func roundRobinTakesTurnsAndSkipsDownBackends() throws {
        let pool = try Self.pool([6001, 6002, 6003], balance: .roundRobin)
        let client = try SocketAddress(ipAddress: "10.1.1.1", port: 5000)
        let now = NIODeadline.uptimeNanoseconds(1_000_000_000_000)
        #expect((0..<6).map { _ in pool.choose(for: client, now: now) } == [0, 1, 2, 0, 1, 2])
        pool.markDown(1, now: now)
        #expect((0..<4).map { _ in pool.choose(for: client, now: now) } == [0, 2, 2, 0])
    }
}

@Suite("PROXY protocol v2 header")
struct ProxyProtocolHeaderTests {
    @Test func ipv4HeaderIsByteExact() throws {
        let header = ProxyProtocolHeader.header(
            source: try SocketAddress(ipAddress: "192.0.2.7", port: 40001),
            destination: try SocketAddress(ipAddress: "198.51.100.1", port: 5684))
        #expect(
            header == [
                0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A,
                0x21, 0x12, 0x00, 0x0C,
                192, 0, 2, 7, 198, 51, 100, 1,
                0x9C, 0x41, 0x16, 0x34,
            ])
    }

    @Test func ipv6HeaderAndMixedFamilies() throws {
        let v6 = ProxyProtocolHeader.header(
            source: try SocketAddress(ipAddress: "2001:db8::1", port: 1),
            destination: try SocketAddress(ipAddress: "::1", port: 2))
        #expect(v6[12...15] == [0x21, 0x22, 0x00, 0x24])
        #expect(Array(v6[16..<32]) == [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [1])
        #expect(Array(v6[32..<48]) == [UInt8](repeating: 0, count: 15) + [1])
        #expect(Array(v6[48...]) == [0, 1, 0, 2])
        let mixed = ProxyProtocolHeader.header(
            source: try SocketAddress(ipAddress: "192.0.2.7", port: 1),
            destination: try SocketAddress(ipAddress: "::", port: 2))
        #expect(mixed[13] == 0x22)
        #expect(Array(mixed[16..<32]) == [UInt8](repeating: 0, count: 10) + [0xFF, 0xFF, 192, 0, 2, 7])
    }

    @Test func tlvsCarryTheNameIdentityAndDTLSFacts() throws {
        let tlvs = ProxyProtocolHeader.sessionTLVs(
            serverName: "a.test", pskIdentity: "dev1", commonName: "client-1",
            certificatePresented: true, resumed: false, version: "DTLSv1.2", cipher: "X")
        let header = ProxyProtocolHeader.header(
            source: try SocketAddress(ipAddress: "127.0.0.1", port: 1),
            destination: try SocketAddress(ipAddress: "127.0.0.1", port: 2), tlvs: tlvs)
        let body = Array(header[28...])
        #expect(Int(header[14]) << 8 | Int(header[15]) == 12 + body.count)
        #expect(Array(body[0..<9]) == [0x02, 0, 6] + Array("a.test".utf8))
        let ssl = Array(body[9...])
        #expect(ssl[0] == 0x20)
        let sslLength = Int(ssl[1]) << 8 | Int(ssl[2])
        #expect(
            Array(ssl[3..<8]) == [0x07, 0, 0, 0, 0], "client: SSL, certificate in connection and session; verify 0")
        #expect(Array(ssl[8..<19]) == [0x21, 0, 8] + Array("DTLSv1.2".utf8))
        #expect(Array(ssl[19..<30]) == [0x22, 0, 8] + Array("client-1".utf8))
        #expect(Array(ssl[30..<34]) == [0x23, 0, 1, UInt8(ascii: "X")])
        #expect(sslLength == 31)
        #expect(Array(ssl[(3 + sslLength)...]) == [0xE0, 0, 4] + Array("dev1".utf8))
    }
}
