// udp-echo: the plaintext UDP echo backend bundled with dtls-proxyd.
//
// It answers every datagram with the same bytes, sent back to the address the
// datagram came from, one reply per datagram. `make run` puts it behind the
// daemon for a demonstration; the integration tests and benchmarks use it as
// a backend whose replies can be told apart (`--prefix`).

import ArgumentParser
import NIOCore
import NIOPosix

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// The command line: `udp-echo --listen HOST:PORT [--prefix TEXT]`.
@main
struct UDPEcho: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "udp-echo",
        abstract: "Echo every UDP datagram back to its sender, one reply per datagram."
    )

    /// Where to bind: `127.0.0.1:5683`, `[::1]:5683`, `0.0.0.0:5683`, `localhost:5683`.
    @Option(name: .long, help: "Address to bind, HOST:PORT (IPv6 as [ADDR]:PORT).")
    var listen: String = "127.0.0.1:5683"

    /// Bytes put in front of every reply, so that tests can tell backends apart.
    @Option(name: .long, help: "Text prepended to every reply.")
    var prefix: String = ""

    /// How many datagrams one read system call may return (recvmmsg).
    @Option(name: .long, help: "Datagrams read per system call (vector reads).")
    var vectorReads: Int = 16

    func validate() throws {
        _ = try EchoEndpoint.parse(listen)
        guard (1...1024).contains(vectorReads) else {
            throw ValidationError("--vector-reads must be between 1 and 1024")
        }
    }

    func run() async throws {
        let endpoint = try EchoEndpoint.parse(listen)
        let address = try endpoint.socketAddress()
        let prefixBytes = Array(prefix.utf8)
        let vectorReads = self.vectorReads

        let bootstrap = DatagramBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.socketOption(.so_rcvbuf), value: 4 << 20)
            .channelOption(.socketOption(.so_sndbuf), value: 4 << 20)
            .channelOption(.datagramVectorReadMessageCount, value: vectorReads)
            // Vector reads slice one buffer into `vectorReads` slots; each slot
            // must hold the largest UDP payload so nothing is truncated.
            .channelOption(
                .recvAllocator,
                value: FixedSizeRecvByteBufferAllocator(capacity: vectorReads * EchoHandler.maximumDatagram)
            )
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(EchoHandler(prefix: prefixBytes))
                }
            }

        let channel: Channel
        do {
            channel = try await bootstrap.bind(to: address).get()
        } catch {
            writeLine("udp-echo: cannot bind \(endpoint): \(error)", to: STDERR_FILENO)
            throw ExitCode.failure
        }
        let bound = channel.localAddress.map(EchoEndpoint.describe) ?? endpoint.description
        writeLine("udp-echo listening on \(bound)")
        try await channel.closeFuture.get()
    }
}

/// Echoes each received datagram to its source; replies are flushed once per
/// read burst so that a vector read is answered with a vector write.
final class EchoHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundOut = AddressedEnvelope<ByteBuffer>

    /// Room for the largest UDP payload (65,507 bytes over IPv4), rounded up to 64 KiB.
    static let maximumDatagram = 65_536

    private let prefix: [UInt8]

    init(prefix: [UInt8]) {
        self.prefix = prefix
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = Self.unwrapInboundIn(data)
        var reply: ByteBuffer
        if prefix.isEmpty {
            reply = envelope.data
        } else {
            reply = context.channel.allocator.buffer(capacity: prefix.count + envelope.data.readableBytes)
            reply.writeBytes(prefix)
            var payload = envelope.data
            reply.writeBuffer(&payload)
        }
        let out = AddressedEnvelope(remoteAddress: envelope.remoteAddress, data: reply)
        context.write(Self.wrapOutboundOut(out), promise: nil)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
    }

    /// A failed send (e.g. ICMP port unreachable reported on the socket) must
    /// not stop the echo: log it and keep serving.
    func errorCaught(context: ChannelHandlerContext, error: Error) {
        writeLine("udp-echo: \(error)", to: STDERR_FILENO)
    }
}

/// A `HOST:PORT` pair from the command line.
struct EchoEndpoint: CustomStringConvertible {
    var host: String
    var port: Int

    /// Parses `127.0.0.1:5683`, `[::1]:5683` or `localhost:5683`.
    static func parse(_ text: String) throws -> EchoEndpoint {
        let host: Substring
        let portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"),
                text.index(after: close) < text.endIndex,
                text[text.index(after: close)] == ":"
            else { throw ValidationError("invalid address \"\(text)\": expected [IPV6]:PORT") }
            host = text[text.index(after: text.startIndex)..<close]
            portText = text[text.index(close, offsetBy: 2)...]
        } else {
            guard let colon = text.lastIndex(of: ":"), !text[..<colon].contains(":") else {
                throw ValidationError("invalid address \"\(text)\": expected HOST:PORT")
            }
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
        }
        guard !host.isEmpty, let port = Int(portText), (0...65535).contains(port) else {
            throw ValidationError("invalid address \"\(text)\": expected HOST:PORT with a port 0-65535")
        }
        return EchoEndpoint(host: String(host), port: port)
    }

    /// An IP literal as is; anything else through the resolver.
    func socketAddress() throws -> SocketAddress {
        if let literal = try? SocketAddress(ipAddress: host, port: port) {
            return literal
        }
        return try SocketAddress.makeAddressResolvingHost(host, port: port)
    }

    var description: String {
        host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }

    /// `127.0.0.1:5683` or `[::1]:5683` for a bound socket address.
    static func describe(_ address: SocketAddress) -> String {
        guard let ip = address.ipAddress, let port = address.port else { return "\(address)" }
        return EchoEndpoint(host: ip, port: port).description
    }
}

/// Writes one line straight to a file descriptor, unbuffered, so that a
/// parent process reading our stdout through a pipe sees it at once.
func writeLine(_ line: String, to fd: Int32 = STDOUT_FILENO) {
    let bytes = Array((line + "\n").utf8)
    var offset = 0
    while offset < bytes.count {
        let written = bytes.withUnsafeBytes { raw in
            write(fd, raw.baseAddress! + offset, raw.count - offset)
        }
        if written < 0 {
            if errno == EINTR { continue }
            return
        }
        offset += written
    }
}
