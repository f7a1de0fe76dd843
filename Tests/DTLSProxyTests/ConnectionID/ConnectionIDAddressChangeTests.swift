import NIOCore
import Testing

@testable import DTLSProxy

/// RFC 9146 §6 as the listener applies it before reading a datagram from a new
/// address: only a record that authenticates and is newer than every record
/// accepted so far may move the session; the check changes nothing itself.
@Suite("Connection ID: the address-update rule")
struct ConnectionIDAddressChangeTests {
    @Test func newerRecordsMayMoveTheSessionReplaysOlderAndForgedOnesMayNot() throws {
        let (harness, server, client) = try ConnectionIDHarness.established(
            cipher: "PSK-AES128-CCM8", clientCIDLength: 0)
        let layer = try #require(server.connectionIDRecords)
        let early = try ConnectionIDHarness.written("early", by: client)
        let late = try ConnectionIDHarness.written("late", by: client)

        // Both are newer than anything accepted; asking twice changes nothing.
        #expect(layer.carriesNewestRecord(ByteBuffer(bytes: early)))
        #expect(layer.carriesNewestRecord(ByteBuffer(bytes: late)))
        #expect(layer.carriesNewestRecord(ByteBuffer(bytes: late)))
        #expect(layer.stats.total == 0)

        // Once the later one is read, the earlier one is old: authentic, but it moves nothing.
        #expect(harness.inject(late, to: server) == ["late"])
        #expect(!layer.carriesNewestRecord(ByteBuffer(bytes: early)))
        // A replay of the newest moves nothing either.
        #expect(!layer.carriesNewestRecord(ByteBuffer(bytes: late)))

        // A forged record: a newer sequence number that its tag does not cover.
        let next = try ConnectionIDHarness.written("next", by: client)
        var forged = next
        forged[forged.count - 1] ^= 0x01
        #expect(!layer.carriesNewestRecord(ByteBuffer(bytes: forged)))
        var renumbered = next
        renumbered[10] &+= 1
        #expect(!layer.carriesNewestRecord(ByteBuffer(bytes: renumbered)))
        // The genuine one still qualifies: the checks kept no state.
        #expect(layer.carriesNewestRecord(ByteBuffer(bytes: next)))
        #expect(harness.inject(next, to: server) == ["next"])
        #expect(layer.stats.total == 0)

        // Garbage, an ordinary record, a record for another CID: no.
        #expect(!layer.carriesNewestRecord(ByteBuffer(bytes: [25, 0xFE, 0xFD] + [UInt8](repeating: 0, count: 30))))
        var otherCID = try ConnectionIDHarness.written("other", by: client)
        otherCID[12] ^= 0xFF
        #expect(!layer.carriesNewestRecord(ByteBuffer(bytes: otherCID)))
    }
}
