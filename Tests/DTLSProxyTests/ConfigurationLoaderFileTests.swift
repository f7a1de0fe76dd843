import Foundation
import Testing

@testable import DTLSProxy

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

@Suite("ConfigurationLoader: files and credentials")
struct ConfigurationLoaderFileTests {
    let listenerHead = """
        [[listener]]
        listen = "0.0.0.0:5684"
        backend = "127.0.0.1:5683"

        """

    @Test func loadReadsTheFileAndResolvesPathsAgainstItsFolder() throws {
        let folder = try ConfigTestFolder.withCredentials()
        try folder.write("etc/certs/server.pem", "x")
        let path = try folder.write(
            "etc/dtls-proxy.toml",
            listenerHead + """
                certificate = "certs/server.pem"
                private_key = "../server.key"
                """)
        let config = try ConfigurationLoader.load(path: path)
        #expect(config.sourcePath == path)
        #expect(config.listeners[0].certificate == folder.path + "/etc/certs/server.pem")
        #expect(config.listeners[0].privateKey == folder.path + "/etc/../server.key")
    }

    @Test func unreadableConfigurationFile() throws {
        let folder = try ConfigTestFolder()
        let missing = folder.path + "/nope.toml"
        #expect(throws: ConfigurationError(file: missing, key: "", cause: "cannot read: No such file or directory")) {
            try ConfigurationLoader.load(path: missing)
        }
        #expect(throws: ConfigurationError(file: folder.path, key: "", cause: "cannot read: Is a directory")) {
            try ConfigurationLoader.load(path: folder.path)
        }
        let latin1 = try folder.write("latin1.toml", bytes: [0x23, 0xE9, 0x0A])
        #expect(throws: ConfigurationError(file: latin1, key: "", cause: "cannot read: not valid UTF-8 text")) {
            try ConfigurationLoader.load(path: latin1)
        }
    }

    @Test func readFailureCauses() {
        #expect(FileReadFailure(errorNumber: ENOENT).cause(path: "/a/b") == "file not found: /a/b")
        #expect(FileReadFailure(errorNumber: EACCES).cause(path: "/a/b") == "cannot read /a/b: Permission denied")
    }

    @Test func pathHelpers() {
        #expect(ConfigFileAccess.absolute("x.pem", relativeTo: "/etc/dtls") == "/etc/dtls/x.pem")
        #expect(ConfigFileAccess.absolute("./a//b/./x.pem", relativeTo: "/etc/dtls/") == "/etc/dtls/a/b/x.pem")
        #expect(ConfigFileAccess.absolute("/abs/x.pem", relativeTo: "/etc/dtls") == "/abs/x.pem")
        #expect(ConfigFileAccess.absolute("../x.pem", relativeTo: "/etc/dtls") == "/etc/dtls/../x.pem")
        #expect(ConfigFileAccess.directory(of: "/etc/dtls/proxy.toml") == "/etc/dtls")
        #expect(ConfigFileAccess.directory(of: "/proxy.toml") == "/")
        let cwd = ConfigFileAccess.currentDirectory()
        #expect(cwd.hasPrefix("/"))
        #expect(ConfigFileAccess.absolute("proxy.toml", relativeTo: cwd) == (cwd == "/" ? "" : cwd) + "/proxy.toml")
    }

    @Test func relativeSourcePathIsMadeAbsolute() throws {
        // The files are absolute so that the test does not depend on the current directory.
        let folder = try ConfigTestFolder.withCredentials()
        let config = try ConfigurationLoader.parse(
            toml: listenerHead + "psk_file = \"\(folder.path)/psk.txt\"\n", sourcePath: "conf/proxy.toml")
        #expect(
            config.sourcePath
                == ConfigFileAccess.absolute("conf/proxy.toml", relativeTo: ConfigFileAccess.currentDirectory()))
        #expect(config.sourcePath.hasPrefix("/"))
    }

    @Test(
        "credential combinations",
        arguments: [
            (
                "certificate = \"server.pem\"\n", "listener[0].private_key",
                "missing: a listener with a certificate needs a private_key"
            ),
            (
                "certificate = \"server.pem\"\npsk_file = \"psk.txt\"\n", "listener[0].private_key",
                "missing: a listener with a certificate needs a private_key"
            ),
            (
                "private_key = \"server.key\"\n", "listener[0].certificate",
                "missing: a listener with a private_key needs a certificate"
            ),
            (
                "", "listener[0].certificate",
                "missing: a listener needs certificate + private_key, or psk_file (or both)"
            ),
            (
                "client_ca = \"ca.pem\"\n", "listener[0].certificate",
                "missing: a listener needs certificate + private_key, or psk_file (or both)"
            ),
            (
                "psk_file = \"psk.txt\"\nclient_ca = \"ca.pem\"\n", "listener[0].client_ca",
                "client certificates need the listener's own certificate + private_key"
            ),
        ])
    func credentials(keys: String, key: String, cause: String) throws {
        let folder = try ConfigTestFolder.withCredentials()
        #expect(
            folder.error(listenerHead + keys) == ConfigurationError(file: folder.configPath, key: key, cause: cause))
    }

    @Test func certificateAndPSKTogetherAreFine() throws {
        let folder = try ConfigTestFolder.withCredentials()
        let config = try folder.parse(
            listenerHead + """
                certificate = "server.pem"
                private_key = "server.key"
                client_ca = "ca.pem"
                psk_file = "psk.txt"
                """)
        #expect(config.listeners[0].certificate != nil && config.listeners[0].pskTable != nil)
    }

    @Test(
        "every file key must name a readable file",
        arguments: [
            "certificate", "private_key", "client_ca", "psk_file",
        ])
    func missingFile(key: String) throws {
        let folder = try ConfigTestFolder.withCredentials()
        let files = [
            "certificate": "server.pem", "private_key": "server.key", "client_ca": "ca.pem", "psk_file": "psk.txt",
        ]
        let lines = files.map { name, file in "\(name) = \"\(name == key ? "missing/" + file : file)\"" }
        let error = folder.error(listenerHead + lines.joined(separator: "\n"))
        #expect(
            error
                == ConfigurationError(
                    file: folder.configPath, key: "listener[0].\(key)",
                    cause: "file not found: \(folder.path)/missing/\(files[key]!)"))
    }

    @Test func directoryIsNotAFile() throws {
        let folder = try ConfigTestFolder.withCredentials()
        let error = folder.error(listenerHead + "certificate = \"\(folder.path)\"\nprivate_key = \"server.key\"\n")
        #expect(error?.key == "listener[0].certificate")
        #expect(error?.cause == "cannot read \(folder.path): Is a directory")
    }

    @Test func pskFileErrorsNameTheLine() throws {
        let folder = try ConfigTestFolder.withCredentials()
        let psk = try folder.write("bad-psk.txt", "# keys\ndev1:0011\ndev1:2233\n")
        let error = folder.error(listenerHead + "psk_file = \"bad-psk.txt\"\n")
        #expect(
            error
                == ConfigurationError(
                    file: folder.configPath, key: "listener[0].psk_file",
                    cause: "\(psk) line 3: duplicate identity \"dev1\""))
        try folder.write("odd.txt", "a:001\n")
        #expect(
            folder.error(listenerHead + "psk_file = \"odd.txt\"\n")?.cause
                == "\(folder.path)/odd.txt line 1: odd number of hex digits in key (3)")
    }

    @Test func cookieSecretFile() throws {
        let folder = try ConfigTestFolder.withCredentials()
        let listener = listenerHead + "psk_file = \"psk.txt\"\n"
        try folder.write("short.bin", String(repeating: "s", count: 15))
        let short = folder.error("[daemon]\ncookie_secret_file = \"short.bin\"\n" + listener)
        #expect(
            short
                == ConfigurationError(
                    file: folder.configPath, key: "daemon.cookie_secret_file",
                    cause: "\(folder.path)/short.bin holds 15 bytes; a cookie secret needs at least 16"))
        try folder.write("ok.bin", bytes: [UInt8](repeating: 0, count: 16))
        let config = try folder.parse("[daemon]\ncookie_secret_file = \"ok.bin\"\n" + listener)
        #expect(config.daemon.cookieSecretFile == folder.path + "/ok.bin")
        let missing = folder.error("[daemon]\ncookie_secret_file = \"/nonexistent/secret\"\n" + listener)
        #expect(missing?.key == "daemon.cookie_secret_file")
        #expect(missing?.cause == "file not found: /nonexistent/secret")
    }

    @Test func errorsComeOutInFileOrder() throws {
        // An unknown key is reported before the missing keys it may explain.
        let folder = try ConfigTestFolder.withCredentials()
        let error = folder.error("[[listener]]\nlisen = \"0.0.0.0:5684\"\nbackend = \"127.0.0.1:5683\"\n")
        #expect(error?.key == "listener[0].lisen")
        // The daemon table is checked before the listeners.
        let daemonFirst = folder.error("[daemon]\nworkers = 2000\n[[listener]]\nfoo = 1\n")
        #expect(daemonFirst?.key == "daemon.workers")
    }
}
