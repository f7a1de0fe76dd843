import COpenSSL
import Foundation

/// Runs DTLS handshakes, `concurrency` at a time, from one thread: each slot
/// is a fresh socket (a new source port, so every handshake is a full one with
/// a cookie exchange), driven by poll and OpenSSL's retransmission timer.
struct HandshakeDriver: Sendable {
    let context: ClientContext
    let target: Endpoint
    /// A handshake not finished within this many ns is abandoned and counted as failed.
    var perHandshakeTimeout: UInt64 = 3_000_000_000
    /// When set, every handshake offers this session (`SSL_set_session`) and
    /// only those the server really resumed (`SSL_session_reused`) count as
    /// completed; the others are counted in ``Outcome/notResumed``.
    var resume: ResumableSession?

    struct Outcome: Sendable {
        var completed = 0
        var failed = 0
        /// Handshakes that offered a session but ended as full ones (resumption refused).
        var notResumed = 0
        /// For resumption runs: whether the first full handshake brought a session ticket.
        var ticketIssued: Bool?
        var seconds = 0.0
        var cipher = "none"
        var rate: Double { seconds > 0 ? Double(completed) / seconds : 0 }
    }

    /// Completes handshakes until `total` are done or `seconds` pass; `finished`
    /// decides what happens to each established client (keep, close, drop).
    func run(concurrency: Int, total: Int, seconds: Double, finished: (DTLSClient) -> Void) -> Outcome {
        var outcome = Outcome()
        let start = monotonicNanoseconds()
        let deadline = start + UInt64(seconds * 1e9)
        var slots: [DTLSClient?] = Array(repeating: nil, count: concurrency)
        var started = 0
        var descriptors = [pollfd](repeating: pollfd(), count: concurrency)

        func refill(_ index: Int) {
            slots[index] = nil
            guard started < total, monotonicNanoseconds() < deadline else { return }
            guard let client = try? DTLSClient(context: context, target: target, resuming: resume) else {
                outcome.failed += 1
                return
            }
            started += 1
            slots[index] = client
            step(index)
        }

        func step(_ index: Int) {
            guard let client = slots[index] else { return }
            switch client.handshake() {
            case .done:
                if resume != nil, !client.resumed {
                    outcome.notResumed += 1
                    client.close()
                } else {
                    outcome.completed += 1
                    if outcome.cipher == "none" { outcome.cipher = client.cipherName }
                    finished(client)
                }
                refill(index)
            case .failed:
                outcome.failed += 1
                client.close(quietly: true)
                refill(index)
            case .pending:
                break
            }
        }

        for index in 0..<concurrency { refill(index) }
        while slots.contains(where: { $0 != nil }) {
            for index in 0..<concurrency {
                descriptors[index] = pollfd(fd: slots[index]?.fd ?? -1, events: Int16(POLLIN), revents: 0)
            }
            _ = poll(&descriptors, nfds_t(concurrency), 5)
            let now = monotonicNanoseconds()
            for index in 0..<concurrency {
                guard let client = slots[index] else { continue }
                if descriptors[index].revents != 0 {
                    step(index)
                } else if now - client.started > perHandshakeTimeout || now > deadline + perHandshakeTimeout {
                    outcome.failed += 1
                    client.close(quietly: true)
                    refill(index)
                } else {
                    // Only the timer: OpenSSL retransmits its flight itself.
                    client.handleTimeoutIfDue()
                }
            }
        }
        outcome.seconds = Double(monotonicNanoseconds() - start) / 1e9
        return outcome
    }

