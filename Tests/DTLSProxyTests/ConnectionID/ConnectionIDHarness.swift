import Foundation
import NIOCore
import Testing

@testable import DTLSProxy

/// A listener's server connection and a connector's client connection in
/// process, both through their datagram BIOs (and so through the CID record
/// layer), with the router's cookie exchange in front of the server and every
/// datagram between them kept as it was on the wire.
final class ConnectionIDHarness {
    let allocator = ByteBufferAllocator()
    let peerMaterial: [UInt8] = [4, 127, 0, 0, 1, 0x30, 0x39]
    let cookies = CookieVerifier(masterSecret: CookieVerifier.randomSecret())
    let folder: ConfigTestFolder
    let serverContext: DTLSServerContext
    let clientContext: DTLSClientContext
    /// Every datagram sent to the server / to the client, in order.
    var toServer: [[UInt8]] = []
    var toClient: [[UInt8]] = []

    /// Contexts for PSK or a self-signed ECDSA certificate, both limited to `cipher` when given.
    init(
        certificate: Bool, cipher: String? = nil, server: ConnectionIDPolicy, client: ConnectionIDPolicy
    ) throws {
        let config: ProxyConfiguration
        (folder, config) = try ConfigTestFolder.listenerAndConnector(certificate: certificate, cipher: cipher)
        serverContext = try DTLSServerContext(
            listener: config.listeners[0], configFile: config.sourcePath, connectionID: server)
        clientContext = try DTLSClientContext(
            connector: config.connectors[0], configFile: config.sourcePath, connectionID: client)
    }

    /// Every datagram `endpoint` wrote, oldest first.
    func drain(_ endpoint: DTLSEndpoint) -> [ByteBuffer] {
        var out: [ByteBuffer] = []
        endpoint.drainOutbound { out.append($0) }
        return out
    }

    /// What `from` wrote, recorded and handed to `to`, whose records are then read; returns the plaintexts.
    @discardableResult
    func deliver(from: DTLSEndpoint, to: DTLSEndpoint) -> [String] {
        var lines: [String] = []
        for datagram in drain(from) {
            lines += inject(Array(datagram.readableBytesView), to: to)
        }
        return lines
    }

    /// Hands `to` one datagram as if it came off the wire (recorded as such) and reads what it yields.
    func inject(_ datagram: [UInt8], to: DTLSEndpoint) -> [String] {
        if to is DTLSServerConnection { toServer.append(datagram) } else { toClient.append(datagram) }
        to.receive(ByteBuffer(bytes: datagram))
        return readAll(to)
    }

    /// Reads every record OpenSSL yields from what was received.
    func readAll(_ endpoint: DTLSEndpoint) -> [String] {
        var lines: [String] = []
        var plaintext = allocator.buffer(capacity: 2048)
        while case .data = endpoint.read(into: &plaintext, maximum: 2048) {
            lines.append(plaintext.readString(length: plaintext.readableBytes) ?? "")
            plaintext.clear()
        }
        return lines
    }

    /// What the network does to each datagram the client sends during the
    /// handshake after its ClientHello: by default, delivers it as it is.
    var handshakeNetwork: ([UInt8]) -> [[UInt8]] = { [$0] }
    /// How many HelloVerifyRequests the client gets before its ClientHello reaches the server.
    var helloVerifyRounds = 1

    /// Runs both handshakes to completion (resuming the session `cache` holds, as a
    /// connector does); nil after recording why not.
    func connect(resuming cache: ClientSessionCache? = nil) throws -> (DTLSServerConnection, DTLSClientConnection)? {
        switch try handshake(resuming: cache) {
        case .success(let pair): return pair
        case .failure(let failure):
            Issue.record("\(failure)")
            return nil
        }
    }

