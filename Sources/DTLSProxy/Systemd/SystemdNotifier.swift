import CSystemd
import Foundation

/// Tells systemd about the daemon's state with sd_notify(3).
///
/// Sends nothing when `NOTIFY_SOCKET` is unset (sd_notify itself checks),
/// so the daemon behaves the same outside systemd.
public struct SystemdNotifier: Sendable {
    public init() {}

    /// True when a notification socket was handed to us.
    public var isActive: Bool {
        ProcessInfo.processInfo.environment["NOTIFY_SOCKET"] != nil
    }

    /// Sends `state` (newline-separated `KEY=VALUE` assignments); false if it could not be sent.
    @discardableResult
    public func notify(_ state: String) -> Bool {
        guard isActive else { return false }
        return sd_notify(0, state) > 0
    }

    public func ready(status: String) { notify("READY=1\nSTATUS=\(status)") }
    public func stopping() { notify("STOPPING=1\nSTATUS=stopping") }
    public func status(_ text: String) { notify("STATUS=\(text)") }
}
