import NIOCore
import Testing

@testable import DTLSProxy

/// RFC 9146 Connection IDs negotiated by OpenSSL's custom-extension callbacks
/// and carried by the record layer in the datagram BIO: full handshakes with
/// PSK and certificates over every kind of AEAD, checked on the wire bytes.
@Suite("Connection ID: handshakes in memory")
struct ConnectionIDHandshakeTests {
    static let suites: [(certificate: Bool, cipher: String)] = [
        (false, "PSK-AES128-GCM-SHA256"), (false, "PSK-AES128-CCM8"), (false, "PSK-CHACHA20-POLY1305"),
        (true, "ECDHE-ECDSA-AES128-GCM-SHA256"), (true, "ECDHE-ECDSA-AES128-CCM8"),
        (true, "ECDHE-ECDSA-CHACHA20-POLY1305"),
    ]

    /// Non-empty CIDs both ways: each end's own CID is the other's peer CID,
    /// every protected record on the wire is tls12_cid with the receiver's CID,
    /// data and close_notify arrive, and no epoch+sequence repeats.
    @Test(arguments: suites.indices)
    func nonEmptyConnectionIDsBothWays(index: Int) throws {
        let (certificate, cipher) = Self.suites[index]
        let issuer = ConnectionIDIssuer()
        let harness = try ConnectionIDHarness(
            certificate: certificate, cipher: cipher, server: try issuer.policy, client: try .on(length: 5))
        let (server, client) = try #require(try harness.connect())
        #expect(server.cipherName == cipher)
        let serverCID = try #require(server.ownConnectionID)
        let clientCID = try #require(client.ownConnectionID)
        #expect(serverCID.count == 6 && serverCID.first == 0xA7)
        #expect(clientCID.count == 5)
        #expect(client.peerConnectionID == serverCID)
        #expect(server.peerConnectionID == clientCID)
        harness.exchange(server, client, "1")
        harness.exchange(server, client, "2")
        client.shutdown()
        harness.deliver(from: client, to: server)
        var scratch = ByteBuffer()
        #expect(server.read(into: &scratch, maximum: 2048) == .closeNotify)

        // Finished, two pings and close_notify from the client; Finished and two pongs from the server.
        WireRecords(harness.toServer, connectionIDLength: 6).expectProtected(with: serverCID, minimum: 4)
        WireRecords(harness.toClient, connectionIDLength: 5).expectProtected(with: clientCID, minimum: 3)
        #expect(server.connectionIDRecords?.stats.total == 0)
        #expect(client.connectionIDRecords?.stats.total == 0)
    }

    /// A client asking for a zero-length CID gets ordinary records from the
    /// server, and puts the server's CID on its own.
    @Test(arguments: [false, true])
    func zeroLengthClientConnectionID(certificate: Bool) throws {
        let harness = try ConnectionIDHarness(
            certificate: certificate, server: try ConnectionIDIssuer().policy, client: try .on())
        let (server, client) = try #require(try harness.connect())
        let serverCID = try #require(server.ownConnectionID)
        #expect(client.ownConnectionID == [])
        #expect(server.peerConnectionID == [])
        #expect(client.peerConnectionID == serverCID)
        #expect(client.connectionIDRecords?.convertsInbound == false)
        #expect(server.connectionIDRecords?.convertsOutbound == false)
        harness.exchange(server, client)
        WireRecords(harness.toServer, connectionIDLength: serverCID.count).expectProtected(with: serverCID, minimum: 2)
        WireRecords(harness.toClient, connectionIDLength: 0).expectProtected(with: [], minimum: 2)
    }

    /// A resumption from a ticket runs the extension callbacks again: the server
    /// issues a new CID (and so does the client), and the abbreviated handshake's
    /// server Finished, which comes first, is already a tls12_cid record.
    @Test(arguments: [false, true])
    func resumptionNegotiatesANewConnectionID(certificate: Bool) throws {
        let issuer = ConnectionIDIssuer()
        let harness = try ConnectionIDHarness(
            certificate: certificate, server: try issuer.policy, client: try .on(length: 4))
        let (firstServer, firstClient) = try #require(try harness.connect())
        harness.exchange(firstServer, firstClient)
        let cache = ClientSessionCache()
        cache.keep(from: firstClient.ssl)
        harness.toServer.removeAll()
        harness.toClient.removeAll()

        let (server, client) = try #require(try harness.connect(resuming: cache))
        #expect(server.isResumed && client.isResumed)
        let serverCID = try #require(server.ownConnectionID)
        let clientCID = try #require(client.ownConnectionID)
        #expect(serverCID != firstServer.ownConnectionID)
        #expect(clientCID != firstClient.ownConnectionID)
        #expect(client.peerConnectionID == serverCID && server.peerConnectionID == clientCID)
        harness.exchange(server, client)
        WireRecords(harness.toServer, connectionIDLength: 6).expectProtected(with: serverCID, minimum: 2)
        WireRecords(harness.toClient, connectionIDLength: 4).expectProtected(with: clientCID, minimum: 2)
    }