    /// Runs both handshakes, to completion or to the first failure.
    func handshake(
        resuming cache: ClientSessionCache? = nil
    ) throws -> Result<(DTLSServerConnection, DTLSClientConnection), DTLSFailure> {
        let client = try DTLSClientConnection(context: clientContext, ipv6: false, allocator: allocator)
        cache?.offer(to: client.ssl)
        #expect(client.handshake() == .inProgress)
        var second = try #require(drain(client).first)
        // The router's HelloVerifyRequests: the ClientHello that carries a cookie is numbered 1,
        // or more after further rounds, which the server then replays (ClientHelloRenumbering).
        for _ in 0..<helloVerifyRounds {
            toServer.append(Array(second.readableBytesView))
            let hello = try second.withUnsafeReadableBytes { ClientHelloParser.parse($0) }.get()
            let verify = HelloVerifyRequest.datagram(
                cookie: cookies.cookie(for: peerMaterial), recordSequenceNumber: hello.recordSequenceNumber,
                messageSequence: hello.messageSequence)
            client.receive(ByteBuffer(bytes: verify))
            #expect(client.handshake() == .inProgress)
            second = try #require(drain(client).first)
        }
        toServer.append(Array(second.readableBytesView))
        if helloVerifyRounds > 0 {
            // The router lets through only a ClientHello whose cookie verifies.
            let withCookie = try second.withUnsafeReadableBytes { ClientHelloParser.parse($0) }.get()
            #expect(cookies.verify(withCookie.cookie, for: peerMaterial))
        }
        let server = try DTLSServerConnection(
            context: serverContext, cookies: cookies, peerMaterial: peerMaterial, ipv6: false, allocator: allocator)
        #expect(server.start(clientHello: second).succeeded)
        var serverDone = false, clientDone = false
        for _ in 0..<10 where !(serverDone && clientDone) {
            if !serverDone {
                switch server.handshake() {
                case .complete: serverDone = true
                case .inProgress: break
                case let other: return .failure(DTLSFailure("server handshake: \(other)"))
                }
            }
            for datagram in drain(server) {
                toClient.append(Array(datagram.readableBytesView))
                client.receive(datagram)
                switch client.handshake() {
                case .complete: clientDone = true
                case .inProgress: break
                case let other: return .failure(DTLSFailure("client handshake: \(other)"))
                }
            }
            for datagram in drain(client) {
                for delivered in handshakeNetwork(Array(datagram.readableBytesView)) {
                    toServer.append(delivered)
                    server.receive(ByteBuffer(bytes: delivered))
                    if serverDone {
                        _ = readAll(server)
                        continue
                    }
                    switch server.handshake() {
                    case .complete: serverDone = true
                    case .inProgress: break
                    case let other: return .failure(DTLSFailure("server handshake: \(other)"))
                    }
                }
            }
        }
        guard serverDone && clientDone else {
            let stats = [server.connectionIDRecords?.stats, client.connectionIDRecords?.stats]
            return .failure(DTLSFailure("handshake did not complete; drops (server, client): \(stats)"))
        }
        return .success((server, client))
    }

    /// A ping from the client and a pong from the server, each read by the other end.
    func exchange(_ server: DTLSServerConnection, _ client: DTLSClientConnection, _ tag: String = "") {
        #expect(client.write(ByteBuffer(string: "ping" + tag)).succeeded)
        #expect(deliver(from: client, to: server) == ["ping" + tag])
        #expect(server.write(ByteBuffer(string: "pong" + tag)).succeeded)
        #expect(deliver(from: server, to: client) == ["pong" + tag])
    }
}

extension ConnectionIDHarness {
    /// A PSK session over `cipher` with CIDs, the client asking for one of `clientCIDLength` bytes.
    static func established(
        cipher: String, clientCIDLength: Int
    ) throws -> (ConnectionIDHarness, DTLSServerConnection, DTLSClientConnection) {
        let harness = try ConnectionIDHarness(
            certificate: false, cipher: cipher, server: try ConnectionIDIssuer().policy,
            client: try .on(length: clientCIDLength))
        let (server, client) = try #require(try harness.connect())
        return (harness, server, client)
    }

    /// The datagram OpenSSL (through the record layer) writes for one plaintext, not delivered.
    static func written(_ text: String, by endpoint: DTLSEndpoint) throws -> [UInt8] {
        #expect(endpoint.write(ByteBuffer(string: text)).succeeded)
        var out: [[UInt8]] = []
        endpoint.drainOutbound { out.append(Array($0.readableBytesView)) }
        try #require(out.count == 1)
        return out[0]
    }
}
