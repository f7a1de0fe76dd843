/// A pass over configuration text, before the TOML parser sees it, that refuses
/// the few malformed inputs on which that parser does not fail cleanly.
///
/// The parser inside TOMLKit (toml++ 3.4) asserts, rather than checks, two
/// things about its input: that a table header's key starts with a key
/// character or a quote, and that a value in an array does not start with `}`.
/// On `[=` or `a = [}` a debug build aborts the process, and an optimised one is
/// left with undefined behaviour. Both were found by fuzzing the loader.
///
/// The pass follows just enough of TOML's structure to find them: comments,
/// the four kinds of string, and the nesting of arrays and inline tables.
/// Anything it does not look for is left to the parser, which reports it.
enum TOMLPreflight {
    /// Where the text goes wrong, 1-based, the column counted in characters.
    struct Problem: Equatable {
        var line: Int
        var column: Int
        var cause: String
    }

    /// The first input the parser would not fail cleanly on, or nil.
    static func problem(in toml: String) -> Problem? {
        var scanner = Scanner(Array(toml.utf8))
        return scanner.run()
    }

    private struct Scanner {
        let bytes: [UInt8]
        var index = 0
        /// The open arrays (`[`) and inline tables (`{`), innermost last.
        var nesting: [UInt8] = []
        /// The index of the current line's first byte.
        var lineStart = 0
        var line = 1

        init(_ bytes: [UInt8]) {
            self.bytes = bytes
            // A byte-order mark is not part of the first line's text.
            if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { index = 3 }
        }

        mutating func run() -> Problem? {
            while index < bytes.count {
                let byte = bytes[index]
                switch byte {
                case UInt8(ascii: "\n"):
                    index += 1
                    line += 1
                    lineStart = index
                case UInt8(ascii: "#"):
                    skipComment()
                case UInt8(ascii: "\""), UInt8(ascii: "'"):
                    skipString()
                case UInt8(ascii: "[") where nesting.isEmpty && isFirstOnLine(index):
                    if let problem = tableHeader() { return problem }
                case UInt8(ascii: "["), UInt8(ascii: "{"):
                    nesting.append(byte)
                    index += 1
                case UInt8(ascii: "]"):
                    if nesting.last == UInt8(ascii: "[") { nesting.removeLast() }
                    index += 1
                case UInt8(ascii: "}"):
                    if nesting.last == UInt8(ascii: "[") {
                        return problem(at: index, "expected a value or ']' in the array, saw '}'")
                    }
                    if nesting.last == UInt8(ascii: "{") { nesting.removeLast() }
                    index += 1
                default:
                    index += 1
                }
            }
            return nil
        }

        /// Checks the header starting at `[` (the cursor), then moves past its closing bracket.
        mutating func tableHeader() -> Problem? {
            index += 1
            let blankAfterBracket = skipBlanks()
            if index < bytes.count, bytes[index] == UInt8(ascii: "[") {
                if blankAfterBracket { return nil }  // `[ [`: the parser reports it
                index += 1
                skipBlanks()
            }
            guard index < bytes.count else { return nil }  // the parser reports the end of the text
            let byte = bytes[index]
            guard
                Self.isBareKey(byte) || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "'")
                    || byte == UInt8(ascii: "]")
            else {
                return problem(at: index, "expected a key (a bare key or a quoted one) in the table header")
            }
            // The key, dotted and quoted parts included, up to the first bracket outside quotes.
            while index < bytes.count, bytes[index] != UInt8(ascii: "]"), bytes[index] != UInt8(ascii: "\n") {
                if bytes[index] == UInt8(ascii: "\"") || bytes[index] == UInt8(ascii: "'") {
                    skipString()
                } else {
                    index += 1
                }
            }
            while index < bytes.count, bytes[index] == UInt8(ascii: "]") { index += 1 }
            return nil
        }

        /// Moves past a comment, up to (not past) the end of its line.
        mutating func skipComment() {
            while index < bytes.count, bytes[index] != UInt8(ascii: "\n") { index += 1 }
        }

        /// Moves past a string starting at the cursor: basic or literal, one line or several.
        mutating func skipString() {
            let quote = bytes[index]
            let escapes = quote == UInt8(ascii: "\"")
            if index + 2 < bytes.count, bytes[index + 1] == quote, bytes[index + 2] == quote {
                index += 3
                while index < bytes.count {
                    if escapes, bytes[index] == UInt8(ascii: "\\") {
                        index += 2
                        continue
                    }
                    if bytes[index] == quote, index + 2 < bytes.count, bytes[index + 1] == quote,
                        bytes[index + 2] == quote
                    {
                        index += 3
                        // Up to two more quotes belong to the string's text.
                        var extra = 0
                        while extra < 2, index < bytes.count, bytes[index] == quote { index += 1; extra += 1 }
                        return
                    }
                    if bytes[index] == UInt8(ascii: "\n") {
                        line += 1
                        lineStart = index + 1
                    }
                    index += 1
                }
                index = min(index, bytes.count)
                return
            }
            index += 1
            while index < bytes.count, bytes[index] != UInt8(ascii: "\n") {
                if escapes, bytes[index] == UInt8(ascii: "\\") {
                    // An escape never takes the line break with it: the parser reports that.
                    index += index + 1 < bytes.count && bytes[index + 1] != UInt8(ascii: "\n") ? 2 : 1
                    continue
                }
                index += 1
                if bytes[index - 1] == quote { return }
            }
        }

        /// Moves past spaces and tabs; whether there were any.
        @discardableResult
        mutating func skipBlanks() -> Bool {
            let start = index
            while index < bytes.count, bytes[index] == UInt8(ascii: " ") || bytes[index] == UInt8(ascii: "\t") {
                index += 1
            }
            return index > start
        }

        /// Whether only spaces and tabs (or the byte-order mark) precede `position` on its line.
        func isFirstOnLine(_ position: Int) -> Bool {
            var cursor = lineStart
            if line == 1, bytes.starts(with: [0xEF, 0xBB, 0xBF]) { cursor = 3 }
            while cursor < position {
                guard bytes[cursor] == UInt8(ascii: " ") || bytes[cursor] == UInt8(ascii: "\t") else { return false }
                cursor += 1
            }
            return true
        }

        func problem(at position: Int, _ cause: String) -> Problem {
            let column = bytes[lineStart..<position].filter { $0 & 0xC0 != 0x80 }.count + 1
            return Problem(line: line, column: column, cause: cause)
        }

        static func isBareKey(_ byte: UInt8) -> Bool {
            (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
                || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
                || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: "_")
                || byte == UInt8(ascii: "-")
        }
    }
}
