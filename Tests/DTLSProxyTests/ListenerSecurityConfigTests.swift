import Testing

@testable import DTLSProxy

@Suite("ConfigurationLoader: who may connect (certificates, PSK, policy, tickets)")
struct ListenerSecurityConfigTests {
    /// A certificate listener; a test appends the keys it is about.
    let certificateListener = """
        [[listener]]
        listen = "0.0.0.0:5684"
        backend = "127.0.0.1:5683"
        certificate = "server.pem"
        private_key = "server.key"

        """

    func key(_ error: ConfigurationError?) -> String? { error?.key }

    @Test func defaults() throws {
        let folder = try ConfigTestFolder.withCredentials()
        let security = try #require(folder.parse(certificateListener).listeners.first).security
        #expect(security == ListenerSecurity())
        #expect(security.clientAuth == .none && security.verifyDepth == 4)
        #expect(security.maxVersion == .dtls1_2 && security.ciphers == nil && security.groups == nil)
        #expect(security.sessionTickets && security.ticketKeyFile == nil && security.ticketKeyRotation == .hours(1))
        #expect(!security.allowWorldReadableKeys)
        let withCA = try folder.parse(certificateListener + "client_ca = \"ca.pem\"\n").listeners[0].security
        #expect(withCA.clientAuth == .require)
    }

