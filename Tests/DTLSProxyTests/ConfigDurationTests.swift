import Testing

@testable import DTLSProxy

@Suite("ConfigDuration")
struct ConfigDurationTests {
    @Test(
        "parses the documented forms",
        arguments: [
            ("250ms", Int64(250_000_000)),
            ("30s", 30_000_000_000),
            ("5m", 300_000_000_000),
            ("1h", 3_600_000_000_000),
            ("1m30s", 90_000_000_000),
            ("1.5s", 1_500_000_000),
            ("0.25s", 250_000_000),
            ("10us", 10_000),
            ("10µs", 10_000),
            ("1.5us", 1_500),
            ("0.001us", 1),
            ("1.5h", 5_400_000_000_000),
            ("1h2m3s4ms5us", 3_723_004_005_000),
            ("0s", 0),
            ("007s", 7_000_000_000),
            ("1.500s", 1_500_000_000),
        ])
    func parsesValidText(text: String, nanoseconds: Int64) throws {
        #expect(try ConfigDuration(parsing: text).nanoseconds == nanoseconds)
    }

    @Test(
        "rejects malformed text with a precise reason",
        arguments: [
            ("", DurationParseError.empty),
            ("30", .missingUnit),
            ("1m30", .missingUnit),
            ("-5s", .negative),
            ("5x", .unknownUnit("x")),
            ("5sec", .unknownUnit("sec")),
            ("5ns", .unknownUnit("ns")),
            ("5S", .unknownUnit("S")),
            ("s", .missingNumber(unit: "s")),
            ("30s1m", .unitsOutOfOrder),
            ("1s1s", .unitsOutOfOrder),
            ("1.s", .invalidNumber("1.")),
            (".5s", .invalidNumber(".5")),
            ("1.5.5s", .invalidNumber("1.5.")),
            ("30 s", .unexpectedCharacter(" ")),
            (" 30s", .unexpectedCharacter(" ")),
            ("30s ", .unexpectedCharacter(" ")),
            ("+5s", .unexpectedCharacter("+")),
            ("1.0001us", .finerThanNanosecond),
            ("99999999999h", .tooLarge),
            ("9223372036854775808us", .tooLarge),
        ])
    func rejectsInvalidText(text: String, expected: DurationParseError) {
        #expect(throws: expected) { try ConfigDuration(parsing: text) }
    }

    @Test func zeroIsRejectedOnlyWhenAsked() throws {
        #expect(try ConfigDuration(parsing: "0s", allowZero: true) == .zero)
        #expect(throws: DurationParseError.zero) { try ConfigDuration(parsing: "0ms", allowZero: false) }
        #expect(try ConfigDuration(parsing: "1us", allowZero: false) == .microseconds(1))
    }

    @Test func errorDescriptionsAreHumanReasons() {
        #expect(DurationParseError.missingUnit.description == "missing unit (use ms, s, m or h)")
        #expect(DurationParseError.unknownUnit("x").description == "unknown unit \"x\" (use us, ms, s, m or h)")
        #expect(DurationParseError.zero.description == "must be greater than zero")
    }

    @Test(
        "renders a compact form",
        arguments: [
            (ConfigDuration.milliseconds(250), "250ms"),
            (.seconds(30), "30s"),
            (.seconds(90), "1m30s"),
            (.milliseconds(1500), "1.5s"),
            (.hours(1), "1h"),
            (.seconds(3605), "1h5s"),
            (.minutes(61), "1h1m"),
            (.zero, "0s"),
            (ConfigDuration(nanoseconds: 1500), "1.5us"),
            (ConfigDuration(nanoseconds: 1), "0.001us"),
            (ConfigDuration(nanoseconds: 60_000_000_001), "1m0.001us"),
            (ConfigDuration(nanoseconds: -2_000_000_000), "-2s"),
        ])
    func description(duration: ConfigDuration, text: String) {
        #expect(duration.description == text)
    }

    @Test(
        "the compact form parses back to the same value",
        arguments: [
            Int64(1), 999, 1_000, 1_234_567, 999_999_999, 1_000_000_001, 59_999_999_999,
            3_599_999_999_999, 86_400_000_000_000, 90_061_001_001_001, Int64.max,
        ])
    func descriptionRoundTrips(nanoseconds: Int64) throws {
        let duration = ConfigDuration(nanoseconds: nanoseconds)
        #expect(try ConfigDuration(parsing: duration.description) == duration)
    }

    @Test func constructorsAndOrdering() {
        #expect(ConfigDuration.seconds(5).nanoseconds == 5_000_000_000)
        #expect(ConfigDuration.minutes(2) == .seconds(120))
        #expect(ConfigDuration.milliseconds(1000) == .seconds(1))
        #expect(ConfigDuration.microseconds(1000) == .milliseconds(1))
        #expect(ConfigDuration.hours(Int64.max).nanoseconds == Int64.max)
        #expect(ConfigDuration.seconds(-Int64.max).nanoseconds == Int64.min)
        #expect(ConfigDuration.milliseconds(250) < .seconds(1))
        #expect(
            [ConfigDuration.seconds(3), .milliseconds(5), .minutes(1)].sorted() == [
                .milliseconds(5), .seconds(3), .minutes(1),
            ])
        #expect(ConfigDuration.milliseconds(1500).duration == .milliseconds(1500))
        #expect(ConfigDuration.milliseconds(1500).timeInterval == 1.5)
        #expect(Set([ConfigDuration.seconds(1), .milliseconds(1000)]).count == 1)
    }
}
