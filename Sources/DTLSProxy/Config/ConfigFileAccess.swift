#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Why a file named by the configuration could not be read: an `errno` value.
struct FileReadFailure: Error, Equatable, Sendable {
    var errorNumber: Int32

    /// The system's text for the error, e.g. `No such file or directory`.
    var reason: String { String(cString: strerror(errorNumber)) }

    /// The cause for a file named by a key: `file not found: /abs/path`
    /// or `cannot read /abs/path: Permission denied`.
    func cause(path: String) -> String {
        errorNumber == ENOENT ? "file not found: \(path)" : "cannot read \(path): \(reason)"
    }
}

/// The few file-system operations the loader needs, in POSIX terms so that every
/// failure keeps its `errno`.
enum ConfigFileAccess {
    /// Reads at most `limit` bytes from the start of a regular file.
    static func read(_ path: String, limit: Int = 16 << 20) -> Result<[UInt8], FileReadFailure> {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return .failure(FileReadFailure(errorNumber: errno)) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { return .failure(FileReadFailure(errorNumber: errno)) }
        if (info.st_mode & S_IFMT) == S_IFDIR { return .failure(FileReadFailure(errorNumber: EISDIR)) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while bytes.count < limit {
            let wanted = min(chunk.count, limit - bytes.count)
            let got = chunk.withUnsafeMutableBytes { Glue.read(fd, $0.baseAddress, wanted) }
            if got < 0 {
                if errno == EINTR { continue }
                return .failure(FileReadFailure(errorNumber: errno))
            }
            if got == 0 { break }
            bytes.append(contentsOf: chunk[0..<got])
        }
        return .success(bytes)
    }

    /// Checks that `path` is a file this process can open for reading, without reading it.
    static func checkReadable(_ path: String) -> FileReadFailure? {
        switch read(path, limit: 0) {
        case .success: nil
        case .failure(let failure): failure
        }
    }

    /// The current working directory, or `/` if it cannot be determined.
    static func currentDirectory() -> String {
        guard let buffer = getcwd(nil, 0) else { return "/" }
        defer { free(buffer) }
        return String(cString: buffer)
    }

    /// `path` made absolute against `base` (an absolute folder), with `.` and empty
    /// components removed. `..` is kept as written: it means what the file system says.
    static func absolute(_ path: String, relativeTo base: String) -> String {
        let joined = path.hasPrefix("/") ? path : base + "/" + path
        let parts = joined.split(separator: "/", omittingEmptySubsequences: true).filter { $0 != "." }
        return "/" + parts.joined(separator: "/")
    }

    /// The folder holding the file at the absolute path `path`.
    static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/"), slash != path.startIndex else { return "/" }
        return String(path[..<slash])
    }
}

/// The C library's `read`, named so that it does not collide with ``ConfigFileAccess/read(_:limit:)``.
private enum Glue {
    static func read(_ fd: Int32, _ buffer: UnsafeMutableRawPointer?, _ count: Int) -> Int {
        #if canImport(Glibc)
            Glibc.read(fd, buffer, count)
        #elseif canImport(Musl)
            Musl.read(fd, buffer, count)
        #else
            Darwin.read(fd, buffer, count)
        #endif
    }
}
