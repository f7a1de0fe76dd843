import Glibc
import NIOCore

/// A short, bounded spin before an event loop goes to sleep (`busy_poll`):
/// the loop keeps its core for up to ``window`` after it sent datagrams, and
/// stops the moment one of the sockets it expects an answer on is readable.
///
/// Why: on a machine whose wake-ups are slow (a virtual machine, a core in a
/// deep idle state), every datagram that finds the loop asleep in
/// `epoll_wait` pays a full wake-up: the scheduler, an interrupt to the idle
/// core, the switch back. With one datagram in flight a relayed round trip
/// pays two of them, and they are most of its latency. A loop that is still
/// spinning when the backend's reply (or the peer's next datagram) arrives
/// finds it without sleeping: SwiftNIO's `epoll_wait` that follows returns at
/// once, since the socket is already readable (its epoll is level-triggered).
///
/// The cost is CPU: a spin that times out burns ``window`` for nothing, so it
/// is off unless configured. The spin runs as a task on the loop, after the
/// iteration's I/O; while it runs, the loop serves nothing else, so a socket
/// not watched (another session's) or a timer waits at most ``window``.
///
/// Watched are the router's socket and the session sockets the loop just
/// flushed: where the answers to what it sent arrive. A socket closed before
/// the spin runs shows as `POLLNVAL`, which ends the spin early, never
/// wrongly: what is readable is decided by NIO's own `epoll_wait` after it.
struct BusyPoll {
    /// Sockets one spin watches at most; beyond, the spin ends as soon as one of these is readable.
    static let watchLimit = 64

    /// How long a spin lasts at most; zero: never spin.
    var window: TimeAmount = .zero
    private var watched: [pollfd] = []

    var isEnabled: Bool { window > .zero }

    /// Adds `descriptor` to what the next spin watches (once; nothing when disabled).
    mutating func watch(_ descriptor: CInt) {
        guard isEnabled, watched.count < Self.watchLimit, !watched.contains(where: { $0.fd == descriptor }) else {
            return
        }
        watched.append(pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0))
    }

    /// How the last spin ended.
    enum End: Equatable {
        /// A watched socket became readable (or reported an error): the loop has work.
        case ready
        /// The window ran out with nothing to read.
        case timedOut
        /// Nothing was watched, or spinning is off: no spin at all.
        case skipped
    }

    /// Spins with `poll(…, 0)` over the watched sockets until one is ready or
    /// the window has passed, then forgets them. `now` is the clock (a test's, or NIO's).
    mutating func spin(now: () -> NIODeadline = NIODeadline.now) -> End {
        defer { watched.removeAll(keepingCapacity: true) }
        guard isEnabled, !watched.isEmpty else { return .skipped }
        let end = now() + window
        repeat {
            let ready = watched.withUnsafeMutableBufferPointer { poll($0.baseAddress, nfds_t($0.count), 0) }
            if ready != 0 { return .ready }  // > 0: readable; < 0 (EINTR, say): let the loop look
        } while now() < end
        return .timedOut
    }
}
