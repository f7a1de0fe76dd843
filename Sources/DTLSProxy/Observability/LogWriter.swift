import Atomics
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Writes log lines to standard error from one thread of its own, through a
/// bounded queue, so that the log can never stop the service.
///
/// A log line used to be written from the event loop that logged it. On a pipe
/// nobody reads (a stalled journald, a shell's `| less` left alone) the write
/// blocked the loop, and all traffic with it; on `/dev/full` or a closed pipe
/// `FileHandle.write` trapped and the daemon died. Here ``enqueue(_:)`` only
/// appends to the queue and never waits: when the queue is full the line is
/// dropped and counted. The writer thread writes with `write(2)`; a line the
/// kernel refuses (ENOSPC, EPIPE, EIO, a closed descriptor) is dropped and
/// counted too. When a write succeeds after drops, a line says how many were
/// lost, so a reader of the log knows there is a gap.
///
/// SIGPIPE must be ignored (``ignoreBrokenPipe()``), or a closed pipe kills the
/// process before `write` can return EPIPE.
public final class LogWriter: @unchecked Sendable {
    // @unchecked: `queue`, `notYetReported`, `busy` and `formatNotice` are touched only with `condition` held.

    /// The daemon's writer, on standard error.
    public static let standardError = LogWriter(descriptor: 2, capacity: 4096)

    /// Lines dropped since start: queue full or the write refused.
    public var droppedLines: Int { dropped.load(ordering: .relaxed) }

    private let descriptor: Int32
    private let capacity: Int
    private let condition = NSCondition()
    private var queue: [String] = []
    private var notYetReported = 0
    private var busy = false
    private let dropped = ManagedAtomic<Int>(0)
    /// How the writer's own "lines dropped" notice is formatted, as the handlers format theirs.
    private var formatNotice: @Sendable (String) -> String = { "log: \($0)\n" }

    init(descriptor: Int32, capacity: Int) {
        self.descriptor = descriptor
        self.capacity = capacity
        let thread = Thread { [unowned self] in self.run() }
        thread.name = "dtls-proxyd log writer"
        thread.start()
    }

    /// Has writes to a closed pipe fail with EPIPE instead of killing the process.
    public static func ignoreBrokenPipe() {
        signal(SIGPIPE, SIG_IGN)
    }

    /// Formats the writer's own notices like the other lines (journal priority or time and level).
    func useNoticeFormat(_ format: @escaping @Sendable (String) -> String) {
        condition.lock()
        formatNotice = format
        condition.unlock()
    }

    /// Queues one line (with its newline); drops and counts it when the queue is full. Never blocks on the log.
    public func enqueue(_ line: String) {
        condition.lock()
        guard queue.count < capacity else {
            notYetReported += 1
            condition.unlock()
            dropped.wrappingIncrement(ordering: .relaxed)
            return
        }
        queue.append(line)
        condition.signal()
        condition.unlock()
    }

    /// Waits until every queued line has been written (or dropped), at most `timeout`; before the process exits.
    public func flush(timeout: TimeInterval = 2) {
        let deadline = Date(timeIntervalSinceNow: timeout)
        condition.lock()
        while !queue.isEmpty || busy {
            guard condition.wait(until: deadline) else { break }
        }
        condition.unlock()
    }

    private func run() {
        while true {
            condition.lock()
            while queue.isEmpty { condition.wait() }
            let batch = queue
            queue.removeAll(keepingCapacity: true)
            let lost = notYetReported
            notYetReported = 0
            let format = formatNotice
            busy = true
            condition.unlock()

            // The notice is not a log line: if it cannot be written, the lines it speaks of stay owed.
            var owed = 0
            if lost > 0,
                !writeAll(Array(format("\(lost) lines dropped (the log could not keep up or was not writable)").utf8))
            {
                owed = lost
            }
            let failed = write(batch)
            if failed > 0 { dropped.wrappingIncrement(by: failed, ordering: .relaxed) }

            condition.lock()
            notYetReported += owed + failed
            busy = false
            condition.broadcast()
            condition.unlock()
        }
    }

    /// Writes `lines` in as few system calls as possible; returns how many could not be written.
    private func write(_ lines: [String]) -> Int {
        var failed = 0
        var start = 0
        // About 64 KiB per write: one pipe buffer.
        while start < lines.count {
            var end = start
            var bytes: [UInt8] = []
            while end < lines.count, bytes.count < 65_536 {
                bytes.append(contentsOf: lines[end].utf8)
                end += 1
            }
            if !writeAll(bytes) { failed += end - start }
            start = end
        }
        return failed
    }

    /// One chunk, through partial writes and interruptions; false when the kernel refused it.
    private func writeAll(_ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
            if written > 0 {
                offset += written
                continue
            }
            switch errno {
            case EINTR:
                continue
            case EAGAIN:
                // A non-blocking descriptor that is full: wait for room on this thread, not on an event loop.
                var entry = pollfd(fd: descriptor, events: Int16(POLLOUT), revents: 0)
                _ = poll(&entry, 1, 100)
            default:
                return false
            }
        }
        return true
    }
}
