import Testing

@testable import DTLSProxy

/// A connector that passes validation, to which a test adds the key it is about.
let minimalConnector = """
    [[connector]]
    listen = "127.0.0.1:5683"
    server = "proxy.example.org:5684"
    server_ca = "ca.pem"
    """

@Suite("ConfigurationLoader: [[connector]]")
struct ConnectorConfigTests {
    @Test func minimalConnectorGetsTheDefaults() throws {
        let folder = try ConfigTestFolder.withCredentials()
        let config = try folder.parse(minimalConnector)
        #expect(config.listeners.isEmpty)
        let connector = try #require(config.connectors.first)
        #expect(connector.index == 0 && connector.name == "connector0")
        #expect(connector.listen == EndpointAddress(host: "127.0.0.1", port: 5683))
        #expect(connector.server == EndpointAddress(host: "proxy.example.org", port: 5684))
        #expect(connector.serverCA == folder.path + "/ca.pem")
        #expect(connector.serverName == "proxy.example.org" && connector.serverIP == nil)
        #expect(connector.certificate == nil && connector.privateKey == nil && connector.pskIdentity == nil)
        #expect(connector.minVersion == .dtls1_2 && connector.maxVersion == .dtls1_2)
        #expect(connector.idleTimeout == .seconds(120) && connector.handshakeTimeout == .seconds(15))
        #expect(connector.mtu == 1400 && connector.maxSessions == 100_000 && connector.verifyDepth == 4)
        #expect(connector.sessionTickets)
    }

