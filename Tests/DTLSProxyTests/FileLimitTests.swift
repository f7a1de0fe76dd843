import Testing

@testable import DTLSProxy

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