    /// After a second HelloVerifyRequest the server runs OpenSSL's own cookie
    /// exchange over copies of the ClientHello (each parsed, extension and all)
    /// instead of `DTLSv1_listen`; the CID is negotiated all the same.
    @Test func statefulCookieExchangeNegotiatesTheConnectionID() throws {
        let harness = try ConnectionIDHarness(
            certificate: false, server: try ConnectionIDIssuer().policy, client: try .on(length: 5))
        harness.helloVerifyRounds = 2
        let (server, client) = try #require(try harness.connect())
        let serverCID = try #require(server.ownConnectionID)
        #expect(client.peerConnectionID == serverCID && server.peerConnectionID == client.ownConnectionID)
        harness.exchange(server, client)
        WireRecords(harness.toServer, connectionIDLength: 6).expectProtected(with: serverCID, minimum: 2)
    }

    /// A server whose CID policy is off ignores the client's extension: an
    /// ordinary session, nothing converted, nothing of type 25 on the wire.
    @Test func serverWithConnectionIDOffIgnoresTheOffer() throws {
        let harness = try ConnectionIDHarness(certificate: false, server: .off, client: try .on(length: 5))
        let (server, client) = try #require(try harness.connect())
        #expect(server.ownConnectionID == nil && server.peerConnectionID == nil)
        #expect(client.ownConnectionID == nil && client.peerConnectionID == nil)
        #expect(server.connectionIDRecords == nil && client.connectionIDRecords == nil)
        harness.exchange(server, client)
        WireRecords(harness.toServer, connectionIDLength: 0).expectProtected(with: [], minimum: 2)
        WireRecords(harness.toClient, connectionIDLength: 0).expectProtected(with: [], minimum: 2)
    }

    /// A client that does not offer the extension gets none from a server that has CIDs on.
    @Test func clientWithoutTheExtensionGetsAnOrdinarySession() throws {
        let harness = try ConnectionIDHarness(certificate: true, server: try ConnectionIDIssuer().policy, client: .off)
        let (server, client) = try #require(try harness.connect())
        #expect(server.ownConnectionID == nil && client.peerConnectionID == nil)
        harness.exchange(server, client)
        WireRecords(harness.toServer, connectionIDLength: 0).expectProtected(with: [], minimum: 2)
    }

    /// With a CBC suite the server leaves the extension out of its ServerHello
    /// (the client would have refused it: it cannot protect CBC records with a CID).
    @Test func nonAEADSuiteNegotiatesNoConnectionID() throws {
        let harness = try ConnectionIDHarness(
            certificate: false, cipher: "PSK-AES128-CBC-SHA256", server: try ConnectionIDIssuer().policy,
            client: try .on(length: 5))
        let (server, client) = try #require(try harness.connect())
        #expect(server.cipherName == "PSK-AES128-CBC-SHA256")
        #expect(server.ownConnectionID == nil && client.peerConnectionID == nil)
        #expect(client.ownConnectionID == nil)
        harness.exchange(server, client)
        WireRecords(harness.toServer, connectionIDLength: 0).expectProtected(with: [], minimum: 2)
        WireRecords(harness.toClient, connectionIDLength: 0).expectProtected(with: [], minimum: 2)
    }

    /// The largest plaintext OpenSSL offers still fits the MTU once the record is
    /// converted: OpenSSL's MTU shrank by the CID and the inner content type.
    @Test func largestRecordStillFitsTheMTU() throws {
        let harness = try ConnectionIDHarness(
            certificate: false, server: try ConnectionIDIssuer(length: 16).policy, client: try .on(length: 16))
        let (server, client) = try #require(try harness.connect())
        for (from, to) in [(client as DTLSEndpoint, server as DTLSEndpoint), (server, client)] {
            let payload = String(repeating: "x", count: from.maximumPlaintext)
            #expect(from.write(ByteBuffer(string: payload)).succeeded)
            #expect(harness.deliver(from: from, to: to) == [payload])
        }
        let mtu = harness.serverContext.mtu
        #expect((harness.toServer + harness.toClient).allSatisfy { $0.count <= mtu })
        #expect(harness.toServer.last.map { $0.count > mtu - 40 } == true)
    }
}
