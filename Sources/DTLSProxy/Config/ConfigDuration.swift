/// A length of time from the configuration file, such as `"250ms"`, `"30s"`, `"5m"`, `"1h"`,
/// `"1m30s"` or `"1.5s"`, stored exactly in nanoseconds.
///
/// The accepted units are `us` (or `µs`), `ms`, `s`, `m` and `h`. A value is one or more
/// `<number><unit>` parts, units from largest to smallest and each at most once; a number
/// may have a decimal fraction as long as the result is a whole number of nanoseconds.
/// Bare numbers (`"30"`), signs and spaces are rejected. ``description`` renders the
/// compact form back (`90s` becomes `"1m30s"`), which always parses to the same value.
public struct ConfigDuration: Sendable, Equatable, Hashable, Comparable, CustomStringConvertible {
    /// The length in nanoseconds.
    public var nanoseconds: Int64

    /// A duration of exactly `nanoseconds` nanoseconds.
    public init(nanoseconds: Int64) {
        self.nanoseconds = nanoseconds
    }

    /// No time at all.
    public static let zero = ConfigDuration(nanoseconds: 0)

    /// `value` microseconds (saturating at the largest representable duration).
    public static func microseconds<T: BinaryInteger>(_ value: T) -> ConfigDuration {
        scaled(value, by: Unit.microsecond.nanoseconds)
    }

    /// `value` milliseconds (saturating at the largest representable duration).
    public static func milliseconds<T: BinaryInteger>(_ value: T) -> ConfigDuration {
        scaled(value, by: Unit.millisecond.nanoseconds)
    }

    /// `value` seconds (saturating at the largest representable duration).
    public static func seconds<T: BinaryInteger>(_ value: T) -> ConfigDuration {
        scaled(value, by: Unit.second.nanoseconds)
    }

    /// `value` minutes (saturating at the largest representable duration).
    public static func minutes<T: BinaryInteger>(_ value: T) -> ConfigDuration {
        scaled(value, by: Unit.minute.nanoseconds)
    }

    /// `value` hours (saturating at the largest representable duration).
    public static func hours<T: BinaryInteger>(_ value: T) -> ConfigDuration {
        scaled(value, by: Unit.hour.nanoseconds)
    }

    /// The same length as a standard library `Duration`.
    public var duration: Duration { .nanoseconds(nanoseconds) }

    /// The length in seconds, as a floating-point number (for APIs that take one).
    public var timeInterval: Double { Double(nanoseconds) / 1e9 }

    public static func < (lhs: ConfigDuration, rhs: ConfigDuration) -> Bool {
        lhs.nanoseconds < rhs.nanoseconds
    }

    /// Parses a duration as written in the configuration file.
    ///
    /// - Parameters:
    ///   - text: for example `"250ms"`, `"30s"`, `"1m30s"`, `"1.5s"`.
    ///   - allowZero: when false, a duration of zero (`"0s"`) is rejected.
    /// - Throws: ``DurationParseError`` saying what is wrong with `text`.
    public init(parsing text: String, allowZero: Bool = true) throws(DurationParseError) {
        let chars = Array(text.unicodeScalars)
        guard !chars.isEmpty else { throw .empty }
        if chars[0] == "-" { throw .negative }
        var total: Int64 = 0
        var position = 0
        var previousUnit: Unit? = nil
        while position < chars.count {
            // The number: digits, optionally followed by "." and more digits.
            let numberStart = position
            while position < chars.count, chars[position].isDigit { position += 1 }
            let integerDigits = chars[numberStart..<position]
            var fractionDigits = chars[position..<position]
            if position < chars.count, chars[position] == "." {
                position += 1
                let fractionStart = position
                while position < chars.count, chars[position].isDigit { position += 1 }
                fractionDigits = chars[fractionStart..<position]
            }
            let number = String(String.UnicodeScalarView(chars[numberStart..<position]))
            // The unit: every letter up to the next digit or dot.
            let unitStart = position
            while position < chars.count, !chars[position].isDigit, chars[position] != "." { position += 1 }
            let unitText = String(String.UnicodeScalarView(chars[unitStart..<position]))
            if number.isEmpty {
                if let bad = unitText.unicodeScalars.first(where: { !$0.properties.isAlphabetic }) {
                    throw .unexpectedCharacter(Character(bad))
                }
                throw .missingNumber(unit: unitText)
            }
            if integerDigits.isEmpty || (fractionDigits.isEmpty && number.hasSuffix(".")) {
                throw .invalidNumber(number)
            }
            if unitText.isEmpty {
                if position < chars.count { throw .invalidNumber(number + ".") }
                throw .missingUnit
            }
            guard let unit = Unit(symbol: unitText) else {
                if let bad = unitText.unicodeScalars.first(where: { !$0.properties.isAlphabetic }) {
                    throw .unexpectedCharacter(Character(bad))
                }
                throw .unknownUnit(unitText)
            }
            if let previous = previousUnit, unit.nanoseconds >= previous.nanoseconds {
                throw .unitsOutOfOrder
            }
            previousUnit = unit
            let part = try Self.nanoseconds(integer: integerDigits, fraction: fractionDigits, unit: unit)
            let (sum, overflow) = total.addingReportingOverflow(part)
            if overflow { throw .tooLarge }
            total = sum
        }
        if total == 0 && !allowZero { throw .zero }
        self.nanoseconds = total
    }