    @Test func everySecurityKeyIsRead() throws {
        let folder = try ConfigTestFolder.withCredentials()
        try folder.write("ticket.key", String(repeating: "t", count: 48))
        try folder.setMode("ticket.key", 0o400)
        let listener = try folder.parse(
            certificateListener + """
                client_ca = "ca.pem"
                client_auth = "optional"
                verify_depth = 2
                allow_cn = ["dev1", "dev 2"]
                allow_dns = ["*.example.org"]
                allow_uri = ["spiffe://example.org/sensor/*"]
                psk_file = "psk.txt"
                psk_identity_hint = "lab"
                min_version = "1.0"
                max_version = "1.2"
                ciphers = "ECDHE-ECDSA-AES256-GCM-SHA384:PSK-AES128-CCM8"
                groups = "P-256"
                ticket_key_file = "ticket.key"
                ticket_key_rotation = "10m"
                allow_world_readable_keys = false
                """
        ).listeners[0]
        let security = listener.security
        #expect(security.clientAuth == .optional && security.verifyDepth == 2)
        #expect(
            security.identityPolicy
                == ClientIdentityPolicy(
                    allowCN: ["dev1", "dev 2"], allowDNS: ["*.example.org"], allowURI: ["spiffe://example.org/sensor/*"]
                ))
        #expect(security.pskIdentityHint == "lab")
        #expect(listener.minVersion == .dtls1_0 && security.maxVersion == .dtls1_2)
        #expect(security.ciphers == "ECDHE-ECDSA-AES256-GCM-SHA384:PSK-AES128-CCM8" && security.groups == "P-256")
        #expect(security.ticketKeyFile == folder.path + "/ticket.key")
        #expect(security.ticketSecret == Array(repeating: UInt8(ascii: "t"), count: 48))
        #expect(security.ticketKeyRotation == .minutes(10))
        #expect(
            try folder.parse(certificateListener + "session_tickets = false\n").listeners[0].security.sessionTickets
                == false)
        // Empty strings mean the default, so that an example may show every key.
        let empty = try folder.parse(
            certificateListener + """
                ciphers = ""
                groups = ""
                psk_identity_hint = ""
                ticket_key_file = ""
                verify_depth = 4
                allow_cn = []
                """
        ).listeners[0].security
        #expect(empty == ListenerSecurity())
    }

    @Test(arguments: [
        ("client_auth = \"require\"\n", "listener[0].client_auth", "needs client_ca"),
        ("client_ca = \"ca.pem\"\nclient_auth = \"maybe\"\n", "listener[0].client_auth", "unknown mode \"maybe\""),
        ("client_ca = \"ca.pem\"\nverify_depth = 33\n", "listener[0].verify_depth", "between 0 and 32"),
        ("allow_cn = [\"dev1\"]\n", "listener[0].allow_cn", "need client_ca"),
        (
            "client_ca = \"ca.pem\"\nclient_auth = \"none\"\nallow_uri = [\"urn:a\"]\n", "listener[0].allow_uri",
            "client_auth = \"none\""
        ),
        ("client_ca = \"ca.pem\"\nallow_cn = \"dev1\"\n", "listener[0].allow_cn", "expected an array"),
        ("client_ca = \"ca.pem\"\nallow_cn = [\"a\", 1]\n", "listener[0].allow_cn[1]", "expected a string"),
        ("client_ca = \"ca.pem\"\nallow_cn = [\"a\", \"a\"]\n", "listener[0].allow_cn[1]", "listed twice"),
        ("client_ca = \"ca.pem\"\nallow_dns = [\"a..b\"]\n", "listener[0].allow_dns[0]", "not a DNS name"),
        ("client_ca = \"ca.pem\"\nallow_uri = [\"sensor-7\"]\n", "listener[0].allow_uri[0]", "not an absolute URI"),
        ("psk_identity_hint = \"lab\"\n", "listener[0].psk_identity_hint", "needs psk_file"),
        ("min_version = \"1.1\"\n", "listener[0].min_version", "unknown version \"1.1\""),
        ("min_version = 1.2\n", "listener[0].min_version", "expected a string"),
        ("min_version = \"1.2\"\nmax_version = \"1.0\"\n", "listener[0].min_version", "above max_version \"1.0\""),
        ("ciphers = \" \"\n", "listener[0].ciphers", "blank"),
        ("groups = \"\t\"\n", "listener[0].groups", "blank"),
        ("session_tickets = \"no\"\n", "listener[0].session_tickets", "expected a boolean"),
        ("ticket_key_rotation = \"0s\"\n", "listener[0].ticket_key_rotation", "invalid duration"),
        ("ticket_key_rotation = \"200h\"\n", "listener[0].ticket_key_rotation", "between 1s and 168h"),
        ("ticket_key_file = \"missing.key\"\n", "listener[0].ticket_key_file", "file not found"),
        (
            "session_tickets = false\nticket_key_file = \"server.key\"\n", "listener[0].ticket_key_file",
            "session_tickets = false"
        ),
        ("allow_world_readable_keys = 1\n", "listener[0].allow_world_readable_keys", "expected a boolean"),
    ])
    func rejected(extra: String, key: String, cause: String) throws {
        let folder = try ConfigTestFolder.withCredentials()
        let error = try #require(folder.error(certificateListener + extra))
        #expect(error.key == key)
        #expect(error.cause.contains(cause), "\(error.cause)")
    }

    @Test func shortTicketKeyFile() throws {
        let folder = try ConfigTestFolder.withCredentials()
        let path = try folder.write("ticket.key", "short")
        try folder.setMode("ticket.key", 0o600)
        let error = try #require(folder.error(certificateListener + "ticket_key_file = \"ticket.key\"\n"))
        #expect(error.key == "listener[0].ticket_key_file")
        #expect(
            error.cause
                == "\(path) holds 5 bytes; a ticket key secret needs at least 32 (create one with `openssl rand 48 > \(path)`)"
        )
    }

    @Test(arguments: [("server.key", "private_key"), ("psk.txt", "psk_file"), ("ticket.key", "ticket_key_file")])
    func keyFilesReadableByOthersAreRefused(file: String, key: String) throws {
        let folder = try ConfigTestFolder.withCredentials()
        try folder.write("ticket.key", String(repeating: "t", count: 48))
        try folder.setMode("ticket.key", 0o600)
        try folder.setMode(file, 0o640)
        let toml = certificateListener + "psk_file = \"psk.txt\"\nticket_key_file = \"ticket.key\"\n"
        let error = try #require(folder.error(toml))
        #expect(error.key == "listener[0].\(key)")
        let path = folder.path + "/" + file
        #expect(
            error.cause
                == "\(path) is readable by group or others (mode 0640); run `chmod 600 \(path)` or set allow_world_readable_keys = true"
        )
        try folder.setMode(file, 0o604)
        #expect(folder.error(toml)?.cause.contains("mode 0604") == true)
        // The operator may say it is on purpose.
        #expect(folder.error(toml + "allow_world_readable_keys = true\n") == nil)
        try folder.setMode(file, 0o400)
        #expect(folder.error(toml) == nil)
    }

    @Test func dtls13DependsOnTheLinkedOpenSSL() {
        #expect(ConfigurationLoader.parseVersion("1.3", dtls13Supported: true) == .success(.dtls1_3))
        guard case .failure(let problem) = ConfigurationLoader.parseVersion("1.3", dtls13Supported: false) else {
            Issue.record("DTLS 1.3 accepted without support")
            return
        }
        #expect(problem.cause.hasPrefix("DTLS 1.3 is not supported by the linked OpenSSL (OpenSSL "))
        #expect(ConfigurationLoader.parseVersion("1.2", dtls13Supported: false) == .success(.dtls1_2))
        #expect(
            ConfigurationLoader.parseVersion("1.1", dtls13Supported: true)
                == .failure(ConfigValueProblem("unknown version \"1.1\" (use \"1.0\", \"1.2\" or \"1.3\")")))
        #expect(DTLSVersionSetting.dtls1_0 < .dtls1_2 && DTLSVersionSetting.dtls1_2 < .dtls1_3)
    }

    @Test func unknownKeysNearASecurityKeyGetASuggestion() throws {
        let folder = try ConfigTestFolder.withCredentials()
        let error = try #require(folder.error(certificateListener + "allow_cns = [\"a\"]\n"))
        #expect(error.key == "listener[0].allow_cns" && error.cause == "unknown key; did you mean `allow_cn`?")
    }
}
