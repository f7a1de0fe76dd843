import Foundation
import Testing

@testable import DTLSProxy

/// A fresh folder under the temporary folder, removed when the value goes away.
@Suite("ConfigurationLoader: structure, types and values")
struct ConfigurationLoaderTests {
    @Test func minimalConfigurationGetsTheDefaults() throws {
        let folder = try ConfigTestFolder.withCredentials()
        let config = try folder.parse(minimalListener)
        #expect(config.sourcePath == folder.configPath)
        #expect(config.daemon == DaemonConfiguration())
        #expect(config.daemon.shutdownTimeout == .seconds(5))
        let listener = try #require(config.listeners.first)
        #expect(config.listeners.count == 1)
        #expect(listener.index == 0 && listener.name == "listener0")
        #expect(listener.listen == EndpointAddress(host: "0.0.0.0", port: 5684))
        #expect(listener.defaultTarget?.backends == [EndpointAddress(host: "127.0.0.1", port: 5683)])
        #expect(listener.certificate == nil && listener.privateKey == nil && listener.clientCA == nil)
        #expect(listener.pskFile == folder.path + "/psk.txt")
        #expect(listener.pskTable?.identities == ["dev1"])
        #expect(String(describing: listener).contains("PSKTable(1 identity)"))
        #expect(!String(describing: listener).contains("entries"))
        #expect(listener.minVersion == .dtls1_2)
        #expect(listener.idleTimeout == .seconds(120) && listener.handshakeTimeout == .seconds(15))
        #expect(listener.mtu == 1400 && listener.maxSessions == 100_000)
    }

    @Test func everyKeyIsRead() throws {
        let folder = try ConfigTestFolder.withCredentials()
        let secret = try folder.write("secrets/cookie.bin", String(repeating: "k", count: 32))
        let config = try folder.parse(
            """
            [daemon]
            log_level = "debug"
            workers = 4
            cookie_secret_file = "\(secret)"
            metrics_listen = "[::1]:9464"
            shutdown_timeout = "1m30s"

            [[listener]]
            name = "coaps"
            listen = "[::]:5684"
            backend = "localhost:5683"
            certificate = "server.pem"
            private_key = "./server.key"
            client_ca = "\(folder.path)/ca.pem"
            psk_file = "psk.txt"
            min_version = "1.0"
            idle_timeout = "30s"
            handshake_timeout = "2.5s"
            mtu = 1200
            max_sessions = 50

            [[listener]]
            name = "syslog-tls_2.a"
            listen = "127.0.0.1:6514"
            backend = "127.0.0.1:514"
            certificate = "server.pem"
            private_key = "server.key"
            """)
        #expect(config.daemon.logLevel == .debug)
        #expect(config.daemon.workers == 4)
        #expect(config.daemon.cookieSecretFile == secret)
        #expect(config.daemon.metricsListen == EndpointAddress(host: "::1", port: 9464))
        #expect(config.daemon.shutdownTimeout == .seconds(90))
        let coaps = config.listeners[0]
        #expect(coaps.name == "coaps")
        #expect(coaps.listen == EndpointAddress(host: "::", port: 5684))
        #expect(coaps.defaultTarget?.backends == [EndpointAddress(host: "localhost", port: 5683)])
        #expect(coaps.certificate == folder.path + "/server.pem")
        #expect(coaps.privateKey == folder.path + "/server.key")
        #expect(coaps.clientCA == folder.path + "/ca.pem")
        #expect(coaps.pskTable?.count == 1)
        #expect(coaps.minVersion == .dtls1_0)
        #expect(coaps.idleTimeout == .seconds(30) && coaps.handshakeTimeout == .milliseconds(2500))
        #expect(coaps.mtu == 1200 && coaps.maxSessions == 50)
        #expect(config.listeners[1].index == 1 && config.listeners[1].name == "syslog-tls_2.a")
        #expect(config.listeners[1].pskFile == nil && config.listeners[1].pskTable == nil)
    }

    @Test func emptyStringsMeanUnset() throws {
        let folder = try ConfigTestFolder.withCredentials()
        let config = try folder.parse(
            """
            [daemon]
            cookie_secret_file = ""
            metrics_listen = ""
            \(minimalListener)
            certificate = ""
            private_key = ""
            client_ca = ""
            """)
        #expect(config.daemon.cookieSecretFile == nil && config.daemon.metricsListen == nil)
        #expect(config.listeners[0].certificate == nil && config.listeners[0].clientCA == nil)
    }

