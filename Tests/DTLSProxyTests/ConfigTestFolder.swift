import Foundation
import Testing

@testable import DTLSProxy

/// A fresh folder under the temporary folder, removed when the value goes away.
final class ConfigTestFolder {
    let path: String

    init() throws {
        path = FileManager.default.temporaryDirectory.path + "/dtls-proxy-config-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    /// Writes `contents` to `name` (relative to the folder) and returns the absolute path.
    @discardableResult
    func write(_ name: String, _ contents: String) throws -> String {
        try write(name, bytes: Array(contents.utf8))
    }

    @discardableResult
    func write(_ name: String, bytes: [UInt8]) throws -> String {
        let file = path + "/" + name
        try FileManager.default.createDirectory(
            atPath: (file as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try Data(bytes).write(to: URL(fileURLWithPath: file))
        return file
    }

    /// A folder with `server.pem`, `server.key`, `ca.pem` and `psk.txt` (contents are not checked by the loader).
    static func withCredentials() throws -> ConfigTestFolder {
        let folder = try ConfigTestFolder()
        try folder.write("server.pem", "-----BEGIN CERTIFICATE-----\n")
        try folder.write("server.key", "-----BEGIN PRIVATE KEY-----\n")
        try folder.write("ca.pem", "-----BEGIN CERTIFICATE-----\n")
        try folder.write("psk.txt", "dev1:00112233445566778899aabbccddeeff\n")
        // Key files readable by group or others are refused (allow_world_readable_keys).
        try folder.setMode("server.key", 0o600)
        try folder.setMode("psk.txt", 0o600)
        return folder
    }

    /// Sets the permission bits of `name` (relative to the folder).
    func setMode(_ name: String, _ mode: Int) throws {
        try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: path + "/" + name)
    }

    var configPath: String { path + "/dtls-proxy.toml" }

    func parse(_ toml: String) throws(ConfigurationError) -> ProxyConfiguration {
        try ConfigurationLoader.parse(toml: toml, sourcePath: configPath)
    }

    /// The error `toml` is rejected with, or nil if it is accepted.
    func error(_ toml: String) -> ConfigurationError? {
        do {
            _ = try parse(toml)
            return nil
        } catch {
            return error
        }
    }
}

/// A listener that passes validation, to which a test adds the key it is about.
let minimalListener = """
    [[listener]]
    listen = "0.0.0.0:5684"
    backend = "127.0.0.1:5683"
    psk_file = "psk.txt"
    """

extension ConfigTestFolder {
    /// A folder with one listener and one connector that reach each other: by
    /// PSK (`device-7` in `psk.txt`), or by a self-signed ECDSA certificate made
    /// with the openssl command line; both limited to `cipher` when given.
    static func listenerAndConnector(
        certificate: Bool, cipher: String? = nil
    ) throws -> (ConfigTestFolder, ProxyConfiguration) {
        let folder = try ConfigTestFolder()
        try folder.write("psk.txt", "device-7:00112233445566778899aabbccddeeff\n")
        try folder.setMode("psk.txt", 0o600)
        var listener = "[[listener]]\nname = \"l\"\nlisten = \"127.0.0.1:5684\"\nbackend = \"127.0.0.1:5683\"\n"
        var connector = "[[connector]]\nname = \"c\"\nlisten = \"127.0.0.1:6683\"\nserver = \"127.0.0.1:5684\"\n"
        if let cipher {
            listener += "ciphers = \"\(cipher)\"\n"
            connector += "ciphers = \"\(cipher)\"\n"
        }
        if certificate {
            let openssl = Process()
            openssl.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
            openssl.arguments = [
                "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", folder.path + "/server.key", "-out", folder.path + "/server.pem", "-days", "2",
                "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1",
            ]
            openssl.standardError = FileHandle.nullDevice
            try openssl.run()
            openssl.waitUntilExit()
            try #require(openssl.terminationStatus == 0)
            try folder.setMode("server.key", 0o600)
            listener += "certificate = \"server.pem\"\nprivate_key = \"server.key\"\n"
            connector += "server_ca = \"server.pem\"\n"
        } else {
            listener += "psk_file = \"psk.txt\"\n"
            connector += "psk_identity = \"device-7\"\npsk_file = \"psk.txt\"\n"
        }
        return (folder, try folder.parse(listener + connector))
    }
}
