import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// This instance's end of the cluster: one UDP socket on `[cluster] listen`.
///
/// A client whose address changed may land on another instance than the one
/// holding its session (a balancer hashes 5-tuples). That instance sees the
/// owner's `node_id` in the record's connection ID and forwards the datagram
/// here (``forward(_:listener:client:to:)``); this instance's listener hands
/// it to the session as if it had come straight from the client, and the
/// session's replies go back the same way (``reply(_:listener:client:to:)``)
/// for the receiving instance to send from its own socket, so the client
/// keeps seeing the address it sent to. Every message is authenticated
/// (``ClusterMessage``, ``ClusterKey``) and checked for staleness and replay
/// (``ClusterReplayGuard``); what fails is dropped and counted.
public final class ClusterLink: Sendable {
    /// Where a received message goes: the routers of the listener it names.
    typealias Listeners = @Sendable (String) -> [NIOLoopBound<ListenerRouter>]

    /// Holds the ``Listeners`` function. A class, not the function itself, in the
    /// lock box: a function value read out of a generic box through its `inout`
    /// accessor comes back wrapped in one more reabstraction thunk each time,
    /// and a chain that grows by one per message took most of the link's CPU.
    private final class ListenerSource: Sendable {
        let routers: Listeners
        init(_ routers: @escaping Listeners) { self.routers = routers }
    }

    let nodeID: UInt8
    let stats: ClusterStats
    private let channel: Channel
    private let logger: Logger
    private let state: NIOLockedValueBox<State>
    private let listeners: NIOLockedValueBox<ListenerSource?>

    private struct State {
        var key: ClusterKey
        var peers: [UInt8: SocketAddress]
        var sequence: UInt64
        var replayGuard = ClusterReplayGuard()
        /// Peers heard from, for a log line the first time.
        var heard: Set<UInt8> = []
    }

    private enum Admission {
        case accepted(ClusterMessage, firstFromSender: Bool)
        case dropped(ClusterStats.Counter)
    }

    private init(
        nodeID: UInt8, channel: Channel, state: State, stats: ClusterStats, logger: Logger,
        listeners: NIOLockedValueBox<ListenerSource?>
    ) {
        self.nodeID = nodeID
        self.channel = channel
        self.state = NIOLockedValueBox(state)
        self.stats = stats
        self.logger = logger
        self.listeners = listeners
    }

