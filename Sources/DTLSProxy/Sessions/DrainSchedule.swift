/// When a socket's drain after NIO's read is worth a system call.
///
/// NIO reads the first datagram of a wake-up; the drain's `recvmmsg` then
/// fetches what else waits. With one datagram in flight nothing else ever
/// waits, and every drain only hears EAGAIN: a system call per datagram per
/// socket spent on nothing. So after a drain that found nothing the next
/// drains are skipped, twice as many each time one finds nothing again (up to
/// ``maximumSkips``), and the first drain that finds something puts the
/// socket back on a drain after every read.
///
/// A skip loses nothing and delays nothing: SwiftNIO's selector is
/// level-triggered, so a datagram left waiting makes the socket readable again
/// at the loop's next `epoll_wait`, which returns at once, and NIO reads it.
/// What a skip can cost, when a burst starts, is up to ``maximumSkips`` reads
/// of one datagram each before the drain takes the rest in batches.
struct DrainSchedule {
    /// The most reads in a row that skip the drain.
    static let maximumSkips = 8

    /// Reads still to skip the drain.
    private var skipsLeft = 0
    /// How many reads the next empty drain makes skip it.
    private var skipsAfterEmpty = 1

    /// Whether this read should drain the socket; a skip is counted.
    mutating func shouldDrain() -> Bool {
        guard skipsLeft > 0 else { return true }
        skipsLeft -= 1
        return false
    }

    /// What the drain found: `count` datagrams.
    mutating func drained(_ count: Int) {
        if count > 0 {
            skipsLeft = 0
            skipsAfterEmpty = 1
        } else {
            skipsLeft = skipsAfterEmpty
            skipsAfterEmpty = min(skipsAfterEmpty * 2, Self.maximumSkips)
        }
    }
}
