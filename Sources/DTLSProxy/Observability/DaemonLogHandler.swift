import Foundation
import Logging

/// Formats log lines, one event a line, for the ``LogWriter`` that writes them to stderr.
///
/// Under systemd (`JOURNAL_STREAM` set) each line starts with its syslog
/// priority, `<6>` for info, and carries no timestamp: the journal adds its
/// own and keeps the level. Elsewhere lines start with an ISO 8601 UTC time.
///
/// The level comes from a shared ``LogLevelControl`` so that a reload changes
/// it for every logger at once. A level set on one `Logger` acts as a floor
/// for that logger only: it logs at the higher of the two.
public struct DaemonLogHandler: LogHandler {
    private let control: LogLevelControl
    private var floor: Logger.Level = .trace
    public var metadata: Logger.Metadata = [:]
    private let journal: Bool

    private let writer: LogWriter

    public init(
        control: LogLevelControl, journal: Bool = ProcessInfo.processInfo.environment["JOURNAL_STREAM"] != nil,
        writer: LogWriter = .standardError
    ) {
        self.control = control
        self.journal = journal
        self.writer = writer
        writer.useNoticeFormat { Self.prefix(.warning, journal: journal) + "log: " + $0 + "\n" }
    }

    /// A handler with its own fixed level (tests, tools).
    public init(level: Logger.Level, journal: Bool = ProcessInfo.processInfo.environment["JOURNAL_STREAM"] != nil) {
        self.init(control: LogLevelControl(level), journal: journal)
    }

    public var logLevel: Logger.Level {
        get { max(control.level, floor) }
        set { floor = newValue }
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var line = Self.prefix(event.level, journal: journal) + event.message.description
        let merged = metadata.merging(event.metadata ?? [:]) { $1 }
        if !merged.isEmpty {
            line += merged.sorted { $0.key < $1.key }.map { " \($0.key)=\($0.value)" }.joined()
        }
        line += "\n"
        // Never written here: an event loop must not wait for the log (see LogWriter).
        writer.enqueue(line)
    }

    /// `<6>` under the journal, else the time and the level.
    static func prefix(_ level: Logger.Level, journal: Bool) -> String {
        journal ? "<\(syslogPriority(level))>" : "\(timestamp()) \(level) "
    }

    /// RFC 5424 severities.
    static func syslogPriority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: return 7
        case .info: return 6
        case .notice: return 5
        case .warning: return 4
        case .error: return 3
        case .critical: return 2
        }
    }

    private static func timestamp() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var seconds = now.tv_sec
        var parts = tm()
        gmtime_r(&seconds, &parts)
        return String(
            format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
            parts.tm_year + 1900, parts.tm_mon + 1, parts.tm_mday,
            parts.tm_hour, parts.tm_min, parts.tm_sec, Int(now.tv_nsec / 1_000_000))
    }
}

extension LogLevelSetting {
    /// The swift-log level for this setting.
    public var loggerLevel: Logger.Level {
        switch self {
        case .trace: return .trace
        case .debug: return .debug
        case .info: return .info
        case .notice: return .notice
        case .warning: return .warning
        case .error: return .error
        }
    }
}
