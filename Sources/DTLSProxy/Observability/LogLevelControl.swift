import Atomics
import Logging

/// The daemon's one changeable log level, shared by every logger.
///
/// swift-log copies a handler into each `Logger`, so a level stored in the
/// handler could not change on reload; every ``DaemonLogHandler`` reads this
/// atomic instead. One relaxed load per log call is all it costs.
public final class LogLevelControl: Sendable {
    private let raw: ManagedAtomic<UInt8>

    public init(_ level: Logger.Level) {
        raw = ManagedAtomic(Self.code(level))
    }

    /// The level in force now.
    public var level: Logger.Level {
        get { Self.levels[Int(raw.load(ordering: .relaxed))] }
        set { raw.store(Self.code(newValue), ordering: .relaxed) }
    }

    private static let levels = Logger.Level.allCases

    private static func code(_ level: Logger.Level) -> UInt8 {
        UInt8(levels.firstIndex(of: level)!)
    }
}