    /// Binds `[cluster] listen` on `loop`; throws `StartupError` when it cannot.
    static func start(
        _ configuration: ClusterConfiguration, nodeID: Int, on loop: EventLoop, metrics: DaemonMetrics,
        logger: Logger
    ) async throws -> ClusterLink {
        let peers = try resolve(configuration.peers)
        let listeners = NIOLockedValueBox<ListenerSource?>(nil)
        let box = NIOLockedValueBox<ClusterLink?>(nil)
        let address = try configuration.listen.resolved(for: "cluster", key: "listen")
        let channel: Channel
        do {
            channel = try await DatagramBootstrap(group: loop)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(ClusterHandler(link: box))
                    }
                }
                .bind(to: address).get()
        } catch {
            throw StartupError(
                description: "cluster: cannot bind \(address.logDescription): \(ListenerSockets.describe(error))")
        }
        // Each message a number above all this instance sent before it restarted.
        let start = UInt64(Date().timeIntervalSince1970 * 1_000_000)
        let link = ClusterLink(
            nodeID: UInt8(clamping: nodeID), channel: channel,
            state: State(key: ClusterKey(secret: configuration.secret), peers: peers, sequence: start),
            stats: ClusterStats(metrics: metrics), logger: logger, listeners: listeners)
        box.withLockedValue { $0 = link }
        logger.info(
            "cluster node \(nodeID) bound to \(address.logDescription), peers \(configuration.peers.map { "\($0.nodeID)=\($0.address)" }.joined(separator: ", "))"
        )
        return link
    }

    /// The peers' addresses, resolved (a name that does not resolve is a configuration error).
    static func resolve(_ peers: [ClusterPeer]) throws -> [UInt8: SocketAddress] {
        var resolved: [UInt8: SocketAddress] = [:]
        for peer in peers {
            resolved[UInt8(peer.nodeID)] = try peer.address.resolved(for: "cluster", key: "peers")
        }
        return resolved
    }

    /// Where messages for each listener go; set once the listeners are up.
    func setListeners(_ body: @escaping Listeners) {
        let source = ListenerSource(body)
        listeners.withLockedValue { $0 = source }
    }

    /// A reload: new peers and secret; the socket stays.
    func update(peers: [UInt8: SocketAddress], secret: [UInt8]) {
        state.withLockedValue {
            $0.peers = peers
            $0.key = ClusterKey(secret: secret)
        }
    }

    func knows(_ node: UInt8) -> Bool { state.withLockedValue { $0.peers[node] != nil } }

    /// Sends a client's datagram to the node owning its connection ID; false when that node is not a peer.
    @discardableResult
    func forward(_ datagram: ByteBuffer, listener: String, client: SocketAddress, to node: UInt8) -> Bool {
        send(.forward, datagram, listener: listener, client: client, to: node)
    }

    /// Sends a session's datagram for its client back through the node that forwarded the client's.
    @discardableResult
    func reply(_ datagram: ByteBuffer, listener: String, client: SocketAddress, to node: UInt8) -> Bool {
        send(.reply, datagram, listener: listener, client: client, to: node)
    }

    private func send(
        _ kind: ClusterMessage.Kind, _ datagram: ByteBuffer, listener: String, client: SocketAddress, to node: UInt8
    ) -> Bool {
        let made = state.withLockedValue { state -> (SocketAddress, [UInt8])? in
            guard let peer = state.peers[node] else { return nil }
            state.sequence += 1
            let message = ClusterMessage(
                kind: kind, sender: nodeID, timestamp: Self.now(), sequence: state.sequence, listener: listener,
                client: client, datagram: Array(datagram.readableBytesView))
            return (peer, message.sealed(with: state.key))
        }
        guard let (peer, bytes) = made else {
            stats.increment(.droppedUnknownNode)
            return false
        }
        stats.increment(kind == .forward ? .forwarded : .replied)
        channel.writeAndFlush(AddressedEnvelope(remoteAddress: peer, data: ByteBuffer(bytes: bytes)), promise: nil)
        return true
    }

    static func now() -> UInt64 { UInt64(Date().timeIntervalSince1970 * 1000) }

    /// One datagram on the cluster socket.
    fileprivate func received(_ bytes: [UInt8]) {
        let verdict = state.withLockedValue { state -> Admission in
            let message: ClusterMessage
            do {
                message = try ClusterMessage.open(bytes, with: state.key)
            } catch {
                return .dropped(.droppedUnauthenticated)
            }
            guard state.peers[message.sender] != nil else { return .dropped(.droppedUnknownNode) }
            switch state.replayGuard.admit(message, now: Self.now()) {
            case .stale: return .dropped(.droppedStale)
            case .replayed: return .dropped(.droppedReplayed)
            case .accepted: return .accepted(message, firstFromSender: state.heard.insert(message.sender).inserted)
            }
        }
        switch verdict {
        case .dropped(let counter):
            stats.increment(counter)
        case .accepted(let message, let first):
            if first { logger.info("cluster node \(message.sender) reached: its messages authenticate") }
            stats.heard(message.sender, at: Double(message.timestamp) / 1000)
            deliver(message)
        }
    }

    private func deliver(_ message: ClusterMessage) {
        let routers = listeners.withLockedValue { $0 }?.routers(message.listener) ?? []
        guard let router = routers.first(where: { $0.eventLoop === channel.eventLoop }) ?? routers.first else {
            stats.increment(.droppedUnknownListener)
            return
        }
        let datagram = ByteBuffer(bytes: message.datagram)
        let relay = ClusterRelay(link: self, node: message.sender, listener: message.listener)
        switch message.kind {
        case .forward:
            stats.increment(.forwardsReceived)
            router.eventLoop.execute { router.value.routeByConnectionID(datagram, from: message.client, via: relay) }
        case .reply:
            stats.increment(.repliesReceived)
            router.eventLoop.execute {
                router.value.host.send(datagram, to: message.client)
                router.value.host.flush()
            }
        }
    }

    /// Closes the cluster socket.
    func close() async {
        try? await channel.close()
    }
}

/// The way back to a client whose datagrams reach this instance through another one.
struct ClusterRelay: Sendable, Equatable {
    let link: ClusterLink
    let node: UInt8
    let listener: String

    static func == (lhs: ClusterRelay, rhs: ClusterRelay) -> Bool {
        lhs.link === rhs.link && lhs.node == rhs.node && lhs.listener == rhs.listener
    }
}

/// The handler on the cluster socket.
private final class ClusterHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    private let link: NIOLockedValueBox<ClusterLink?>

    init(link: NIOLockedValueBox<ClusterLink?>) { self.link = link }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        link.withLockedValue { $0 }?.received(Array(envelope.data.readableBytesView))
    }
}
