import NIOCore
import Testing

@testable import DTLSProxy

@Suite("Cluster messages: format, authentication, replay")
struct ClusterMessageTests {
    let key = ClusterKey(secret: Array("a shared cluster secret, 32 bytes".utf8))

    private func message(
        kind: ClusterMessage.Kind = .forward, sender: UInt8 = 2, sequence: UInt64 = 1000, timestamp: UInt64 = 1_000_000,
        client: SocketAddress? = nil
    ) throws -> ClusterMessage {
        ClusterMessage(
            kind: kind, sender: sender, timestamp: timestamp, sequence: sequence, listener: "coaps",
            client: try client ?? SocketAddress(ipAddress: "192.0.2.7", port: 40123),
            datagram: [25, 0xFE, 0xFD, 0, 1] + [UInt8](repeating: 0xAB, count: 40))
    }

    @Test(arguments: ["192.0.2.7", "2001:db8::17"])
    func aSealedMessageOpensToItself(address: String) throws {
        let original = try message(kind: .reply, client: try SocketAddress(ipAddress: address, port: 5684))
        let bytes = original.sealed(with: key)
        #expect(Array(bytes.prefix(4)) == Array("DPXC".utf8))
        #expect(bytes.count == 24 + 1 + 5 + 1 + (address.contains(":") ? 16 : 4) + 2 + 45 + 16)
        #expect(try ClusterMessage.open(bytes, with: key) == original)
    }

    @Test func everyByteIsCoveredByTheTag() throws {
        let bytes = try message().sealed(with: key)
        for index in bytes.indices {
            var changed = bytes
            changed[index] ^= 0x01
            #expect(throws: (any Error).self) { try ClusterMessage.open(changed, with: key) }
        }
    }

    @Test func anotherSecretOrATruncatedMessageIsRefused() throws {
        let bytes = try message().sealed(with: key)
        let other = ClusterKey(secret: Array("another secret of thirty-two byt".utf8))
        #expect(throws: ClusterMessage.Failure.badTag) { try ClusterMessage.open(bytes, with: other) }
        #expect(throws: (any Error).self) { try ClusterMessage.open(Array(bytes.prefix(30)), with: key) }
        #expect(throws: (any Error).self) { try ClusterMessage.open([], with: key) }
        #expect(throws: (any Error).self) { try ClusterMessage.open(Array("DPXC".utf8) + [2] + bytes, with: key) }
    }

    @Test func replaysAndStaleMessagesAreRefusedFreshOnesTaken() throws {
        var guard_ = ClusterReplayGuard()
        let now: UInt64 = 5_000_000
        #expect(guard_.admit(try message(sequence: 10, timestamp: now), now: now) == .accepted)
        #expect(guard_.admit(try message(sequence: 10, timestamp: now), now: now) == .replayed)
        // Out of order but unseen, within the window: taken.
        #expect(guard_.admit(try message(sequence: 12, timestamp: now), now: now) == .accepted)
        #expect(guard_.admit(try message(sequence: 11, timestamp: now), now: now) == .accepted)
        #expect(guard_.admit(try message(sequence: 11, timestamp: now), now: now) == .replayed)
        // Each sender has its own window.
        #expect(guard_.admit(try message(sender: 3, sequence: 10, timestamp: now), now: now) == .accepted)
        // Too old or too far ahead of this clock.
        let skew = ClusterReplayGuard.maximumAge
        #expect(guard_.admit(try message(sequence: 100, timestamp: now - skew - 1), now: now) == .stale)
        #expect(guard_.admit(try message(sequence: 101, timestamp: now + skew + 1), now: now) == .stale)
        #expect(guard_.admit(try message(sequence: 102, timestamp: now - skew), now: now) == .accepted)
        // Far below the window's top: treated as a replay.
        #expect(guard_.admit(try message(sequence: 20, timestamp: now), now: now) == .replayed)
    }
}
