import Testing

@testable import DTLSProxy

/// A listener with a certificate, a CA and a PSK file, without a backend: tests add routing keys.
private let routedListener = """
    [[listener]]
    listen = "0.0.0.0:5684"
    certificate = "server.pem"
    private_key = "server.key"
    client_ca = "ca.pem"
    client_auth = "optional"
    psk_file = "psk.txt"
    """

@Suite("Routes, backend pools and PROXY protocol: configuration")
struct RouteConfigTests {
    @Test func routesParseInFileOrderWithTheirTargets() throws {
        let folder = try ConfigTestFolder.withCredentials()
        try folder.write("a.pem", "-----BEGIN CERTIFICATE-----\n")
        try folder.write("a.key", "-----BEGIN PRIVATE KEY-----\n")
        try folder.setMode("a.key", 0o600)
        let config = try folder.parse(
            routedListener + """

                backend = "127.0.0.1:5683"
                proxy_protocol = "v2"
                backend_backoff = "3s"

                [[listener.route]]
                name = "service-a"
                server_name = ["a.test", "*.a.test"]
                certificate = "a.pem"
                private_key = "a.key"
                backends = ["127.0.0.1:6001", "127.0.0.1:6002"]
                balance = "round_robin"

                [[listener.route]]
                psk_identity = "dev1"
                backend = "127.0.0.1:6003"
                proxy_protocol = "none"

                [[listener.route]]
                client_identity = "spiffe://example.org/sensors/*"
                backend = "[::1]:6004"
                """)
        let listener = try #require(config.listeners.first)
        #expect(
            listener.defaultTarget
                == BackendTarget(backends: [EndpointAddress(host: "127.0.0.1", port: 5683)], proxyProtocol: .v2))
        #expect(listener.backendBackoff == .seconds(3))
        #expect(listener.routes.map(\.name) == ["service-a", "route1", "route2"])
        let a = listener.routes[0]
        #expect(a.serverNames == ["a.test", "*.a.test"])
        #expect(a.certificate == folder.path + "/a.pem" && a.privateKey == folder.path + "/a.key")
        #expect(a.target.backends.count == 2 && a.target.balance == .roundRobin)
        #expect(a.target.proxyProtocol == .v2, "a route inherits the listener's proxy_protocol")
        #expect(listener.routes[1].pskIdentities == ["dev1"] && listener.routes[1].target.proxyProtocol == .none)
        #expect(listener.routes[2].clientIdentities == ["spiffe://example.org/sensors/*"])
        #expect(listener.routes[2].target.backends == [EndpointAddress(host: "::1", port: 6004)])
    }

    @Test func aListenerWithRoutesNeedsNoBackend() throws {
        let folder = try ConfigTestFolder.withCredentials()
        let config = try folder.parse(
            routedListener + "\n[[listener.route]]\npsk_identity = \"dev1\"\nbackend = \"127.0.0.1:6001\"\n")
        #expect(config.listeners[0].defaultTarget == nil)
    }

    @Test(arguments: [
        ("", "listener[0].backend", "missing: every listener needs a backend"),
        ("backend = \"127.0.0.1:1\"\nbackends = [\"127.0.0.1:2\"]", "listener[0].backends", "not both"),
        ("backends = []", "listener[0].backends", "empty"),
        ("backends = [\"127.0.0.1:2\", \"127.0.0.1:2\"]", "listener[0].backends[1]", "listed twice"),
        ("backends = [\"127.0.0.1\"]", "listener[0].backends[0]", "invalid address"),
        ("backend = \"127.0.0.1:1\"\nbalance = \"hash\"", "listener[0].balance", "applies to a pool"),
        ("backends = [\"127.0.0.1:2\"]\nbalance = \"random\"", "listener[0].balance", "unknown mode \"random\""),
        ("backend = \"127.0.0.1:1\"\nproxy_protocol = \"v1\"", "listener[0].proxy_protocol", "unknown value \"v1\""),
        ("backend = \"127.0.0.1:1\"\nbackend_backoff = \"0s\"", "listener[0].backend_backoff", "invalid duration"),
        (
            "backend = \"127.0.0.1:1\"\nproxy_protocol_tlvs = \"yes\"", "listener[0].proxy_protocol_tlvs",
            "expected a boolean"
        ),
    ])
    func listenerTargetErrorsNameTheKey(keys: String, key: String, cause: String) throws {
        let folder = try ConfigTestFolder.withCredentials()
        let error = try #require(folder.error(routedListener + "\n" + keys + "\n"))
        #expect(error.key == key)
        #expect(error.cause.contains(cause), "\(error.cause)")
    }

    @Test(arguments: [
        ("backend = \"127.0.0.1:1\"", "listener[0].route[0].server_name", "missing: a route needs at least one of"),
        ("server_name = \"a.test\"", "listener[0].route[0].backend", "missing: every route needs a backend"),
        (
            "server_name = \"a..test\"\nbackend = \"127.0.0.1:1\"", "listener[0].route[0].server_name",
            "is not a DNS name"
        ),
        (
            "server_name = [\"a.test\", \"a.test\"]\nbackend = \"127.0.0.1:1\"", "listener[0].route[0].server_name[1]",
            "listed twice"
        ),
        ("server_name = 7\nbackend = \"127.0.0.1:1\"", "listener[0].route[0].server_name", "expected a string"),
        (
            "psk_identity = \"nobody\"\nbackend = \"127.0.0.1:1\"", "listener[0].route[0].psk_identity",
            "identity \"nobody\" is not in"
        ),
        (
            "server_name = \"a.test\"\ncertificate = \"server.pem\"\nbackend = \"127.0.0.1:1\"",
            "listener[0].route[0].private_key", "missing"
        ),
        (
            "psk_identity = \"dev1\"\ncertificate = \"server.pem\"\nprivate_key = \"server.key\"\nbackend = \"127.0.0.1:1\"",
            "listener[0].route[0].certificate", "set server_name too"
        ),
        (
            "server_name = \"a.test\"\ncertificate = \"absent.pem\"\nprivate_key = \"server.key\"\nbackend = \"127.0.0.1:1\"",
            "listener[0].route[0].certificate", "absent.pem"
        ),
        (
            "server_name = \"a.test\"\nbackend = \"127.0.0.1:1\"\nserver_nme = \"b\"",
            "listener[0].route[0].server_nme", "did you mean `server_name`"
        ),
    ])
    func routeErrorsNameTheRouteAndKey(keys: String, key: String, cause: String) throws {
        let folder = try ConfigTestFolder.withCredentials()
        let error = try #require(
            folder.error(routedListener + "\nbackend = \"127.0.0.1:5683\"\n[[listener.route]]\n" + keys + "\n"))
        #expect(error.key == key)
        #expect(error.cause.contains(cause), "\(error.cause)")
    }

    @Test func aRouteShadowedByAnEarlierOneIsRefused() throws {
        let folder = try ConfigTestFolder.withCredentials()
        let error = try #require(
            folder.error(
                routedListener + """

                    [[listener.route]]
                    server_name = ["a.test", "b.test"]
                    backend = "127.0.0.1:6001"
                    [[listener.route]]
                    server_name = ["b.test", "a.test"]
                    backend = "127.0.0.1:6002"
                    """))
        #expect(error.key == "listener[0].route[1]")
        #expect(error.cause.contains("would never be chosen"))
    }

    @Test func matchKeysNeedTheirCredentials() throws {
        let folder = try ConfigTestFolder.withCredentials()
        let pskOnly = "[[listener]]\nlisten = \"0.0.0.0:5684\"\npsk_file = \"psk.txt\"\n"
        let identity = try #require(
            folder.error(pskOnly + "[[listener.route]]\nclient_identity = \"dev1\"\nbackend = \"127.0.0.1:1\"\n"))
        #expect(identity.key == "listener[0].route[0].client_identity" && identity.cause.contains("needs client_ca"))
        let certOnly =
            "[[listener]]\nlisten = \"0.0.0.0:5684\"\ncertificate = \"server.pem\"\nprivate_key = \"server.key\"\n"
        let psk = try #require(
            folder.error(certOnly + "[[listener.route]]\npsk_identity = \"dev1\"\nbackend = \"127.0.0.1:1\"\n"))
        #expect(psk.key == "listener[0].route[0].psk_identity" && psk.cause.contains("needs the listener's psk_file"))
    }

    @Test func aRouteKeyFileReadableByOthersIsRefused() throws {
        let folder = try ConfigTestFolder.withCredentials()
        try folder.write("a.key", "-----BEGIN PRIVATE KEY-----\n")
        try folder.setMode("a.key", 0o644)
        let error = try #require(
            folder.error(
                routedListener + """

                    backend = "127.0.0.1:5683"
                    [[listener.route]]
                    server_name = "a.test"
                    certificate = "server.pem"
                    private_key = "a.key"
                    backend = "127.0.0.1:6001"
                    """))
        #expect(error.key == "listener[0].route[0].private_key")
        #expect(error.cause.contains("chmod 600"))
    }
}
