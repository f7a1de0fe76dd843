import CPlatform
import Foundation

/// What `reload_on_change` watches: directories, and in each the names whose
/// change means the configuration should be read again.
///
/// Directories rather than files, because a file is rarely changed in place:
/// an editor or `install` writes a new file and renames it over the old one
/// (a watch on the old inode would see nothing), and Kubernetes updates a
/// Secret or ConfigMap volume by pointing its `..data` symbolic link at a new
/// timestamped folder (every file of the volume is a link through `..data`).
/// Both show up as events in the folder that holds the name. A named file that
/// is itself a symbolic link is also watched where it finally points, so that
/// an in-place edit of the target is seen too; in a Kubernetes volume that is
/// the timestamped folder, which the next update removes (reported as a change,
/// and the next set no longer has it).
struct ConfigWatchSet: Equatable, Sendable {
    /// The names of interest in each directory, by absolute directory path.
    private(set) var directories: [String: Set<String>] = [:]

    /// The link Kubernetes swaps atomically in a Secret or ConfigMap volume.
    static let kubernetesDataLink = "..data"

    /// The set for `files` (absolute paths). `resolve` gives the final target
    /// of a path that goes through a symbolic link, or nil when it is no link
    /// (or cannot be resolved); ``linkTarget(_:)`` asks the file system.
    init(files: [String], resolve: (String) -> String? = ConfigWatchSet.linkTarget) {
        for file in files {
            add(file)
            if let target = resolve(file), target != file {
                add(target)
            }
        }
    }

    /// Every watched name, as `directory/name`, sorted (for logs and tests).
    var files: [String] {
        directories.flatMap { directory, names in names.map { Self.join(directory, $0) } }.sorted()
    }

    /// A change that calls for a reload.
    enum Change: Equatable, Sendable {
        /// A watched name (or `..data`) in a watched directory was created,
        /// replaced, written, removed or had its mode or owner changed.
        case file(String)
        /// A watched directory itself was removed, moved or unmounted.
        case directoryGone(String)
        /// The kernel's event queue overflowed: events were lost, so anything may have changed.
        case overflow

        /// How the change is named in the log line.
        var description: String {
            switch self {
            case .file(let path): path
            case .directoryGone(let directory): "\(directory) (directory removed)"
            case .overflow: "(inotify queue overflow: events lost)"
            }
        }
    }

    /// What an inotify event in the watched `directory` about `name` ("" when
    /// it is about the directory itself) with the bits `mask` means.
    ///
    /// Only the events the watch asks for arrive (see `dp_inotify_watch_directory`),
    /// so the name decides: one of the directory's watched names, or the
    /// Kubernetes `..data` link. `IN_IGNORED` alone (the watch is gone, after
    /// `IN_DELETE_SELF` or our own removal of it) is no change.
    func change(inDirectory directory: String, name: String, mask: UInt32) -> Change? {
        if mask & DP_IN_Q_OVERFLOW != 0 { return .overflow }
        if mask & (DP_IN_DELETE_SELF | DP_IN_MOVE_SELF | DP_IN_UNMOUNT) != 0 {
            return directories[directory] == nil ? nil : .directoryGone(directory)
        }
        guard !name.isEmpty, let names = directories[directory] else { return nil }
        if names.contains(name) || name == Self.kubernetesDataLink {
            return .file(Self.join(directory, name))
        }
        return nil
    }

    private mutating func add(_ path: String) {
        let directory = ConfigFileAccess.directory(of: path)
        let name = String(path[path.index(after: path.lastIndex(of: "/") ?? path.startIndex)...])
        guard !name.isEmpty else { return }
        directories[directory, default: []].insert(name)
    }

    private static func join(_ directory: String, _ name: String) -> String {
        directory == "/" ? "/" + name : directory + "/" + name
    }

    /// The path with every symbolic link resolved (`realpath`), or nil when it
    /// does not exist or goes through no link.
    static func linkTarget(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        let target = String(cString: resolved)
        return target == path ? nil : target
    }
}

/// One reload for a burst of changes: `reload_on_change` waits until no event
/// has arrived for ``quiet`` (an update writes several files, a Kubernetes swap
/// is several events), but no longer than ``longest`` after the first, so that
/// a file rewritten without pause still gets reloaded.
///
/// Times are monotonic nanoseconds, given by the caller, so that the rule is
/// tested without a clock.
struct ReloadDebounce: Sendable {
    var quiet: UInt64 = 500_000_000
    var longest: UInt64 = 5_000_000_000
    /// At most this many changes are named in the log line; the rest are counted.
    static let namedLimit = 8

    private var first: UInt64? = nil
    private var last: UInt64 = 0
    private var changes: [String] = []
    private var unnamed = 0

    /// Notes a change that happened at `now`.
    mutating func record(_ change: ConfigWatchSet.Change, at now: UInt64) {
        if first == nil { first = now }
        last = now
        let text = change.description
        guard !changes.contains(text) else { return }
        if changes.count < Self.namedLimit { changes.append(text) } else { unnamed += 1 }
    }

    /// When the reload is due; nil while nothing has changed.
    var deadline: UInt64? {
        guard let first else { return nil }
        return min(last + quiet, first + longest)
    }

    /// The changes to reload for, when the reload is due at `now` (and starts
    /// over), else nil.
    mutating func takeIfDue(at now: UInt64) -> [String]? {
        guard let deadline, now >= deadline else { return nil }
        var named = changes
        if unnamed > 0 { named.append("\(unnamed) more") }
        self = ReloadDebounce(quiet: quiet, longest: longest)
        return named
    }

    init(quiet: UInt64 = 500_000_000, longest: UInt64 = 5_000_000_000) {
        self.quiet = quiet
        self.longest = longest
    }
}
