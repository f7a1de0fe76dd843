import CPlatform
import Foundation
import Logging
import NIOConcurrencyHelpers

/// Watches the files of the running configuration with inotify and reports,
/// once a burst of changes has settled (``ReloadDebounce``), that a reload is due.
///
/// A thread of its own, blocked in `poll` on the inotify descriptor and an
/// eventfd, rather than a descriptor registered with a NIO event loop: the
/// event loops carry the datagram path, and this watcher's work (reading and
/// matching events, adding watches, which walks paths in the kernel, and
/// timing the debounce) never belongs there; NIO also has no public way to
/// register a raw non-socket descriptor for readability without taking it
/// over as a channel. The thread owns the inotify state (watch descriptors and
/// their directories, the debounce); other threads only hand it the wanted
/// set or ask it to stop, through ``shared`` and the eventfd. It sleeps
/// whenever nothing changed, so it costs nothing between updates.
final class ConfigFileWatcher: Sendable {
    private struct Shared {
        /// The set the thread should watch next; nil when it has been taken.
        var wanted: ConfigWatchSet? = nil
        var stopping = false
        var exited = false
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    private let inotify: CInt
    private let wake: CInt
    private let shared = NIOLockedValueBox(Shared())
    private let logger: Logger
    private let onChange: @Sendable ([String]) -> Void

    private init(inotify: CInt, wake: CInt, logger: Logger, onChange: @escaping @Sendable ([String]) -> Void) {
        self.inotify = inotify
        self.wake = wake
        self.logger = logger
        self.onChange = onChange
    }

    /// A watcher with its thread running, watching nothing yet; nil when the
    /// system refuses an inotify instance (logged: the daemon runs on, and
    /// SIGHUP still reloads).
    static func start(logger: Logger, onChange: @escaping @Sendable ([String]) -> Void) -> ConfigFileWatcher? {
        let inotify = dp_inotify_open()
        guard inotify >= 0 else {
            let code = errno
            let limit = code == EMFILE ? " (the limit of inotify instances, sysctl fs.inotify.max_user_instances)" : ""
            logger.error(
                "reload_on_change: cannot create an inotify instance: \(String(cString: strerror(code)))\(limit); files are not watched, SIGHUP still reloads"
            )
            return nil
        }
        let wake = dp_wake_open()
        guard wake >= 0 else {
            logger.error(
                "reload_on_change: cannot create an eventfd: \(String(cString: strerror(errno))); files are not watched, SIGHUP still reloads"
            )
            close(inotify)
            return nil
        }
        let watcher = ConfigFileWatcher(inotify: inotify, wake: wake, logger: logger, onChange: onChange)
        let thread = Thread { watcher.run() }
        thread.name = "reload-on-change"
        thread.start()
        return watcher
    }

    /// Watches `files` (absolute paths) from now on, instead of what was watched;
    /// directories that could not be watched before are tried again.
    func watch(_ files: [String]) {
        let set = ConfigWatchSet(files: files)
        shared.withLockedValue { $0.wanted = set }
        dp_wake_signal(wake)
    }

