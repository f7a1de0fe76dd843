import NIOCore

/// The handler on a router's own socket, for either role: it keys sessions
/// by their peer on that socket (``SessionTable``) and lends them a
/// ``SessionHost``. What both roles' routers do besides routing is written
/// here once.
protocol SessionRouter: ChannelInboundHandler, AnyObject
where InboundIn == AddressedEnvelope<ByteBuffer>, OutboundOut == AddressedEnvelope<ByteBuffer> {
    associatedtype Session: SessionCore
    var host: SessionHost { get }
    var table: SessionTable<Session> { get }
    /// Where the loop's traffic tally goes.
    var trafficCounters: TrafficCounters { get }
    /// Counts datagrams the kernel dropped on the router's socket, its receive queue full.
    func countRouterSocketDrops(_ drops: Int)
    /// Stops taking new sessions, before every session is closed.
    func stopAdmitting()
}

extension SessionRouter {
    /// Sessions held on this loop, replacements included.
    var sessionCount: Int { table.count }

    /// Adds the tallied datagrams and bytes to the role's metrics.
    func flushTraffic() { host.flushTraffic(into: trafficCounters) }

    /// Counts what the kernel dropped on the router's socket since the last call (once a second).
    func collectRouterSocketDrops() {
        host.collectRouterSocketDrops { self.countRouterSocketDrops($0) }
    }

    /// Counts what the kernel dropped on the router's socket and on every
    /// session's socket; before a scrape or a stats line.
    func collectKernelDrops() {
        collectRouterSocketDrops()
        table.collectKernelDrops()
    }

    /// Once a second (``IdleSweep/period``): see ``SessionTable/sweepIdleSessions()``.
    func sweepIdleSessions() { table.sweepIdleSessions() }

    /// Stops admitting sessions and closes every one with close_notify:
    /// `.shutdown` when the daemon stops, `.reload` when a reload removed the listener or connector.
    func closeAllSessions(reason: CloseReason) {
        stopAdmitting()
        table.closeAll(reason: reason)
        host.flush()
        flushTraffic()
    }

    func handlerAdded(context: ChannelHandlerContext) {
        host.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        host.context = nil
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        host.flush()
    }
}
