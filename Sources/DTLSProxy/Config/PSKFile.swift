/// The pre-shared keys of one listener, read from its `psk_file`.
///
/// The file holds one `identity:hexkey` line per client, for example
///
/// ```
/// # sensors in the lab
/// dev1:00112233445566778899aabbccddeeff
/// urn:dev:2:0123456789ABCDEF0123456789ABCDEF
/// ```
///
/// Blank lines and lines starting with `#` are ignored; spaces around the identity
/// and the key are trimmed. The key is everything after the last `:`, so identities
/// may contain colons. Keys are 1 to 256 bytes written as an even number of hex digits.
///
/// The description never shows the keys, so a table can be logged safely.
public struct PSKTable: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible {
    /// The key bytes of each identity.
    public var entries: [String: [UInt8]]

    /// The longest key accepted, in bytes.
    public static let maximumKeyLength = 256
    /// The longest identity accepted, in bytes of UTF-8 (OpenSSL's `PSK_MAX_IDENTITY_LEN`).
    public static let maximumIdentityLength = 256

    public init(entries: [String: [UInt8]] = [:]) {
        self.entries = entries
    }

    /// The key for `identity`, or nil if the identity is unknown.
    public subscript(identity: String) -> [UInt8]? { entries[identity] }

    /// The number of identities.
    public var count: Int { entries.count }

    /// The identities in ascending order.
    public var identities: [String] { entries.keys.sorted() }

    /// `PSKTable(2 identities)`: the keys are never shown.
    public var description: String {
        "PSKTable(\(entries.count) \(entries.count == 1 ? "identity" : "identities"))"
    }

    public var debugDescription: String { description }

    /// Parses the text of a PSK file.
    ///
    /// - Parameters:
    ///   - contents: the whole file.
    ///   - path: the file's path, used in error messages only.
    /// - Throws: ``PSKFileError`` naming the path and, for a bad line, its number.
    public static func parse(contents: String, path: String) throws(PSKFileError) -> PSKTable {
        var entries: [String: [UInt8]] = [:]
        // Split on the byte, not the Character: "\r\n" is a single Character.
        let lines = contents.utf8.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        for (offset, rawBytes) in lines.enumerated() {
            let rawLine = Substring(rawBytes)
            let lineNumber = offset + 1
            func failure(_ reason: String) -> PSKFileError {
                PSKFileError(path: path, line: lineNumber, reason: reason)
            }
            let line = rawLine.trimmingSpaces
            if line.isEmpty || line.hasPrefix("#") { continue }
            guard let colon = line.lastIndex(of: ":") else {
                throw failure("expected identity:hexkey")
            }
            let identity = String(line[..<colon].trimmingSpaces)
            let hex = line[line.index(after: colon)...].trimmingSpaces
            guard !identity.isEmpty else { throw failure("empty identity") }
            guard identity.utf8.count <= maximumIdentityLength else {
                throw failure("identity longer than \(maximumIdentityLength) bytes")
            }
            guard !identity.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
                throw failure("identity contains a control character")
            }
            let key = try decodeHex(hex, failure: failure)
            guard entries[identity] == nil else { throw failure("duplicate identity \"\(identity)\"") }
            entries[identity] = key
        }
        guard !entries.isEmpty else {
            throw PSKFileError(path: path, line: nil, reason: "no identities (expected lines \"identity:hexkey\")")
        }
        return PSKTable(entries: entries)
    }

    /// Reads and parses the PSK file at `path` (file permissions are not checked here).
    ///
    /// - Throws: ``PSKFileError``: `file not found: PATH`, `cannot read PATH: REASON`,
    ///   or a parse error as from ``parse(contents:path:)``.
    public static func load(path: String) throws(PSKFileError) -> PSKTable {
        let bytes: [UInt8]
        switch ConfigFileAccess.read(path) {
        case .success(let read): bytes = read
        case .failure(let failure): throw PSKFileError(cause: failure.cause(path: path))
        }
        let text = String(decoding: bytes, as: UTF8.self)
        guard text.utf8.elementsEqual(bytes) else {
            throw PSKFileError(path: path, line: nil, reason: "not valid UTF-8 text")
        }
        return try parse(contents: text, path: path)
    }

    private static func decodeHex(
        _ hex: Substring, failure: (String) -> PSKFileError
    ) throws(PSKFileError) -> [UInt8] {
        guard !hex.isEmpty else { throw failure("empty key (a key is at least 1 byte)") }
        var nibbles: [UInt8] = []
        nibbles.reserveCapacity(hex.utf8.count)
        for character in hex {
            guard let value = character.hexDigitValue, character.isASCII else {
                throw failure("invalid hex digit \"\(character)\" in key")
            }
            nibbles.append(UInt8(value))
        }
        guard nibbles.count % 2 == 0 else {
            throw failure("odd number of hex digits in key (\(nibbles.count))")
        }
        guard nibbles.count / 2 <= maximumKeyLength else {
            throw failure("key is \(nibbles.count / 2) bytes; the most is \(maximumKeyLength)")
        }
        return stride(from: 0, to: nibbles.count, by: 2).map { nibbles[$0] << 4 | nibbles[$0 + 1] }
    }
}

/// A PSK file that cannot be used. ``description`` is the cause the loader reports,
/// e.g. `/etc/dtls-proxy/psk.txt line 3: duplicate identity "dev1"`.
public struct PSKFileError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The whole message, path and line number included.
    public var description: String

    /// A problem with the file's contents, at `line` (1-based) when there is one.
    public init(path: String, line: Int?, reason: String) {
        description = line.map { "\(path) line \($0): \(reason)" } ?? "\(path): \(reason)"
    }

    /// A problem reading the file, already worded (e.g. `file not found: /etc/psk.txt`).
    public init(cause: String) {
        description = cause
    }
}

extension Substring {
    /// The text without leading and trailing spaces, tabs and carriage returns.
    fileprivate var trimmingSpaces: Substring {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\r" }
        guard let first = firstIndex(where: { !isSpace($0) }) else { return self[endIndex...] }
        let last = lastIndex(where: { !isSpace($0) })!
        return self[first...last]
    }
}
