// libFuzzer target for the configuration loader: ConfigurationLoader.parse(toml:sourcePath:)
// on arbitrary text, and PSKTable.parse(contents:path:) on the same text.
//
// The loader checks that the files a configuration names exist (and reads the
// PSK, cookie-secret and ticket-key files), so the configuration is "read" from
// a private temporary folder holding one file of each kind under the names the
// seed corpus uses: relative paths in the input resolve there. The folder is
// removed when the run ends normally.
//
// Both functions use typed throws, so "only ever a ConfigurationError" holds by
// construction; what the run looks for is a trap (overflow, out-of-range index,
// a force-unwrap) or a broken invariant of the result.

import DTLSProxy

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzConfig(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = UnsafeBufferPointer(start: data, count: data == nil ? 0 : size)
    let text = String(decoding: bytes, as: UTF8.self)
    checkConfiguration(text, sourcePath: Fixture.shared.configPath)
    checkPSKTable(text)
    return 0
}

/// Stops the run with `message` when `condition` is false, in every build configuration.
private func require(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition { fatalError("invariant broken: \(message())") }
}

private func checkConfiguration(_ text: String, sourcePath: String) {
    do {
        let configuration = try ConfigurationLoader.parse(toml: text, sourcePath: sourcePath)
        if Fixture.shared.verbose {
            print(
                "configuration: accepted, \(configuration.listeners.count) listener(s), \(configuration.connectors.count) connector(s)"
            )
        }
        require(configuration.sourcePath == sourcePath, "source path \(configuration.sourcePath)")
        require(
            !configuration.listeners.isEmpty || !configuration.connectors.isEmpty,
            "a configuration without listeners or connectors was accepted")
        require(
            Set(configuration.listeners.map(\.name)).count == configuration.listeners.count,
            "duplicate listener names accepted")
        require(
            Set(configuration.listeners.map(\.listen)).count == configuration.listeners.count,
            "duplicate listen addresses accepted")
        for (index, listener) in configuration.listeners.enumerated() {
            require(listener.index == index, "listener \(index) numbered \(listener.index)")
            require(
                listener.certificate != nil || listener.pskFile != nil,
                "listener \(index) has neither certificate nor psk_file")
            require(
                (listener.certificate == nil) == (listener.privateKey == nil),
                "listener \(index) has half a certificate")
            require(
                (listener.pskFile == nil) == (listener.pskTable == nil),
                "listener \(index) has a psk_file without its table")
            require((256...65507).contains(listener.mtu), "listener \(index) mtu \(listener.mtu)")
            require(
                listener.maxSessions >= 1 && listener.maxHandshakesInProgress >= 1, "listener \(index) has a zero limit"
            )
            require(
                listener.minVersion <= listener.security.maxVersion, "listener \(index) min_version above max_version")
            for path in [listener.certificate, listener.privateKey, listener.clientCA, listener.pskFile].compactMap({
                $0
            }) {
                require(path.hasPrefix("/"), "listener \(index) keeps a relative path \(path)")
            }
            require(
                listener.defaultTarget != nil || !listener.routes.isEmpty,
                "listener \(index) has nowhere to send clients")
            for target in [listener.defaultTarget].compactMap({ $0 }) + listener.routes.map(\.target) {
                require(
                    !target.backends.isEmpty && Set(target.backends).count == target.backends.count,
                    "listener \(index) has an empty or repeated pool")
            }
            for route in listener.routes {
                require(
                    !route.serverNames.isEmpty || !route.pskIdentities.isEmpty || !route.clientIdentities.isEmpty,
                    "listener \(index) route \(route.index) matches everyone")
                require(
                    (route.certificate == nil) == (route.privateKey == nil),
                    "listener \(index) route \(route.index) has half a certificate")
                require(
                    route.certificate == nil || !route.serverNames.isEmpty,
                    "listener \(index) route \(route.index) has a certificate without server_name")
            }
        }
    } catch {
        if Fixture.shared.verbose { print("configuration: \(error)") }
        require(error.file == sourcePath, "error names the file \(error.file)")
        require(!error.cause.isEmpty, "error without a cause: \(error.key)")
        require(!error.description.contains(where: \.isNewline), "error description spans lines: \(error.description)")
    }
}

private func checkPSKTable(_ text: String) {
    do {
        let table = try PSKTable.parse(contents: text, path: "psk.txt")
        if Fixture.shared.verbose { print("PSK file: accepted, \(table)") }
        require(table.count >= 1, "an empty PSK table was accepted")
        for (identity, key) in table.entries {
            require(
                !identity.isEmpty && identity.utf8.count <= PSKTable.maximumIdentityLength,
                "identity of \(identity.utf8.count) bytes")
            require((1...PSKTable.maximumKeyLength).contains(key.count), "key of \(key.count) bytes")
        }
    } catch {
        if Fixture.shared.verbose { print("PSK file: \(error)") }
        require(error.description.hasPrefix("psk.txt"), "PSK error without the path: \(error.description)")
    }
}

/// The temporary folder the fuzzed configuration is read from, and the files in it.
private struct Fixture: Sendable {
    /// The configuration's path (the file itself never exists; only its folder does).
    let configPath: String
    /// Whether to print each input's outcome (DTLS_PROXYD_FUZZ_VERBOSE set), for
    /// checking seeds and triaging a crash input; never while fuzzing.
    let verbose = getenv("DTLS_PROXYD_FUZZ_VERBOSE") != nil

    static let shared = Fixture()

    /// Files a configuration may name, relative to its folder, and their modes.
    /// Certificates are not parsed by the loader, so any bytes do; key files must
    /// not be readable by group or others.
    static let files: [(name: String, mode: mode_t, contents: String)] = [
        ("server.pem", 0o644, "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n"),
        ("server.key", 0o600, "-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----\n"),
        ("ca.pem", 0o644, "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n"),
        ("psk.txt", 0o600, "# fuzz\ndev1:00112233445566778899aabbccddeeff\nurn:dev:2:0123456789ABCDEF\n"),
        ("cookie.secret", 0o600, "0123456789abcdef0123456789abcdef"),
        ("ticket.key", 0o600, "0123456789abcdef0123456789abcdef0123456789abcdef"),
    ]

    private init() {
        var template = Array("/tmp/dtls-proxyd-fuzz-config.XXXXXX".utf8CString)
        guard
            let folder = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }).map({
                String(cString: $0)
            })
        else {
            fatalError("cannot create a temporary folder: \(String(cString: strerror(errno)))")
        }
        for file in Self.files {
            let path = folder + "/" + file.name
            let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, file.mode)
            guard fd >= 0 else { fatalError("cannot create \(path): \(String(cString: strerror(errno)))") }
            let written = file.contents.utf8CString.withUnsafeBufferPointer { write(fd, $0.baseAddress, $0.count - 1) }
            close(fd)
            guard written == file.contents.utf8.count else { fatalError("cannot write \(path)") }
        }
        configPath = folder + "/dtls-proxy.toml"
        fixtureFolder = folder
        atexit(removeFixture)
    }
}

/// The fixture's folder, for the exit handler (set once, before any input runs).
nonisolated(unsafe) private var fixtureFolder: String?

/// Removes the fixture's files and folder when the process exits normally.
private func removeFixture() {
    guard let folder = fixtureFolder else { return }
    for file in Fixture.files {
        unlink(folder + "/" + file.name)
    }
    rmdir(folder)
}
