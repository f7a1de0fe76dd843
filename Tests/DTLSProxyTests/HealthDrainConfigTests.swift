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
