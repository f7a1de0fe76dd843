import NIOConcurrencyHelpers

/// The requests to stop the daemon, counted: SIGTERM and SIGINT, and the
/// service group's graceful shutdown.
///
/// The first starts the stop (the drain, when `drain_timeout` is set), the
/// second cuts the drain short. A count rather than a stream, so that the
/// service can wait for "the second request" in one child task while the
/// drain timer runs in another; waiting is cancellable, and a cancelled wait
/// returns as if the request had come (a cancelled service stops).
final class StopRequests: Sendable {
    private struct State {
        var count = 0
        var nextID = 0
        var waiters: [Int: (target: Int, continuation: CheckedContinuation<Void, Never>)] = [:]
    }

    private let state = NIOLockedValueBox(State())

    init() {}

    /// How many requests have come.
    var count: Int { state.withLockedValue { $0.count } }

    /// Counts one request and wakes whoever waits for this many.
    func request() {
        let ready = state.withLockedValue { state -> [CheckedContinuation<Void, Never>] in
            state.count += 1
            let due = state.waiters.filter { $0.value.target <= state.count }
            for id in due.keys { state.waiters[id] = nil }
            return due.values.map(\.continuation)
        }
        for continuation in ready { continuation.resume() }
    }

    /// Returns once `target` requests have come, or when the task is cancelled.
    func wait(for target: Int) async {
        let id = state.withLockedValue { state -> Int in
            defer { state.nextID += 1 }
            return state.nextID
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLockedValue { state -> Bool in
                    // Cancelled before the continuation existed: the handler found nothing to resume.
                    if state.count >= target || Task.isCancelled { return true }
                    state.waiters[id] = (target, continuation)
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            let waiter = state.withLockedValue { $0.waiters.removeValue(forKey: id) }
            waiter?.continuation.resume()
        }
    }
}
