import Testing

@testable import DTLSProxy

@Suite("EndpointAddress parsing")
struct EndpointAddressConfigTests {
    @Test(
        "accepts host:port forms",
        arguments: [
            ("127.0.0.1:5683", "127.0.0.1", 5683),
            ("0.0.0.0:5684", "0.0.0.0", 5684),
            ("[::1]:5684", "::1", 5684),
            ("[::]:1", "::", 1),
            ("[fe80::1%eth0]:65535", "fe80::1%eth0", 65535),
            ("[2001:db8::10]:5684", "2001:db8::10", 5684),
            ("localhost:5683", "localhost", 5683),
            ("backend.internal.:5683", "backend.internal.", 5683),
            ("svc_a-1.example.com:80", "svc_a-1.example.com", 80),
        ])
    func valid(text: String, host: String, port: Int) throws {
        let address = try EndpointAddress(parsing: text)
        #expect(address == EndpointAddress(host: host, port: port))
        #expect(address.description == text)
    }

    @Test(
        "rejects malformed addresses",
        arguments: [
            ("", "empty (expected host:port)"),
            ("::1:5684", "an IPv6 address must be in brackets, e.g. \"[::1]:5684\""),
            ("fe80::1", "an IPv6 address must be in brackets, e.g. \"[::1]:5684\""),
            ("localhost", "missing port (expected host:port)"),
            ("localhost:", "missing port (expected host:port)"),
            (":5684", "missing host (expected host:port)"),
            ("host:0", "invalid port \"0\" (must be 1 to 65535)"),
            ("host:65536", "invalid port \"65536\" (must be 1 to 65535)"),
            ("host:http", "invalid port \"http\" (must be 1 to 65535)"),
            ("host:-1", "invalid port \"-1\" (must be 1 to 65535)"),
            ("host:0000080", "invalid port \"0000080\" (must be 1 to 65535)"),
            ("[::1]", "missing port after \"]\" (expected [address]:port)"),
            ("[::1:5684", "missing \"]\" after the IPv6 address"),
            ("[]:5684", "missing address between \"[\" and \"]\""),
            ("[1.2.3.4]:80", "brackets are only for IPv6 addresses (write 1.2.3.4:port)"),
            ("[::g]:80", "invalid IPv6 address \"::g\""),
            ("300.1.1.1:80", "invalid IPv4 address \"300.1.1.1\""),
            ("1.2.3:80", "invalid IPv4 address \"1.2.3\""),
            ("bad host:80", "invalid host name \"bad host\" (only letters, digits, \"-\", \"_\" and \".\")"),
            ("a..b:80", "invalid host name \"a..b\" (empty label)"),
            ("-a.b:80", "invalid host name \"-a.b\" (a label cannot start or end with \"-\")"),
        ])
    func invalid(text: String, reason: String) {
        #expect(throws: EndpointParseError(reason)) { try EndpointAddress(parsing: text) }
    }
}