    /// The compact form, e.g. `"250ms"`, `"30s"`, `"1m30s"`, `"1.5s"`, `"2h"`; `"0s"` for zero.
    public var description: String {
        if nanoseconds == 0 { return "0s" }
        var rest = nanoseconds.magnitude
        var text = nanoseconds < 0 ? "-" : ""
        for unit in [Unit.hour, .minute] where rest >= UInt64(unit.nanoseconds) {
            text += "\(rest / UInt64(unit.nanoseconds))\(unit.symbol)"
            rest %= UInt64(unit.nanoseconds)
        }
        guard rest > 0 else { return text }
        let unit: Unit =
            rest >= UInt64(Unit.second.nanoseconds)
            ? .second
            : rest >= UInt64(Unit.millisecond.nanoseconds) ? .millisecond : .microsecond
        let scale = UInt64(unit.nanoseconds)
        text += "\(rest / scale)"
        if rest % scale != 0 {
            var fraction = String(rest % scale)
            let width = String(scale).count - 1
            fraction = String(repeating: "0", count: width - fraction.count) + fraction
            while fraction.hasSuffix("0") { fraction.removeLast() }
            text += "." + fraction
        }
        return text + unit.symbol
    }

    // MARK: - Internals

    private static func scaled<T: BinaryInteger>(_ value: T, by factor: Int64) -> ConfigDuration {
        guard let exact = Int64(exactly: value) else {
            return ConfigDuration(nanoseconds: value < 0 ? .min : .max)
        }
        let (product, overflow) = exact.multipliedReportingOverflow(by: factor)
        if overflow { return ConfigDuration(nanoseconds: exact < 0 ? .min : .max) }
        return ConfigDuration(nanoseconds: product)
    }

    /// The exact value of `integer.fraction` `unit`s in nanoseconds.
    private static func nanoseconds(
        integer: ArraySlice<Unicode.Scalar>, fraction: ArraySlice<Unicode.Scalar>, unit: Unit
    ) throws(DurationParseError) -> Int64 {
        var whole: Int64 = 0
        for digit in integer {
            let (times10, overflow1) = whole.multipliedReportingOverflow(by: 10)
            let (next, overflow2) = times10.addingReportingOverflow(Int64(digit.value - 48))
            if overflow1 || overflow2 { throw .tooLarge }
            whole = next
        }
        let (result, overflow) = whole.multipliedReportingOverflow(by: unit.nanoseconds)
        if overflow { throw .tooLarge }
        // Each fraction digit is worth a tenth of the one before; it must stay a whole number of nanoseconds.
        var total = result
        var step = unit.nanoseconds
        var exact = true
        for digit in fraction {
            exact = exact && step % 10 == 0
            step /= 10
            let value = Int64(digit.value - 48)
            if value == 0 { continue }
            guard exact else { throw .finerThanNanosecond }
            let (sum, overflow) = total.addingReportingOverflow(value * step)
            if overflow { throw .tooLarge }
            total = sum
        }
        return total
    }

    /// The units a duration may be written in.
    enum Unit: CaseIterable {
        case microsecond, millisecond, second, minute, hour

        init?(symbol: String) {
            switch symbol {
            case "us", "µs", "μs": self = .microsecond
            case "ms": self = .millisecond
            case "s": self = .second
            case "m": self = .minute
            case "h": self = .hour
            default: return nil
            }
        }

        var symbol: String {
            switch self {
            case .microsecond: "us"
            case .millisecond: "ms"
            case .second: "s"
            case .minute: "m"
            case .hour: "h"
            }
        }

        var nanoseconds: Int64 {
            switch self {
            case .microsecond: 1_000
            case .millisecond: 1_000_000
            case .second: 1_000_000_000
            case .minute: 60_000_000_000
            case .hour: 3_600_000_000_000
            }
        }
    }
}

/// Why a duration string was rejected; ``description`` is the human reason,
/// e.g. `missing unit (use ms, s, m or h)`.
public enum DurationParseError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The string is empty.
    case empty
    /// A number without a unit, e.g. `"30"`.
    case missingUnit
    /// A unit without a number before it, e.g. `"s"` or `"1ms s"`.
    case missingNumber(unit: String)
    /// A unit that is not us, ms, s, m or h, e.g. `"30sec"`.
    case unknownUnit(String)
    /// A malformed number, e.g. `"1.s"` or `".5s"`.
    case invalidNumber(String)
    /// A character that has no place in a duration, e.g. a space or a sign.
    case unexpectedCharacter(Character)
    /// A negative duration, e.g. `"-5s"`.
    case negative
    /// Units repeated or from small to large, e.g. `"30s1m"`.
    case unitsOutOfOrder
    /// A fraction finer than one nanosecond, e.g. `"1.0001us"`.
    case finerThanNanosecond
    /// More than about 292 years.
    case tooLarge
    /// Zero where the caller requires a positive duration.
    case zero

    public var description: String {
        switch self {
        case .empty: "empty (write a number and a unit, e.g. \"30s\")"
        case .missingUnit: "missing unit (use ms, s, m or h)"
        case .missingNumber(let unit): "missing number before \"\(unit)\""
        case .unknownUnit(let unit): "unknown unit \"\(unit)\" (use us, ms, s, m or h)"
        case .invalidNumber(let number): "invalid number \"\(number)\""
        case .unexpectedCharacter(let character): "unexpected character \"\(character)\""
        case .negative: "must not be negative"
        case .unitsOutOfOrder: "units must go from largest to smallest, each at most once (e.g. \"1m30s\")"
        case .finerThanNanosecond: "finer than one nanosecond"
        case .tooLarge: "too large"
        case .zero: "must be greater than zero"
        }
    }
}

extension Unicode.Scalar {
    fileprivate var isDigit: Bool { ("0"..."9").contains(self) }
}
