import NIOCore
import Testing

@testable import DTLSProxy

/// The opt-in: which lengths a policy takes, what a listener refuses, and a
/// generator that breaks its promise.
@Suite("Connection ID: policy")
struct ConnectionIDPolicyTests {
    @Test func lengthsOutsideTheRangeAreRefused() throws {
        #expect(throws: ConnectionIDPolicyError.length(17)) { try ConnectionIDPolicy.on(length: 17) }
        #expect(throws: ConnectionIDPolicyError.length(-1)) { try ConnectionIDPolicy.on(length: -1) }
        let policy = try ConnectionIDPolicy.on(length: 8)
        #expect(policy.isEnabled && policy.length == 8)
        #expect(policy.issue()?.count == 8)
        #expect(policy.issue() != policy.issue())
        #expect(!ConnectionIDPolicy.off.isEnabled)
        #expect(try ConnectionIDPolicy.on().issue() == [])
    }

    /// A listener issues 4 to 16 bytes; a shorter CID could not tell its sessions apart.
    @Test func listenerRefusesShortConnectionIDs() throws {
        #expect(throws: ConfigurationError.self) {
            _ = try ConnectionIDHarness(certificate: false, server: try .on(length: 3), client: .off)
        }
        _ = try ConnectionIDHarness(certificate: false, server: try .on(length: 4), client: .off)
    }

    /// A generator that returns a CID of the wrong length fails the handshake
    /// (internal_error) rather than issue a CID the router could not look up.
    @Test func generatorOfTheWrongLengthFailsTheHandshake() throws {
        let harness = try ConnectionIDHarness(
            certificate: false, server: try .on(length: 6, generator: { [1, 2, 3] }), client: try .on(length: 5))
        guard case .failure(let failure) = try harness.handshake() else {
            Issue.record("the handshake completed")
            return
        }
        #expect(failure.reason.hasPrefix("server handshake"))
    }
}