    @Test(
        "unknown keys are errors, with a suggestion when one is close",
        arguments: [
            ("listeners = 1\n", "listeners", "unknown key; did you mean `listener`?"),
            ("colour = 1\n", "colour", "unknown key"),
            ("[daemon]\nfoo = 1\n", "daemon.foo", "unknown key"),
            ("[daemon]\nworker = 1\n", "daemon.worker", "unknown key; did you mean `workers`?"),
            ("[daemon.log]\nlevel = 1\n", "daemon.log", "unknown key"),
            ("[[listener]]\nlisen = \"x\"\n", "listener[0].lisen", "unknown key; did you mean `listen`?"),
            (
                "[[listener]]\nidle-timeout = \"1s\"\n", "listener[0].idle-timeout",
                "unknown key; did you mean `idle_timeout`?"
            ),
        ])
    func unknownKey(toml: String, key: String, cause: String) throws {
        let folder = try ConfigTestFolder.withCredentials()
        #expect(folder.error(toml) == ConfigurationError(file: folder.configPath, key: key, cause: cause))
    }

    @Test func unknownKeyInASecondListener() throws {
        let folder = try ConfigTestFolder.withCredentials()
        let error = folder.error(minimalListener + "\n" + minimalListener + "\nfoo = true\n")
        #expect(error?.key == "listener[1].foo" && error?.cause == "unknown key")
    }

    @Test(
        "wrong TOML types name the expected and found types",
        arguments: [
            ("daemon = 1\n" + minimalListener, "daemon", "expected a table, found integer"),
            ("[daemon]\nworkers = \"4\"\n" + minimalListener, "daemon.workers", "expected an integer, found string"),
            ("[daemon]\nlog_level = true\n" + minimalListener, "daemon.log_level", "expected a string, found boolean"),
            (
                "[listener]\nlisten = \"0.0.0.0:1\"\n", "listener",
                "expected an array of tables ([[listener]]), found table"
            ),
            ("listener = [1]\n", "listener[0]", "expected a table, found integer"),
            (
                minimalListener + "\nmtu = 1400.0\n", "listener[0].mtu",
                "expected an integer, found floating-point number"
            ),
            (minimalListener + "\nname = 5\n", "listener[0].name", "expected a string, found integer"),
            (
                minimalListener + "\ncertificate = [\"a\"]\n", "listener[0].certificate",
                "expected a string, found array"
            ),
            (
                minimalListener + "\nidle_timeout = 30\n", "listener[0].idle_timeout",
                "expected a string, found integer (write a duration with a unit, e.g. \"30s\")"
            ),
            (
                minimalListener + "\nmin_version = 1.2\n", "listener[0].min_version",
                "expected a string, found floating-point number (write \"1.0\" or \"1.2\" in quotes)"
            ),
        ])
    func wrongType(toml: String, key: String, cause: String) throws {
        let folder = try ConfigTestFolder.withCredentials()
        #expect(folder.error(toml) == ConfigurationError(file: folder.configPath, key: key, cause: cause))
    }

    @Test(
        "values out of range or not in the allowed set",
        arguments: [
            (
                "[daemon]\nworkers = 1025\n" + minimalListener, "daemon.workers",
                "must be between 0 and 1024, found 1025"
            ),
            ("[daemon]\nworkers = -1\n" + minimalListener, "daemon.workers", "must be between 0 and 1024, found -1"),
            (
                "[daemon]\nlog_level = \"verbose\"\n" + minimalListener, "daemon.log_level",
                "unknown level \"verbose\" (use trace, debug, info, notice, warning or error)"
            ),
            (
                "[daemon]\nmetrics_listen = \"9464\"\n" + minimalListener, "daemon.metrics_listen",
                "invalid address \"9464\": missing port (expected host:port)"
            ),
            (
                "[daemon]\nshutdown_timeout = \"5\"\n" + minimalListener, "daemon.shutdown_timeout",
                "invalid duration \"5\": missing unit (use ms, s, m or h)"
            ),
            (minimalListener + "\nmtu = 255\n", "listener[0].mtu", "must be between 256 and 65507, found 255"),
            (minimalListener + "\nmtu = 65508\n", "listener[0].mtu", "must be between 256 and 65507, found 65508"),
            (
                minimalListener + "\nmax_sessions = 0\n", "listener[0].max_sessions",
                "must be between 1 and 10000000, found 0"
            ),
            (
                minimalListener + "\nmax_sessions = 10000001\n", "listener[0].max_sessions",
                "must be between 1 and 10000000, found 10000001"
            ),
            (
                minimalListener + "\nmin_version = \"1.1\"\n", "listener[0].min_version",
                "unknown version \"1.1\" (use \"1.0\" or \"1.2\")"
            ),
            (
                minimalListener + "\nidle_timeout = \"0s\"\n", "listener[0].idle_timeout",
                "invalid duration \"0s\": must be greater than zero"
            ),
            (
                minimalListener + "\nhandshake_timeout = \"10 s\"\n", "listener[0].handshake_timeout",
                "invalid duration \"10 s\": unexpected character \" \""
            ),
            (
                minimalListener + "\nname = \"\"\n", "listener[0].name",
                "invalid name \"\" (1 to 64 characters of A-Z, a-z, 0-9, \".\", \"_\" and \"-\")"
            ),
            (
                minimalListener + "\nname = \"co aps\"\n", "listener[0].name",
                "invalid name \"co aps\" (1 to 64 characters of A-Z, a-z, 0-9, \".\", \"_\" and \"-\")"
            ),
            (
                minimalListener + "\nname = \"\(String(repeating: "n", count: 65))\"\n", "listener[0].name",
                "invalid name \"\(String(repeating: "n", count: 65))\" (1 to 64 characters of A-Z, a-z, 0-9, \".\", \"_\" and \"-\")"
            ),
        ])
    func badValue(toml: String, key: String, cause: String) throws {
        let folder = try ConfigTestFolder.withCredentials()
        #expect(folder.error(toml) == ConfigurationError(file: folder.configPath, key: key, cause: cause))
    }

