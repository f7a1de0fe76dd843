import Logging
import Testing

@testable import DTLSProxy

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
