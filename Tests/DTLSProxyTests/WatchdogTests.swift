import Atomics
import Logging
import NIOCore
import NIOPosix
import Testing

@testable import DTLSProxy

@Suite("Watchdog")
struct WatchdogTests {
    /// A wedged event loop must stop the heartbeat, and it resumes when the loop does.
    @Test("a wedged event loop withholds WATCHDOG=1 until it runs again")
    func wedgedLoopStopsHeartbeat() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let loops = Array(group.makeIterator())
        let beats = ManagedAtomic(0)
        // WATCHDOG_USEC = 400 ms: a beat is due every 200 ms, loops check in every 100 ms.
        let watchdog = Watchdog(watchdogMicroseconds: 400_000, loops: loops, logger: Logger(label: "test")) {
            beats.wrappingIncrement(ordering: .relaxed)
        }
        #expect(watchdog.period == .milliseconds(200))
        watchdog.start()
        let heartbeat = Task { await watchdog.run() }

        // Polled rather than slept: on a loaded machine (the unit tests run in parallel,
        // beside builds) a loop's check-in may come seconds late.
        #expect(
            await Self.eventually(within: .seconds(15)) { beats.load(ordering: .relaxed) >= 2 },
            "healthy loops keep the heartbeat going")

        loops[1].execute { usleep(2_000_000) }  // wedge loop 1 for 2 s
        try await Task.sleep(for: .milliseconds(500))
        let whileWedged = beats.load(ordering: .relaxed)
        #expect(watchdog.staleLoops(now: Int64(NIODeadline.now().uptimeNanoseconds)) == [1])
        try await Task.sleep(for: .seconds(1))
        #expect(beats.load(ordering: .relaxed) == whileWedged, "no WATCHDOG=1 while loop 1 is wedged")

        // The loop runs again 2 s after it was wedged, 0.5 s from now.
        #expect(
            await Self.eventually(within: .seconds(15)) { beats.load(ordering: .relaxed) > whileWedged },
            "the heartbeat resumes with the loop")
        #expect(
            await Self.eventually(within: .seconds(2)) {
                watchdog.staleLoops(now: Int64(NIODeadline.now().uptimeNanoseconds)).isEmpty
            })

        heartbeat.cancel()
        await heartbeat.value
        watchdog.stop()
        try await group.shutdownGracefully()
    }

    /// Whether `condition` holds within `limit`, checked every 50 ms.
    private static func eventually(within limit: Duration, _ condition: () -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            if condition() { return true }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return condition()
    }
}

@Suite("Credential paths")
struct CredentialPathTests {
    @Test(
        "credential forms resolve in CREDENTIALS_DIRECTORY",
        arguments: [
            "credential:server.key", "$CREDENTIALS_DIRECTORY/server.key", "${CREDENTIALS_DIRECTORY}/server.key",
        ])
    func credentialForms(text: String) throws {
        let path = try CredentialPath.resolve(
            text, relativeTo: "/etc/dtls-proxy", credentialsDirectory: "/run/credentials/dtls-proxyd.service"
        ).get()
        #expect(path == "/run/credentials/dtls-proxyd.service/server.key")
        #expect(CredentialPath.isCredential(text))
    }

    @Test("other paths are relative to the configuration's folder")
    func plainPaths() throws {
        #expect(
            try CredentialPath.resolve("server.key", relativeTo: "/etc/dtls-proxy", credentialsDirectory: "/run/c")
                .get() == "/etc/dtls-proxy/server.key")
        #expect(
            try CredentialPath.resolve("/k/server.key", relativeTo: "/etc/dtls-proxy", credentialsDirectory: nil).get()
                == "/k/server.key")
        #expect(!CredentialPath.isCredential("server.key"))
    }

    @Test("a credential without CREDENTIALS_DIRECTORY, or a bad name, is an error that says why")
    func failures() {
        guard
            case .failure(let unset) = CredentialPath.resolve(
                "credential:server.key", relativeTo: "/etc", credentialsDirectory: nil)
        else {
            Issue.record("resolved without CREDENTIALS_DIRECTORY")
            return
        }
        #expect(unset.description.contains("CREDENTIALS_DIRECTORY is not set"))
        #expect(unset.description.contains("LoadCredential=server.key:"))
        for bad in ["credential:", "credential:a/b", "credential:..", "$CREDENTIALS_DIRECTORY/"] {
            guard
                case .failure(let error) = CredentialPath.resolve(
                    bad, relativeTo: "/etc", credentialsDirectory: "/run/c")
            else {
                Issue.record("\(bad) resolved")
                continue
            }
            #expect(error.description.contains("does not name a credential"), "\(bad): \(error)")
        }
    }
}

