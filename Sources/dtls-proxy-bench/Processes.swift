import Foundation

/// A process the benchmark started: its output goes to a log file, and
/// `stop()` ends it and every child it forked (socat forks one per client).
final class Child {
    let name: String
    let process: Process
    let logPath: String

    init(name: String, executable: String, arguments: [String], logDirectory: String) throws {
        self.name = name
        logPath = "\(logDirectory)/\(name).log"
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        guard let log = FileHandle(forWritingAtPath: logPath) else { throw BenchError("cannot write \(logPath)") }
        process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        do {
            try process.run()
        } catch {
            throw BenchError("cannot start \(executable): \(error)")
        }
    }

    var pid: Int32 { process.processIdentifier }

    /// Waits until `text` appears in the log, up to `seconds`.
    func waitForLog(_ text: String, seconds: Double) throws {
        let end = Date().addingTimeInterval(seconds)
        while Date() < end {
            if log.contains(text) { return }
            guard process.isRunning else { throw BenchError("\(name) exited: \(log.suffix(400))") }
            usleep(20_000)
        }
        throw BenchError("\(name) did not log \"\(text)\" within \(seconds) s")
    }

    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// user + system CPU seconds of the process, of the children it has reaped
    /// (cutime + cstime: socat's finished per-client processes) and of its live
    /// descendants, so a reading never drops when a child exits.
    var cpuSeconds: Double {
        Self.descendants(of: pid).reduce(Self.cpuSeconds(of: pid, reapedChildren: true)) {
            $0 + Self.cpuSeconds(of: $1)
        }
    }

    /// Runs `body` and returns its result with the `cpuSeconds` the process
    /// (and its descendants) spent meanwhile.
    func measuringCPU<T>(_ body: () throws -> T) rethrows -> (result: T, cpu: Double) {
        let before = cpuSeconds
        let result = try body()
        return (result, cpuSeconds - before)
    }

    /// Resident set size in KiB (VmRSS).
    var residentKiB: Int {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return 0 }
        for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            return Int(line.split(separator: " ").dropFirst().first ?? "0") ?? 0
        }
        return 0
    }

    /// SIGTERM to the process and its children; SIGKILL after `grace` seconds.
    func stop(grace: Double = 3) {
        let family = [pid] + Self.descendants(of: pid)
        for member in family { kill(member, SIGTERM) }
        let end = Date().addingTimeInterval(grace)
        while process.isRunning, Date() < end { usleep(20_000) }
        for member in family + Self.descendants(of: pid) where kill(member, 0) == 0 {
            kill(member, SIGKILL)
        }
        if process.isRunning { process.waitUntilExit() }
    }

    static func cpuSeconds(of pid: Int32, reapedChildren: Bool = false) -> Double {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return 0 }
        // Fields after the command name: state is field 3; utime and stime are 14 and 15,
        // cutime and cstime (reaped children) 16 and 17.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 15, let user = Double(fields[11]), let system = Double(fields[12]),
            let childUser = Double(fields[13]), let childSystem = Double(fields[14])
        else { return 0 }
        let ticks = user + system + (reapedChildren ? childUser + childSystem : 0)
        return ticks / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// Children (recursively) from /proc/PID/task/*/children.
    static func descendants(of pid: Int32) -> [Int32] {
        guard let tasks = try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task") else { return [] }
        var found: [Int32] = []
        for task in tasks {
            guard let text = try? String(contentsOfFile: "/proc/\(pid)/task/\(task)/children", encoding: .utf8) else {
                continue
            }
            for child in text.split(separator: " ").compactMap({ Int32($0) }) {
                found.append(child)
                found += descendants(of: child)
            }
        }
        return found
    }
}

/// Where the benchmark's built binaries, certificate and logs are.
struct BenchPaths {
    var binaries: String
    var work: String
    var socat: String

    var certificate: String { "\(work)/server.pem" }
    var key: String { "\(work)/server.key" }

    /// A self-signed ECDSA P-256 certificate, as `make cert` makes.
    func makeCertificate() throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", key, "-out", certificate, "-days", "30", "-subj", "/CN=localhost",
        ]
        process.standardError = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw BenchError("openssl req failed") }
        chmod(key, 0o600)
    }

    /// A daemon configuration for the benchmark: no per-source handshake
    /// limit (every client comes from 127.0.0.1), long idle timeout.
    /// `tag` tells apart the files of two builds' daemons in one run.
    /// `busyPoll`: the daemon's `busy_poll` (a duration, "50us"), or nil for the default (off).
    func writeDaemonConfig(
        workers: Int, listen: Endpoint, backend: Endpoint, tag: String = "", busyPoll: String? = nil
    ) throws -> String {
        let path = "\(work)/dtls-proxy-w\(workers)\(tag)\(busyPoll.map { "-busy-\($0)" } ?? "").toml"
        let text = """
            [daemon]
            log_level = "info"
            workers = \(workers)
            \(busyPoll.map { "busy_poll = \"\($0)\"" } ?? "")

            [[listener]]
            name = "bench"
            listen = "\(listen)"
            backend = "\(backend)"
            certificate = "\(certificate)"
            private_key = "\(key)"
            idle_timeout = "600s"
            handshake_timeout = "15s"
            max_sessions = 100000
            max_handshakes_in_progress = 10000
            handshake_rate_per_source = 0

            """
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }
}