    @Test func everyKeyIsRead() throws {
        let folder = try ConfigTestFolder.withCredentials()
        let config = try folder.parse(
            minimalListener + "\n" + """
                [[connector]]
                name = "tunnel"
                listen = "[::1]:5140"
                server = "10.0.0.7:6514"
                server_ca = "ca.pem"
                server_name = "syslog.example.org"
                verify_depth = 2
                certificate = "server.pem"
                private_key = "server.key"
                psk_identity = "dev1"
                psk_file = "psk.txt"
                min_version = "1.0"
                max_version = "1.2"
                ciphers = "PSK-AES128-GCM-SHA256"
                groups = "P-256"
                idle_timeout = "30s"
                handshake_timeout = "3s"
                mtu = 1200
                max_sessions = 10
                allow_world_readable_keys = true
                session_tickets = false
                """)
        #expect(config.listeners.count == 1)
        let connector = try #require(config.connectors.first)
        #expect(connector.name == "tunnel" && connector.listen == EndpointAddress(host: "::1", port: 5140))
        #expect(connector.serverName == "syslog.example.org" && connector.serverIP == nil)
        #expect(connector.verifyDepth == 2 && connector.minVersion == .dtls1_0)
        #expect(
            connector.certificate == folder.path + "/server.pem" && connector.privateKey == folder.path + "/server.key")
        #expect(
            connector.pskIdentity == "dev1"
                && connector.pskKey == Array(0x00...0xFF).filter { $0 % 0x11 == 0 }.map { UInt8($0) })
        #expect(connector.ciphers == "PSK-AES128-GCM-SHA256" && connector.groups == "P-256")
        #expect(connector.idleTimeout == .seconds(30) && connector.handshakeTimeout == .seconds(3))
        #expect(connector.mtu == 1200 && connector.maxSessions == 10 && connector.allowWorldReadableKeys)
        #expect(!connector.sessionTickets)
        #expect(!String(describing: connector).contains("entries"))
    }

    @Test func anIPServerIsCheckedByAddressAndSendsNoSNI() throws {
        let folder = try ConfigTestFolder.withCredentials()
        let ipv4 = try folder.parse(minimalConnector.replacingOccurrences(of: "proxy.example.org", with: "192.0.2.1"))
        #expect(ipv4.connectors[0].serverName == nil && ipv4.connectors[0].serverIP == "192.0.2.1")
        let ipv6 = try folder.parse(
            minimalConnector.replacingOccurrences(of: "proxy.example.org", with: "[2001:db8::1]"))
        #expect(ipv6.connectors[0].serverIP == "2001:db8::1")
        let named = try folder.parse(
            minimalConnector.replacingOccurrences(of: "proxy.example.org", with: "192.0.2.1")
                + "\nserver_name = \"a.test\"\n")
        #expect(named.connectors[0].serverName == "a.test" && named.connectors[0].serverIP == nil)
    }

    @Test func aConnectorAloneIsEnoughButSomethingIsRequired() throws {
        let folder = try ConfigTestFolder.withCredentials()
        #expect(folder.error(minimalConnector) == nil)
        let none = folder.error("[daemon]\nworkers = 1\n")
        #expect(none?.key == "listener")
        #expect(none?.cause == "no [[listener]] or [[connector]] defined; at least one is required")
        let notArray = folder.error("connector = 3\n")
        #expect(
            notArray?.key == "connector"
                && notArray?.cause == "expected an array of tables ([[connector]]), found integer")
    }

    @Test func errorsNameTheConnectorKey() throws {
        let folder = try ConfigTestFolder.withCredentials()
        let cases: [(String, String, String)] = [
            (
                "[[connector]]\nserver = \"a.test:1\"\nserver_ca = \"ca.pem\"\n", "connector[0].listen",
                "missing: every connector needs a local listen address, e.g. \"127.0.0.1:5683\""
            ),
            (
                "[[connector]]\nlisten = \"127.0.0.1:1\"\nserver_ca = \"ca.pem\"\n", "connector[0].server",
                "missing: every connector needs the DTLS server's address, e.g. \"proxy.example.org:5684\""
            ),
            (
                "[[connector]]\nlisten = \"127.0.0.1:1\"\nserver = \"a.test:1\"\n", "connector[0].server_ca",
                "missing: a connector needs server_ca (to verify the server's certificate) or psk_identity + psk_file; there is no unauthenticated mode"
            ),
            (
                minimalConnector + "\nserver_nmae = \"x\"\n", "connector[0].server_nmae",
                "unknown key; did you mean `server_name`?"
            ),
            (
                minimalConnector + "\nserver_name = \"bad name\"\n", "connector[0].server_name",
                "invalid host name \"bad name\" (only letters, digits, \"-\", \"_\" and \".\")"
            ),
            (
                minimalConnector + "\nserver_name = \"\"\n", "connector[0].server_name",
                "empty; leave the key out to check the host of server"
            ),
            (
                minimalConnector + "\npsk_identity = \"dev1\"\n", "connector[0].psk_file",
                "missing: psk_identity needs a psk_file that holds its key"
            ),
            (
                minimalConnector + "\npsk_file = \"psk.txt\"\n", "connector[0].psk_identity",
                "missing: psk_file needs psk_identity (which of its identities this connector uses)"
            ),
            (
                minimalConnector + "\npsk_file = \"psk.txt\"\npsk_identity = \"dev9\"\n", "connector[0].psk_identity",
                "\"dev9\" is not an identity of PSKFILE"
            ),
            (
                minimalConnector + "\ncertificate = \"server.pem\"\n", "connector[0].private_key",
                "missing: a client certificate needs its private_key"
            ),
            (
                minimalConnector + "\nprivate_key = \"server.key\"\n", "connector[0].certificate",
                "missing: a private_key needs its certificate"
            ),
            (
                minimalConnector + "\nmin_version = \"1.2\"\nmax_version = \"1.0\"\n", "connector[0].min_version",
                "\"1.2\" is above max_version \"1.0\""
            ),
            (minimalConnector + "\nmtu = 100\n", "connector[0].mtu", "must be between 256 and 65507, found 100"),
            (minimalConnector + "\nidle_timeout = \"0s\"\n", "connector[0].idle_timeout", ""),
            (
                minimalConnector + "\nname = \"a b\"\n", "connector[0].name",
                "invalid name \"a b\" (1 to 64 characters of A-Z, a-z, 0-9, \".\", \"_\" and \"-\")"
            ),
            (
                minimalConnector + "\nciphers = \"  \"\n", "connector[0].ciphers",
                "blank; write \"\" (or leave the key out) for the built-in list"
            ),
        ]
        for (toml, key, cause) in cases {
            let error = folder.error(toml)
            #expect(error?.file == folder.configPath)
            #expect(error?.key == key, "\(toml)")
            if !cause.isEmpty {
                #expect(
                    error?.cause == cause.replacingOccurrences(of: "PSKFILE", with: folder.path + "/psk.txt"), "\(toml)"
                )
            }
        }
    }

    @Test func inlineKeysAreRefusedWithTheRemedy() throws {
        let folder = try ConfigTestFolder.withCredentials()
        let error = folder.error(minimalConnector + "\npsk = \"00112233\"\n")
        #expect(error?.key == "connector[0].psk")
        #expect(error?.cause.contains("psk_file (mode 0600)") == true)
    }

    @Test func filesAreCheckedReadableAndKeyFilesPrivate() throws {
        let folder = try ConfigTestFolder.withCredentials()
        let missing = folder.error(minimalConnector.replacingOccurrences(of: "ca.pem", with: "nope.pem"))
        #expect(missing?.key == "connector[0].server_ca")
        #expect(missing?.cause == "file not found: \(folder.path)/nope.pem")
        try folder.setMode("server.key", 0o644)
        let loose = folder.error(minimalConnector + "\ncertificate = \"server.pem\"\nprivate_key = \"server.key\"\n")
        #expect(loose?.key == "connector[0].private_key")
        #expect(loose?.cause.contains("is readable by group or others (mode 0644)") == true)
        #expect(
            folder.error(
                minimalConnector
                    + "\ncertificate = \"server.pem\"\nprivate_key = \"server.key\"\nallow_world_readable_keys = true\n"
            ) == nil)
        try folder.write("bad-psk.txt", "dev1:xyz\n")
        try folder.setMode("bad-psk.txt", 0o600)
        let badPSK = folder.error(minimalConnector + "\npsk_identity = \"dev1\"\npsk_file = \"bad-psk.txt\"\n")
        #expect(badPSK?.key == "connector[0].psk_file")
        #expect(badPSK?.cause == "\(folder.path)/bad-psk.txt line 1: invalid hex digit \"x\" in key")
    }

    @Test func namesAndAddressesAreUnique() throws {
        let folder = try ConfigTestFolder.withCredentials()
        let twice =
            minimalConnector + "\nname = \"a\"\n" + minimalConnector.replacingOccurrences(of: "5683", with: "5699")
            + "\nname = \"a\"\n"
        let name = folder.error(twice)
        #expect(name?.key == "connector[1].name" && name?.cause == "duplicate name \"a\" (also connector[0])")
        let address = folder.error(minimalConnector + "\n" + minimalConnector)
        #expect(
            address?.key == "connector[1].listen"
                && address?.cause == "127.0.0.1:5683 is also the address of connector[0]")
        let clash = folder.error(
            minimalListener + "\n" + minimalConnector.replacingOccurrences(of: "127.0.0.1:5683", with: "0.0.0.0:5684"))
        #expect(
            clash?.key == "connector[0].listen" && clash?.cause == "0.0.0.0:5684 is also the address of listener[0]")
    }

    @Test func pskOnlyConnectorsOfferNoCertificateSuites() throws {
        let folder = try ConfigTestFolder.withCredentials()
        let config = try folder.parse(
            """
            [[connector]]
            listen = "127.0.0.1:5683"
            server = "127.0.0.1:5684"
            psk_identity = "dev1"
            psk_file = "psk.txt"
            """)
        let list = DTLSClientContext.defaultCipherList(config.connectors[0])
        #expect(list.contains("PSK-AES128-CCM8") && !list.contains("ECDHE-ECDSA"))
        let context = try DTLSClientContext(connector: config.connectors[0], configFile: config.sourcePath)
        #expect(context.psk?.identity == Array("dev1".utf8) && !context.verifiesCertificate)
    }

    @Test func theContextRefusesCiphersTheCredentialsCannotUse() throws {
        let folder = try ConfigTestFolder.withCredentials()
        let config = try folder.parse(
            """
            [[connector]]
            listen = "127.0.0.1:5683"
            server = "127.0.0.1:5684"
            psk_identity = "dev1"
            psk_file = "psk.txt"
            ciphers = "ECDHE-ECDSA-AES128-GCM-SHA256"
            """)
        #expect(throws: ConfigurationError.self) {
            _ = try DTLSClientContext(connector: config.connectors[0], configFile: config.sourcePath)
        }
        do {
            _ = try DTLSClientContext(connector: config.connectors[0], configFile: config.sourcePath)
        } catch {
            #expect(error.key == "connector[0].ciphers")
            #expect(error.cause.hasPrefix("\"ECDHE-ECDSA-AES128-GCM-SHA256\" has no suite usable with psk_file"))
        }
        // ca.pem of the test folder is not a certificate: OpenSSL's refusal names server_ca.
        let bad = try folder.parse(minimalConnector)
        do {
            _ = try DTLSClientContext(connector: bad.connectors[0], configFile: bad.sourcePath)
            Issue.record("a CA file without a certificate was accepted")
        } catch {
            #expect(error.key == "connector[0].server_ca")
            #expect(error.cause.hasPrefix("cannot load CA bundle \(folder.path)/ca.pem"))
        }
    }
}
