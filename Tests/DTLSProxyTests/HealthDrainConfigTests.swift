import Testing

@testable import DTLSProxy

/// `[daemon] health_listen` and `drain_timeout`: defaults, values, errors.
@Suite("ConfigurationLoader: health_listen and drain_timeout")
struct HealthDrainConfigTests {
    @Test func defaultsLeaveTheStopAsBefore() throws {
        let folder = try ConfigTestFolder.withCredentials()
        let daemon = try folder.parse(minimalListener).daemon
        #expect(daemon.healthListen == nil)
        #expect(daemon.drainTimeout == .zero)
    }

    @Test func valuesAreRead() throws {
        let folder = try ConfigTestFolder.withCredentials()
        let daemon = try folder.parse(
            """
            [daemon]
            health_listen = "[::1]:8081"
            drain_timeout = "1m5s"
            \(minimalListener)
            """
        ).daemon
        #expect(daemon.healthListen == EndpointAddress(host: "::1", port: 8081))
        #expect(daemon.drainTimeout == .seconds(65))
    }

    @Test func emptyHealthListenAndZeroDrainMeanOff() throws {
        let folder = try ConfigTestFolder.withCredentials()
        let daemon = try folder.parse("[daemon]\nhealth_listen = \"\"\ndrain_timeout = \"0s\"\n" + minimalListener)
            .daemon
        #expect(daemon.healthListen == nil && daemon.drainTimeout == .zero)
    }

    @Test(
        "invalid values name the file, the key and the cause",
        arguments: [
            (
                "[daemon]\nhealth_listen = \"8081\"\n", "daemon.health_listen",
                "invalid address \"8081\": missing port (expected host:port)"
            ),
            (
                "[daemon]\nhealth_listen = 8081\n", "daemon.health_listen",
                "expected a string, found integer"
            ),
            (
                "[daemon]\ndrain_timeout = \"10\"\n", "daemon.drain_timeout",
                "invalid duration \"10\": missing unit (use ms, s, m or h)"
            ),
            (
                "[daemon]\ndrain_timeout = 10\n", "daemon.drain_timeout",
                "expected a string, found integer (write a duration with a unit, e.g. \"30s\")"
            ),
        ])
    func invalid(toml: String, key: String, cause: String) throws {
        let folder = try ConfigTestFolder.withCredentials()
        let error = try #require(folder.error(toml + minimalListener))
        #expect(error == ConfigurationError(file: folder.configPath, key: key, cause: cause))
        #expect(error.description == "\(folder.configPath): \(key): \(cause)")
    }

    @Test func aMisspeltKeyIsNamed() throws {
        let folder = try ConfigTestFolder.withCredentials()
        let error = try #require(folder.error("[daemon]\ndrain_timout = \"5s\"\n" + minimalListener))
        #expect(error.key == "daemon.drain_timout" && error.cause.contains("drain_timeout"))
    }
}

/// `[daemon] busy_poll`: off by default, a duration up to 10 ms, errors that name the key.
@Suite("ConfigurationLoader: busy_poll")
struct BusyPollConfigTests {
    @Test func offByDefault() throws {
        let folder = try ConfigTestFolder.withCredentials()
        #expect(try folder.parse(minimalListener).daemon.busyPoll == .zero)
    }

    @Test func aDurationIsRead() throws {
        let folder = try ConfigTestFolder.withCredentials()
        #expect(
            try folder.parse("[daemon]\nbusy_poll = \"100us\"\n" + minimalListener).daemon.busyPoll
                == .microseconds(100))
        #expect(
            try folder.parse("[daemon]\nbusy_poll = \"10ms\"\n" + minimalListener).daemon.busyPoll == .milliseconds(10))
        #expect(try folder.parse("[daemon]\nbusy_poll = \"0s\"\n" + minimalListener).daemon.busyPoll == .zero)
    }

    @Test(
        "invalid values name the file, the key and the cause",
        arguments: [
            (
                "[daemon]\nbusy_poll = \"20ms\"\n",
                "20ms is longer than 10ms: a spin that long holds back the loop's other sockets and timers"
            ),
            ("[daemon]\nbusy_poll = \"50\"\n", "invalid duration \"50\": missing unit (use ms, s, m or h)"),
            (
                "[daemon]\nbusy_poll = 50\n",
                "expected a string, found integer (write a duration with a unit, e.g. \"30s\")"
            ),
        ])
    func invalid(toml: String, cause: String) throws {
        let folder = try ConfigTestFolder.withCredentials()
        let error = try #require(folder.error(toml + minimalListener))
        #expect(error == ConfigurationError(file: folder.configPath, key: "daemon.busy_poll", cause: cause))
    }
}