    @Test func durationErrorReadsAsDocumented() throws {
        let folder = try ConfigTestFolder.withCredentials()
        let error = try #require(folder.error(minimalListener + "\nidle_timeout = \"30\"\n"))
        #expect(
            error.description
                == "\(folder.configPath): listener[0].idle_timeout: invalid duration \"30\": missing unit (use ms, s, m or h)"
        )
    }

    @Test func shutdownTimeoutMayBeZero() throws {
        let folder = try ConfigTestFolder.withCredentials()
        #expect(
            try folder.parse("[daemon]\nshutdown_timeout = \"0s\"\n" + minimalListener).daemon.shutdownTimeout == .zero)
    }

    @Test func nameMayBeExactly64Characters() throws {
        let folder = try ConfigTestFolder.withCredentials()
        let name = String(repeating: "n", count: 64)
        #expect(try folder.parse(minimalListener + "\nname = \"\(name)\"\n").listeners[0].name == name)
    }

    @Test func listenAndBackendAreRequiredAndParsed() throws {
        let folder = try ConfigTestFolder.withCredentials()
        let noListen = folder.error("[[listener]]\nbackend = \"127.0.0.1:5683\"\npsk_file = \"psk.txt\"\n")
        #expect(noListen?.key == "listener[0].listen")
        #expect(noListen?.cause.hasPrefix("missing:") == true)
        let noBackend = folder.error("[[listener]]\nlisten = \"0.0.0.0:5684\"\npsk_file = \"psk.txt\"\n")
        #expect(noBackend?.key == "listener[0].backend")
        #expect(noBackend?.cause.hasPrefix("missing:") == true)
        let unbracketed = folder.error(
            "[[listener]]\nlisten = \"::1:5684\"\nbackend = \"127.0.0.1:5683\"\npsk_file = \"psk.txt\"\n")
        #expect(
            unbracketed
                == ConfigurationError(
                    file: folder.configPath, key: "listener[0].listen",
                    cause: "invalid address \"::1:5684\": an IPv6 address must be in brackets, e.g. \"[::1]:5684\""))
        let badPort = folder.error(
            "[[listener]]\nlisten = \"0.0.0.0:5684\"\nbackend = \"127.0.0.1:99999\"\npsk_file = \"psk.txt\"\n")
        #expect(badPort?.key == "listener[0].backend")
        #expect(badPort?.cause == "invalid address \"127.0.0.1:99999\": invalid port \"99999\" (must be 1 to 65535)")
    }

    @Test func atLeastOneListener() throws {
        let folder = try ConfigTestFolder.withCredentials()
        for toml in ["", "[daemon]\nworkers = 2\n", "listener = []\n"] {
            let error = folder.error(toml)
            #expect(error?.key == "listener")
            #expect(error?.cause == "no [[listener]] or [[connector]] defined; at least one is required")
        }
    }

    @Test func namesAndListenAddressesAreUnique() throws {
        let folder = try ConfigTestFolder.withCredentials()
        let duplicateName = folder.error(
            minimalListener + "\nname = \"a\"\n" + """
                [[listener]]
                name = "a"
                listen = "0.0.0.0:5685"
                backend = "127.0.0.1:5683"
                psk_file = "psk.txt"
                """)
        #expect(duplicateName?.key == "listener[1].name")
        #expect(duplicateName?.cause == "duplicate name \"a\" (also listener[0])")
        // An explicit name may collide with another listener's default name.
        let withDefault = folder.error(
            minimalListener + "\n" + minimalListener.replacingOccurrences(of: "5684", with: "5685")
                + "\nname = \"listener0\"\n")
        #expect(withDefault?.key == "listener[1].name")
        let sameAddress = folder.error(minimalListener + "\n" + minimalListener)
        #expect(sameAddress?.key == "listener[1].listen")
        #expect(sameAddress?.cause == "0.0.0.0:5684 is also the address of listener[0]")
    }

    @Test func tomlSyntaxErrorsGiveLineAndColumn() throws {
        let folder = try ConfigTestFolder.withCredentials()
        let error = try #require(folder.error("[daemon]\nworkers = = 2\n"))
        #expect(error.file == folder.configPath && error.key == "")
        #expect(error.cause.hasPrefix("TOML syntax error at line 2, column "))
        #expect(error.description.hasPrefix("\(folder.configPath): TOML syntax error at line 2, column "))
        let nul = try #require(folder.error("[daemon]\nwork\u{0}ers = 2\n"))
        #expect(nul.cause == "TOML syntax error at line 2, column 5: NUL characters are not allowed")
    }

    /// Found by fuzzing: a table header whose key starts with neither a key
    /// character nor a quote (`[=`) made the TOML parser abort the process.
    @Test func tableHeaderWithoutKeyIsASyntaxError() throws {
        let folder = try ConfigTestFolder.withCredentials()
        let cases: [(toml: String, line: Int, column: Int)] = [
            ("[=", 1, 2),
            ("[[=\n", 1, 3),
            ("[daemon]\n  [[ +listener]]\n", 2, 6),
            ("[daemon]\n[\n", 2, 2),
            ("[\r\n", 1, 2),
            ("\u{FEFF}[=", 1, 3),
            ("[é]", 1, 2),
        ]
        for (toml, line, column) in cases {
            let error = try #require(folder.error(toml), "\(toml.debugDescription)")
            #expect(error.key == "")
            #expect(
                error.cause
                    == "TOML syntax error at line \(line), column \(column): expected a key (a bare key or a quoted one) in the table header",
                "\(toml.debugDescription)")
        }
        // Headers the parser itself reports, and keys it accepts, are left to it.
        for toml in [
            "[", "[[", "[ [daemon]]", "[]", "[ \"daemon\" ]\nworkers = 1\n", "[ 'daemon']\n",
            "a = [\n  [ \"x\" ],\n]\n",
        ] {
            let error = folder.error(toml)
            #expect(
                error?.cause.contains("expected a key (a bare key or a quoted one)") != true, "\(toml.debugDescription)"
            )
        }
        #expect(TOMLPreflight.problem(in: "[daemon]\n[[listener]]\nname = \"a\"\n") == nil)
    }

    /// Found by fuzzing: `}` where an array expects a value made the TOML parser abort the process.
    @Test func closingBraceInAnArrayIsASyntaxError() throws {
        let folder = try ConfigTestFolder.withCredentials()
        let cases: [(toml: String, line: Int, column: Int)] = [
            ("a = [}", 1, 6),
            ("a = [1, }", 1, 9),
            ("[daemon]\nx = [[[[}\n", 2, 9),
            ("a = { b = [ # c\n } }", 2, 2),
            ("s = \"\"\"\nthree\nlines\"\"\"\na = [ \"x\",\n  }\n", 5, 3),
        ]
        for (toml, line, column) in cases {
            let error = try #require(folder.error(toml), "\(toml.debugDescription)")
            #expect(
                error.cause
                    == "TOML syntax error at line \(line), column \(column): expected a value or ']' in the array, saw '}'",
                "\(toml.debugDescription)")
        }
        // Braces and brackets inside strings and comments, and inline tables in arrays, are fine.
        let fine = [
            #"a = ["}", '}', """}"# + "\n" + #"]""", '''"# + "\n" + #"}'''] # }"# + "\n",
            "a = [{ b = 1 }, { c = [2] }]\n",
            "a = [ # ]\n  \"\\\"}\", # }\n]\n",
            "a = \"\"\"x\"\"\"\"\"\nb = [1]\n",
        ]
        for toml in fine {
            #expect(TOMLPreflight.problem(in: toml) == nil, "\(toml.debugDescription)")
            #expect(folder.error(toml)?.cause.hasPrefix("TOML syntax error") != true, "\(toml.debugDescription)")
        }
    }

    @Test func configurationErrorIsOneLine() {
        #expect(
            ConfigurationError(file: "/c.toml", key: "daemon.workers", cause: "bad").description
                == "/c.toml: daemon.workers: bad")
        #expect(
            ConfigurationError(file: "/c.toml", key: "", cause: "cannot read: x").description
                == "/c.toml: cannot read: x")
        #expect(
            ConfigurationError(file: "/c.toml", key: "k", cause: "two\nlines").description == "/c.toml: k: two lines")
    }

    @Test func editDistanceForSuggestions() {
        #expect(ConfigurationLoader.editDistance("listen", "lisen") == 1)
        #expect(ConfigurationLoader.editDistance("", "abc") == 3)
        #expect(ConfigurationLoader.editDistance("kitten", "sitting") == 3)
    }
}