@Suite("Metrics and levels")
struct MetricsTests {
    @Test("traffic tallies reach the Prometheus counters only when flushed")
    func trafficBatches() {
        let metrics = DaemonMetrics()
        let stats = ListenerStats(listenerName: "coaps", metrics: metrics)
        var tally = TrafficTally()
        tally.countIn(100)
        tally.countIn(20)
        tally.countOut(7)
        #expect(!render(metrics).contains(#"dtlsproxy_datagrams_total{listener="coaps",direction="in"} 2"#))
        tally.flush(into: stats.metrics.traffic)
        #expect(tally.isEmpty)
        let text = render(metrics)
        #expect(text.contains(#"dtlsproxy_datagrams_total{listener="coaps",direction="in"} 2"#))
        #expect(text.contains(#"dtlsproxy_bytes_total{listener="coaps",direction="in"} 120"#))
        #expect(text.contains(#"dtlsproxy_datagrams_total{listener="coaps",direction="out"} 1"#))
        #expect(text.contains(#"dtlsproxy_bytes_total{listener="coaps",direction="out"} 7"#))
    }

    @Test("stats counters move their series; closes count by reason")
    func countersAndReasons() {
        let metrics = DaemonMetrics()
        let stats = ListenerStats(listenerName: "l1", metrics: metrics)
        stats.increment(.helloVerifySent, by: 3)
        stats.increment(.droppedBadCookie)
        stats.increment(.sessionsCreated)
        stats.metrics.sessionClosed(.handshakeTimeout, established: false)
        stats.metrics.sessionClosed(.idle, established: true)
        let text = render(metrics)
        #expect(text.contains(#"dtlsproxy_cookies_sent_total{listener="l1"} 3"#))
        #expect(text.contains(#"dtlsproxy_drops_total{listener="l1",reason="bad_cookie"} 1"#))
        #expect(text.contains(#"dtlsproxy_sessions_opened_total{listener="l1"} 1"#))
        #expect(text.contains(#"dtlsproxy_sessions_closed_total{listener="l1",reason="handshake_timeout"} 1"#))
        #expect(text.contains(#"dtlsproxy_handshakes_failed_total{listener="l1",reason="handshake_timeout"} 1"#))
        #expect(text.contains(#"dtlsproxy_sessions_closed_total{listener="l1",reason="idle"} 1"#))
        #expect(text.contains(#"dtlsproxy_handshakes_failed_total{listener="l1",reason="idle"} 0"#))
    }

    @Test("one shared level: changing it changes every handler; a logger's own level is a floor")
    func sharedLevel() {
        let control = LogLevelControl(.info)
        var quiet = DaemonLogHandler(control: control, journal: true)
        let plain = DaemonLogHandler(control: control, journal: true)
        quiet.logLevel = .warning
        #expect(plain.logLevel == .info && quiet.logLevel == .warning)
        control.level = .debug
        #expect(plain.logLevel == .debug && quiet.logLevel == .warning)
        control.level = .error
        #expect(plain.logLevel == .error && quiet.logLevel == .error)
    }

    private func render(_ metrics: DaemonMetrics) -> String {
        String(decoding: metrics.render(), as: UTF8.self)
    }
}

@Suite("Open-file limit")
struct FileLimitTests {
    @Test("every session's backend socket and every listener socket are counted")
    func needed() {
        var configuration = ProxyConfiguration(sourcePath: "/etc/d.toml", daemon: DaemonConfiguration(), listeners: [])
        for (index, sessions) in [1000, 250].enumerated() {
            var listener = ListenerConfiguration(
                index: index, name: "l\(index)", listen: EndpointAddress(host: "127.0.0.1", port: 5684 + index),
                backend: EndpointAddress(host: "127.0.0.1", port: 5683))
            listener.maxSessions = sessions
            configuration.listeners.append(listener)
        }
        #expect(FileLimit.needed(by: configuration, eventLoops: 4) == 1250 + 8 + 64)
        #expect(FileLimit.raiseSoftLimit() > 0)
    }
}
