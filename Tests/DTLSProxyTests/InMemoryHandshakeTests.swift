import Foundation
import NIOCore
import Testing

@testable import DTLSProxy

/// The DTLS core in process: a connector's client connection and a listener's
/// server connection talk through their datagram BIOs, datagram by datagram,
/// with the cookie exchange the router does in front of the server.
@Suite("DTLS core in memory")
struct InMemoryHandshakeTests {

    /// Runs the handshake to completion on both sides, with the router's cookie
    /// exchange in front of the server (no connection IDs); the harness keeps
    /// the contexts alive, as a runtime does.
    private func handshake(
        certificate: Bool
    ) throws -> (DTLSServerConnection, DTLSClientConnection, ConnectionIDHarness) {
        let harness = try ConnectionIDHarness(certificate: certificate, server: .off, client: .off)
        let (server, client) = try #require(try harness.connect())
        return (server, client, harness)
    }

    private func exchange(
        _ server: DTLSServerConnection, _ client: DTLSClientConnection, _ harness: ConnectionIDHarness
    ) {
        #expect(client.write(ByteBuffer(string: "ping")).succeeded)
        var received: [String] = []
        for datagram in harness.drain(client) {
            server.receive(datagram)
            received += harness.readAll(server)
        }
        #expect(received == ["ping"])
        #expect(server.write(ByteBuffer(string: "pong")).succeeded)
        var replies: [String] = []
        for datagram in harness.drain(server) {
            client.receive(datagram)
            replies += harness.readAll(client)
        }
        #expect(replies == ["pong"])
    }

    @Test func pskHandshakeThenDataBothWays() throws {
        let (server, client, harness) = try handshake(certificate: false)
        #expect(server.identityLogFields.contains("psk_identity=device-7"))
        exchange(server, client, harness)
    }

    @Test func certificateHandshakeVerifiedByTheClientThenData() throws {
        let (server, client, harness) = try handshake(certificate: true)
        #expect(client.identityLogFields.contains("server_identity=localhost"))
        exchange(server, client, harness)
    }

    /// The record keys derived from a finished OpenSSL session open the epoch-1
    /// records OpenSSL writes, and OpenSSL reads the records sealed with them
    /// (ordinary records: OpenSSL has no CID).
    @Test(arguments: [false, true])
    func recordKeysFromTheSessionMatchOpenSSL(certificate: Bool) throws {
        let (server, client, harness) = try handshake(certificate: certificate)
        let keys = try SessionRecordKeys(ssl: server.ssl)
        #expect(try SessionRecordKeys(ssl: client.ssl) == keys)
        #expect(client.write(ByteBuffer(string: "ping")).succeeded)
        let opener = try keys.opener(for: .server, ownConnectionID: [])
        var opened: [OpenedRecord] = []
        for datagram in harness.drain(client) {
            let bytes = Array(datagram.readableBytesView)
            let parsed = bytes.withUnsafeBytes { DatagramRecords(parsing: $0, connectionIDLength: 0) }
            #expect(parsed.failure == nil)
            for record in parsed.records { opened.append(try opener.open(Array(bytes[record.range]))) }
        }
        #expect(opened.map(\.plaintext) == [Array("ping".utf8)])
        #expect(opened.map(\.contentType) == [23])
        // Sealed here, read by OpenSSL; a sequence number beyond any the server's SSL used.
        let sealer = try keys.sealer(for: .server, peerConnectionID: [])
        let record = try sealer.seal(contentType: 23, sequenceNumber: 500, plaintext: Array("pong".utf8))
        client.receive(ByteBuffer(bytes: record))
        #expect(harness.readAll(client) == ["pong"])
    }

    /// Every write is one datagram and every read returns exactly one queued datagram.
    @Test func datagramBIOKeepsBoundaries() throws {
        let (_, client, harness) = try handshake(certificate: false)
        #expect(client.write(ByteBuffer(string: "one")).succeeded)
        #expect(client.write(ByteBuffer(string: "two")).succeeded)
        let written = harness.drain(client)
        // Two records written in one step may share a datagram, but none is split or merged across it.
        let records = written.flatMap { datagram -> [Int] in
            var lengths: [Int] = [], view = datagram
            while let header = view.withUnsafeReadableBytes({ DTLSRecordHeader($0) }) {
                lengths.append(header.fragmentLength)
                view.moveReaderIndex(forwardBy: DTLSRecordHeader.length + header.fragmentLength)
            }
            #expect(view.readableBytes == 0)
            return lengths
        }
        #expect(records.count == 2)
    }
}