    /// Full handshakes per second with `concurrency` in flight, spread over
    /// `threads` client threads: one OpenSSL client spends about twice the
    /// server's CPU on a handshake, so one thread alone would measure itself.
    ///
    /// With `resuming`, each thread first completes one full handshake (not
    /// counted), keeps its `SSL_SESSION` and then resumes it on every fresh
    /// socket: the rate counts only handshakes the server really resumed.
    func rate(concurrency: Int, seconds: Double, threads: Int, resuming: Bool = false) -> Outcome {
        let threads = max(1, min(threads, concurrency))
        let outcomes = OutcomeBox()
        let group = DispatchGroup()
        for index in 0..<threads {
            let share = concurrency / threads + (index < concurrency % threads ? 1 : 0)
            let base = self
            group.enter()
            Thread {
                defer { group.leave() }
                var driver = base
                if resuming {
                    var first: ResumableSession?
                    let opened = driver.run(concurrency: 1, total: 1, seconds: 5) { client in
                        first = ResumableSession(client)
                        client.close()
                    }
                    guard let first else {
                        outcomes.append(Outcome(failed: max(1, opened.failed)))
                        return
                    }
                    driver.resume = first
                }
                var outcome = driver.run(concurrency: share, total: Int.max, seconds: seconds) { $0.close() }
                outcome.ticketIssued = driver.resume?.hasTicket
                outcomes.append(outcome)
            }.start()
        }
        group.wait()
        let all = outcomes.values
        var total = Outcome()
        total.completed = all.reduce(0) { $0 + $1.completed }
        total.failed = all.reduce(0) { $0 + $1.failed }
        total.notResumed = all.reduce(0) { $0 + $1.notResumed }
        total.seconds = all.map(\.seconds).max() ?? 0
        total.cipher = all.first?.cipher ?? "none"
        total.ticketIssued = all.compactMap(\.ticketIssued).first
        return total
    }

    /// Establishes up to `count` sessions within `seconds` and returns them open.
    func establish(count: Int, concurrency: Int, seconds: Double) -> (clients: [DTLSClient], outcome: Outcome) {
        var clients: [DTLSClient] = []
        let outcome = run(concurrency: min(concurrency, count), total: count, seconds: seconds) { clients.append($0) }
        return (clients, outcome)
    }

    /// Establishes up to `count` sessions within `seconds`, 64 in flight, and
    /// leaves them idle: with `echo`, each first carries one echo (the daemon
    /// frees an idle session's record buffers only after application data).
    /// Returns their sockets, still open, without a close_notify sent (see
    /// ``DTLSClient/detachSocket()``); the caller closes them when done.
    func openIdle(count: Int, echo: Bool, seconds: Double) -> (sockets: [Int32], outcome: Outcome) {
        var sockets: [Int32] = []
        let outcome = run(concurrency: 64, total: count, seconds: seconds) { client in
            if echo { client.echoOnce() }
            sockets.append(client.detachSocket())
        }
        return (sockets, outcome)
    }
}

/// The `SSL_SESSION` of one full handshake, kept to resume it on fresh sockets
/// (RFC 5077 ticket, or a session ID if the server issued no ticket).
///
/// `@unchecked Sendable`: set once and only read; each client thread keeps its
/// own, and `SSL_set_session` takes its own reference.
final class ResumableSession: @unchecked Sendable {
    let raw: OpaquePointer
    /// Whether the server issued a session ticket (`SSL_SESSION_has_ticket`).
    let hasTicket: Bool

    init?(_ client: DTLSClient) {
        guard let session = SSL_get1_session(client.ssl) else { return nil }
        raw = session
        hasTicket = SSL_SESSION_has_ticket(session) == 1
    }

    deinit {
        SSL_SESSION_free(raw)
    }
}

/// The outcomes of the client threads of one ``HandshakeDriver/rate(concurrency:seconds:threads:)``.
private final class OutcomeBox: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: [HandshakeDriver.Outcome] = []

    func append(_ outcome: HandshakeDriver.Outcome) {
        lock.lock()
        defer { lock.unlock() }
        stored.append(outcome)
    }

    var values: [HandshakeDriver.Outcome] {
        lock.lock()
        defer { lock.unlock() }
        return stored
    }
}
