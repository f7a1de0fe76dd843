import NIOCore
import Testing

@testable import DTLSProxy

/// What the CID record layer does with records it must not hand OpenSSL:
/// each is dropped and counted by reason, and the session goes on.
@Suite("Connection ID: hostile records")
struct ConnectionIDHostileInputTests {
    @Test func serverDropsAndCountsEveryKindOfBadRecord() throws {
        let (harness, server, client) = try ConnectionIDHarness.established(
            cipher: "PSK-AES128-GCM-SHA256", clientCIDLength: 5)
        let serverCID = try #require(server.ownConnectionID)
        let layer = try #require(server.connectionIDRecords)
        let real = try ConnectionIDHarness.written("a", by: client)
        #expect(real[0] == 25 && Array(real[11..<17]) == serverCID)

        var unknown = real
        unknown[12] ^= 0x01
        #expect(harness.inject(unknown, to: server).isEmpty)
        #expect(layer.stats.unknownConnectionID == 1)

        var flipped = real
        flipped[flipped.count - 1] ^= 0x80
        #expect(harness.inject(flipped, to: server).isEmpty)
        #expect(layer.stats.authenticationFailed == 1)
        #expect(layer.lastAccepted == nil)

        var garbage: [UInt8] = [0xFF] + (0..<40).map { _ in UInt8.random(in: 0...255) }
        #expect(harness.inject(garbage, to: server).isEmpty)
        #expect(layer.stats.malformed == 1)
        // A tls12_cid header whose length runs past the datagram.
        garbage = [25, 0xFE, 0xFD, 0, 1, 0, 0, 0, 0, 0, 9] + serverCID + [0x40, 0x00, 1, 2, 3]
        #expect(harness.inject(garbage, to: server).isEmpty)
        #expect(layer.stats.malformed == 2)

        // Records OpenSSL itself would accept: an ordinary epoch-1 record under the
        // right keys (RFC 9146 §3 says drop it), and a tls12_cid one in epoch 2.
        let keys = try SessionRecordKeys(ssl: client.ssl)
        let ordinary = try keys.sealer(for: .client, peerConnectionID: [])
            .seal(contentType: 23, sequenceNumber: 1000, plaintext: Array("x".utf8))
        #expect(harness.inject(ordinary, to: server).isEmpty)
        #expect(layer.stats.missingConnectionID == 1)
        let epochTwo = try RecordSealer(
            suite: keys.suite, keys: keys.keyBlock.writeKeys(of: .client), epoch: 2, connectionID: serverCID
        ).seal(contentType: 23, sequenceNumber: 1001, plaintext: Array("y".utf8))
        #expect(harness.inject(epochTwo, to: server).isEmpty)
        #expect(layer.stats.unexpectedEpoch == 1)

        // The real record opens once; the same bytes again are a replay.
        #expect(harness.inject(real, to: server) == ["a"])
        let accepted = try #require(layer.lastAccepted)
        #expect(accepted.isNewest && accepted.epoch == 1 && layer.datagramHadNewestRecord)
        #expect(harness.inject(real, to: server).isEmpty)
        #expect(layer.stats.replayed == 1)
        #expect(layer.lastAccepted == nil)
        #expect(layer.stats.total == 7)

        // Out of order: the later record is the newest, the earlier one is accepted but is not.
        let early = try ConnectionIDHarness.written("b", by: client)
        let late = try ConnectionIDHarness.written("c", by: client)
        #expect(harness.inject(late, to: server) == ["c"])
        let newest = try #require(layer.lastAccepted)
        #expect(newest.isNewest)
        #expect(harness.inject(early, to: server) == ["b"])
        let older = try #require(layer.lastAccepted)
        #expect(!older.isNewest && !layer.datagramHadNewestRecord)
        #expect(older.sequenceNumber < newest.sequenceNumber && older.sequenceNumber > accepted.sequenceNumber)

        harness.exchange(server, client)
        #expect(layer.stats.total == 7)
    }

    /// The client's side converts too: a forged or mislabelled record from the server goes nowhere.
    @Test func clientDropsForgedRecordsFromTheServer() throws {
        let (harness, server, client) = try ConnectionIDHarness.established(
            cipher: "PSK-AES128-GCM-SHA256", clientCIDLength: 5)
        let layer = try #require(client.connectionIDRecords)
        let real = try ConnectionIDHarness.written("z", by: server)
        var unknown = real
        unknown[11] ^= 0xFF
        var flipped = real
        flipped[flipped.count - 3] ^= 0x01
        #expect(harness.inject(unknown, to: client).isEmpty)
        #expect(harness.inject(flipped, to: client).isEmpty)
        #expect(layer.stats.unknownConnectionID == 1 && layer.stats.authenticationFailed == 1)
        #expect(harness.inject(real, to: client) == ["z"])
        #expect(harness.inject(real, to: client).isEmpty)
        #expect(layer.stats.replayed == 1)
        harness.exchange(server, client)
    }

    /// A Finished that overtakes the ClientKeyExchange cannot be opened yet (no
    /// keys before the key exchange) and is dropped; nothing wrong is kept, and
    /// the whole flight, arriving next, completes the handshake.
    @Test func finishedBeforeTheKeyExchangeIsDroppedThenTheFlightCompletes() throws {
        let harness = try ConnectionIDHarness(
            certificate: false, server: try ConnectionIDIssuer().policy, client: try .on(length: 5))
        var reordered = false
        harness.handshakeNetwork = { datagram in
            let records = datagram.withUnsafeBytes { DatagramRecords(parsing: $0, connectionIDLength: 6) }.records
            guard !reordered, let finished = records.first(where: { $0.header.isConnectionIDRecord }),
                records.contains(where: { $0.header.epoch == 0 })
            else { return [datagram] }
            reordered = true
            return [Array(datagram[finished.range]), datagram]
        }
        let (server, client) = try #require(try harness.connect())
        #expect(reordered)
        #expect(server.connectionIDRecords?.stats.keysUnavailable == 1)
        #expect(server.connectionIDRecords?.stats.total == 1)
        harness.exchange(server, client)
    }

    @Test func connectionIDForRoutingWithoutDecrypting() throws {
        let (harness, server, client) = try ConnectionIDHarness.established(
            cipher: "PSK-AES128-GCM-SHA256", clientCIDLength: 5)
        let record = try ConnectionIDHarness.written("r", by: client)
        #expect(
            ConnectionIDRecordLayer.connectionID(in: ByteBuffer(bytes: record), length: 6) == server.ownConnectionID)
        let ordinary = try #require(harness.toServer.first)  // the ClientHello
        #expect(ConnectionIDRecordLayer.connectionID(in: ByteBuffer(bytes: ordinary), length: 6) == nil)
        #expect(ConnectionIDRecordLayer.connectionID(in: ByteBuffer(bytes: Array(record.prefix(15))), length: 6) == nil)
        #expect(ConnectionIDRecordLayer.connectionID(in: ByteBuffer(bytes: record), length: 0) == nil)
    }
}