    /// Stops the thread and returns once it has closed its descriptors.
    func stop() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let exited = shared.withLockedValue { state in
                state.stopping = true
                if !state.exited { state.waiters.append(continuation) }
                return state.exited
            }
            if exited {
                continuation.resume()
            } else {
                dp_wake_signal(wake)
            }
        }
    }

    // MARK: - The thread

    /// What only the thread touches.
    private struct Watching {
        var set = ConfigWatchSet(files: [])
        var descriptors: [String: CInt] = [:]
        var directories: [CInt: String] = [:]
        var debounce = ReloadDebounce()
    }

    private func run() {
        var watching = Watching()
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let (wanted, stopping) = shared.withLockedValue { state in
                defer { state.wanted = nil }
                return (state.wanted, state.stopping)
            }
            if stopping { break }
            if let wanted { apply(wanted, to: &watching) }
            let timeout = watching.debounce.deadline.map { deadline -> CInt in
                let now = Self.now()
                return deadline <= now ? 0 : CInt(min((deadline - now + 999_999) / 1_000_000, 60_000))
            }
            let ready = dp_inotify_wait(inotify, wake, timeout ?? -1)
            if ready < 0 {
                logger.error("reload_on_change: poll failed: \(String(cString: strerror(errno))); watching stops")
                break
            }
            if ready & 2 != 0 { dp_wake_drain(wake) }
            if ready & 1 != 0 { readEvents(into: &watching, buffer: &buffer) }
            if let changes = watching.debounce.takeIfDue(at: Self.now()) {
                logger.notice("reload_on_change: changed: \(changes.joined(separator: ", ")); reloading")
                onChange(changes)
            }
        }
        close(inotify)
        close(wake)
        let waiters = shared.withLockedValue { state in
            state.exited = true
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Adds the watches `set` needs that are missing, removes those it no longer needs.
    private func apply(_ set: ConfigWatchSet, to watching: inout Watching) {
        for (directory, descriptor) in watching.descriptors where set.directories[directory] == nil {
            // The kernel answers with IN_IGNORED for the descriptor, which matches nothing any more.
            _ = dp_inotify_unwatch(inotify, descriptor)
            watching.descriptors[directory] = nil
            watching.directories[descriptor] = nil
        }
        var failed: [String] = []
        for (directory, names) in set.directories.sorted(by: { $0.key < $1.key })
        where watching.descriptors[directory] == nil {
            let descriptor = dp_inotify_watch_directory(inotify, directory)
            guard descriptor >= 0 else {
                let code = errno
                let limit =
                    code == ENOSPC ? " (the limit of inotify watches, sysctl fs.inotify.max_user_watches)" : ""
                let files = names.sorted().joined(separator: ", ")
                logger.warning(
                    "reload_on_change: cannot watch \(directory): \(String(cString: strerror(code)))\(limit); changes of \(files) there are not seen until a reload watches it again (SIGHUP still reloads)"
                )
                failed.append(directory)
                continue
            }
            watching.descriptors[directory] = descriptor
            watching.directories[descriptor] = directory
        }
        watching.set = set
        let watched = set.directories.count - failed.count
        logger.info(
            "reload_on_change: watching \(set.files.count) file(s) in \(watched) of \(set.directories.count) director\(set.directories.count == 1 ? "y" : "ies")"
        )
    }

    /// Reads every queued event and records the ones that matter.
    private func readEvents(into watching: inout Watching, buffer: inout [UInt8]) {
        while true {
            let count = buffer.withUnsafeMutableBytes { read(inotify, $0.baseAddress, $0.count) }
            guard count > 0 else {
                // EAGAIN: the queue is empty. EINTR: read again. The other error
                // inotify's read has, EINVAL, is a buffer smaller than one event,
                // which 64 KiB never is (an event is at most 16 + NAME_MAX + 1 bytes).
                if count < 0, errno == EINTR { continue }
                return
            }
            let now = Self.now()
            buffer.withUnsafeBufferPointer { raw in
                raw.withMemoryRebound(to: CChar.self) { bytes in
                    var event = dp_inotify_event()
                    var offset = 0
                    while true {
                        offset = dp_inotify_next(bytes.baseAddress, count, offset, &event)
                        guard offset != 0 else { break }
                        let directory = watching.directories[event.wd] ?? ""
                        if event.mask & DP_IN_IGNORED != 0 {
                            // The kernel dropped the watch (its directory is gone): a
                            // later ``watch(_:)`` adds it again if the directory is back.
                            watching.directories[event.wd] = nil
                            if watching.descriptors[directory] == event.wd { watching.descriptors[directory] = nil }
                        }
                        let name = String(cString: event.name)
                        if let change = watching.set.change(inDirectory: directory, name: name, mask: event.mask) {
                            watching.debounce.record(change, at: now)
                        }
                    }
                }
            }
        }
    }

    private static func now() -> UInt64 {
        DispatchTime.now().uptimeNanoseconds
    }
}
