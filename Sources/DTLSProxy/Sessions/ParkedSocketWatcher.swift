import CPlatform
import Foundation
import NIOConcurrencyHelpers

/// Watches the backend sockets of idle sessions while they are parked, and
/// wakes a session when its socket has something to read.
///
/// A parked socket (``SessionSocket``) is still open and still connected, so
/// the backend keeps seeing the same source port, but it has no SwiftNIO
/// channel: the channel, its pipeline and the receive buffer NIO keeps per
/// channel are about 6.4 KiB of every idle session (BENCHMARKS.md). The
/// backend may still send to a quiet client (a CoAP notification, a game
/// state update), and an ICMP error may arrive; this watcher is what notices.
///
/// One thread for the whole daemon blocks in `epoll_wait` on the parked
/// sockets only. Each is watched with `EPOLLONESHOT`: the first report runs
/// the wake-up the session registered (which hops to the session's event
/// loop), and the socket is not reported again. The data path never comes
/// here: an active session's socket is an ordinary NIO channel on its loop.
final class ParkedSocketWatcher: Sendable {
    /// The daemon's watcher; its thread starts on first use (``start()``).
    static let shared = ParkedSocketWatcher()

    /// Creates the watcher's epoll instance and thread now, if not yet done.
    static func start() {
        _ = shared
    }

    private let epollDescriptor: CInt
    /// What to run when a watched descriptor becomes readable, by descriptor.
    /// Taken out under the lock before it runs, so each runs at most once.
    private let wakeUps = NIOLockedValueBox<[CInt: @Sendable () -> Void]>([:])

    private init() {
        epollDescriptor = dp_epoll_create()
        guard epollDescriptor >= 0 else { return }
        let thread = Thread { [self] in
            self.run()
        }
        thread.name = "parked-sockets"
        thread.start()
    }

    /// Reports `descriptor` once, through `wakeUp`, when it becomes readable
    /// or has an error pending. False when it cannot be watched (the caller
    /// keeps the socket on a channel instead).
    func watch(_ descriptor: CInt, wakeUp: @escaping @Sendable () -> Void) -> Bool {
        guard epollDescriptor >= 0 else { return false }
        wakeUps.withLockedValue { $0[descriptor] = wakeUp }
        guard dp_epoll_watch_once(epollDescriptor, descriptor) == 0 else {
            wakeUps.withLockedValue { _ = $0.removeValue(forKey: descriptor) }
            return false
        }
        return true
    }

    /// Stops watching `descriptor`; call before it is closed or handed to NIO.
    /// A wake-up already taken by the thread may still run: the session
    /// checks that it is still parked (``SessionSocket``'s park generation).
    func unwatch(_ descriptor: CInt) {
        wakeUps.withLockedValue { _ = $0.removeValue(forKey: descriptor) }
        _ = dp_epoll_forget(epollDescriptor, descriptor)
    }

    /// Descriptors watched now (for tests).
    var watchedCount: Int { wakeUps.withLockedValue { $0.count } }

    private func run() {
        let batch = 64
        var ready = [CInt](repeating: -1, count: batch)
        while true {
            let count = ready.withUnsafeMutableBufferPointer {
                dp_epoll_wait_fds(epollDescriptor, $0.baseAddress, CInt(batch), -1)
            }
            // EINTR (a signal landed on this thread) is the only error epoll_wait
            // returns for a valid instance; wait again.
            guard count > 0 else { continue }
            for descriptor in ready[0..<Int(count)] {
                let wakeUp = wakeUps.withLockedValue { $0.removeValue(forKey: descriptor) }
                wakeUp?()
            }
        }
    }
}
