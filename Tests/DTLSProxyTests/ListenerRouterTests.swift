import Foundation
import Logging
import NIOCore
import NIOEmbedded
import Testing

@testable import DTLSProxy

/// The router demux in process, on an `EmbeddedChannel`: a connector's client
/// connection plays the DTLS client, and every datagram it writes is handed
/// to the router as if the listener socket had read it.
@Suite("Listener router on an embedded channel")
struct ListenerRouterTests {
    let client = try! SocketAddress(ipAddress: "127.0.0.1", port: 40000)
    let allocator = ByteBufferAllocator()

    /// What one test holds: the client's context must outlive its connection, as a connector's runtime does.
    private struct Setup {
        let channel: EmbeddedChannel
        let router: ListenerRouter
        let connection: DTLSClientConnection
        let clientContext: DTLSClientContext
        let folder: ConfigTestFolder
    }

    /// A router for one PSK listener, in a channel, and a client connection for it.
    private func setUp() throws -> Setup {
        let (folder, config) = try ConfigTestFolder.listenerAndConnector(certificate: false)
        let listener = config.listeners[0]
        let runtime = ListenerRuntime(
            configuration: listener,
            context: try DTLSServerContext(listener: listener, configFile: config.sourcePath),
            routes: try RouteTable.resolve(listener) { try $0.resolved(for: "l", key: "backend") },
            logger: Logger(label: "router-test"))
        let channel = EmbeddedChannel()
        let router = ListenerRouter(
            runtime: runtime, cookieSecret: CookieVerifier.randomSecret(), eventLoop: channel.embeddedEventLoop)
        try channel.pipeline.syncOperations.addHandler(router)
        let clientContext = try DTLSClientContext(connector: config.connectors[0], configFile: config.sourcePath)
        let connection = try DTLSClientConnection(context: clientContext, ipv6: false, allocator: allocator)
        return Setup(
            channel: channel, router: router, connection: connection, clientContext: clientContext, folder: folder)
    }

    /// Hands every datagram `endpoint` wrote to the router, from the client's address.
    private func deliver(_ endpoint: DTLSEndpoint, to channel: EmbeddedChannel) throws {
        var datagrams: [ByteBuffer] = []
        endpoint.drainOutbound { datagrams.append($0) }
        for datagram in datagrams {
            try channel.writeInbound(AddressedEnvelope(remoteAddress: client, data: datagram))
        }
    }

    /// What the router sent back to the client, in order.
    private func replies(_ channel: EmbeddedChannel) throws -> [AddressedEnvelope<ByteBuffer>] {
        channel.embeddedEventLoop.run()
        var out: [AddressedEnvelope<ByteBuffer>] = []
        while let envelope = try channel.readOutbound(as: AddressedEnvelope<ByteBuffer>.self) { out.append(envelope) }
        return out
    }

    @Test func aClientHelloWithoutCookieGetsAHelloVerifyRequestAndNoSession() throws {
        let setup = try setUp()
        let (channel, router, connection) = (setup.channel, setup.router, setup.connection)
        #expect(connection.handshake() == .inProgress)
        try deliver(connection, to: channel)
        let sent = try replies(channel)
        #expect(sent.count == 1)
        #expect(sent.first?.remoteAddress == client)
        // A HelloVerifyRequest: handshake record, epoch 0, message type 3.
        let bytes = Array(sent.first!.data.readableBytesView)
        #expect(bytes[0] == 22 && bytes[3] == 0 && bytes[4] == 0 && bytes[13] == 3)
        #expect(router.sessionCount == 0)
        #expect(router.runtime.stats.value(.helloVerifySent) == 1)
        #expect(router.runtime.stats.value(.sessionsCreated) == 0)
    }

    @Test func aClientHelloWithItsCookieCreatesASessionThatAnswersTheRestOfTheHandshake() throws {
        let setup = try setUp()
        let (channel, router, connection) = (setup.channel, setup.router, setup.connection)
        _ = connection.handshake()
        try deliver(connection, to: channel)
        // The client answers the HelloVerifyRequest with a ClientHello carrying the cookie.
        for reply in try replies(channel) { connection.receive(reply.data) }
        #expect(connection.handshake() == .inProgress)
        try deliver(connection, to: channel)
        #expect(router.sessionCount == 1)
        #expect(router.runtime.stats.value(.sessionsCreated) == 1)
        #expect(router.runtime.stats.handshakesInProgress == 1)
        // The session's first flight: ServerHello … ServerHelloDone.
        let flight = try replies(channel)
        #expect(!flight.isEmpty && flight.allSatisfy { $0.remoteAddress == client })
        for reply in flight { connection.receive(reply.data) }
        #expect(connection.handshake() == .inProgress)
        // The client's last flight is routed by address to that session, which
        // completes and sends its ChangeCipherSpec and Finished.
        try deliver(connection, to: channel)
        #expect(router.runtime.stats.value(.handshakesCompleted) == 1)
        var clientDone = false
        for reply in try replies(channel) {
            connection.receive(reply.data)
            if connection.handshake() == .complete { clientDone = true }
        }
        #expect(clientDone)
        // An embedded loop cannot host the backend socket: the session ends on
        // that error, and every hold it had goes with it.
        #expect(router.sessionCount == 0)
        #expect(router.runtime.stats.handshakesInProgress == 0)
        #expect(router.runtime.stats.active == 0)
    }

    @Test(arguments: [
        [UInt8](), [0x16, 0xFE], [UInt8](repeating: 0xAB, count: 40),
        [0x63, 0xFE, 0xFD, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0],
    ])
    func malformedDatagramsAreDroppedAndCounted(bytes: [UInt8]) throws {
        let setup = try setUp()
        let (channel, router) = (setup.channel, setup.router)
        try channel.writeInbound(AddressedEnvelope(remoteAddress: client, data: ByteBuffer(bytes: bytes)))
        #expect(try replies(channel).isEmpty)
        #expect(router.runtime.stats.value(.droppedMalformed) == 1)
        #expect(router.sessionCount == 0)
    }

    @Test func aRecordFromAnAddressWithoutASessionIsDroppedAndCounted() throws {
        let setup = try setUp()
        let (channel, router) = (setup.channel, setup.router)
        // Application data, epoch 1, from a peer the router has never seen.
        var record: [UInt8] = [23, 0xFE, 0xFD, 0, 1, 0, 0, 0, 0, 0, 1, 0, 24]
        record += [UInt8](repeating: 0x5A, count: 24)
        try channel.writeInbound(AddressedEnvelope(remoteAddress: client, data: ByteBuffer(bytes: record)))
        #expect(try replies(channel).isEmpty)
        #expect(router.runtime.stats.value(.droppedNoSession) == 1)
        #expect(router.runtime.stats.value(.droppedMalformed) == 0)
    }
}
