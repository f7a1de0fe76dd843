import Foundation

/// The comparison as Markdown: printed at the end of the run and written to compare.md.
extension ComparisonReport {
    func markdown() -> String {
        let rounds = max(currentRounds.count, baselineRounds.count)
        var lines = [
            "## dtls-proxyd: \(baseline.label) → \(current.label)",
            "",
            "\(rounds) rounds on \(machine.cores) cores (\(machine.cpu)), Linux \(machine.kernel), \(machine.openssl); "
                + "load average at start \(machine.loadAverageAtStart); \(Self.number(secondsPerFigure)) s per figure, "
                + "workers = \(workers); run took \(Self.number(seconds)) s. Each round measures direct UDP, then "
                + "one fresh daemon of each build, \(current.label) first in odd rounds, \(baseline.label) first "
                + "in even ones. Medians over the rounds; spread: lowest–highest (range / median); ratio: "
                + "\(current.label) over \(baseline.label), medians.",
            "",
            "| figure | \(baseline.label) | spread | \(current.label) | spread | ratio | ranges |",
            "|---|---|---|---|---|---|---|",
        ]
        for figure in figures {
            let ranges: String
            if let base = figure.baseline, let now = figure.current {
                ranges =
                    base.overlaps(now) ? "overlap" : (Self.better(figure, now, base) ? "apart, better" : "apart, worse")
            } else {
                ranges = "–"
            }
            lines.append(
                "| \(figure.name) | \(Self.number(figure.baseline?.median)) | \(Self.range(figure.baseline)) "
                    + "| \(Self.number(figure.current?.median)) | \(Self.range(figure.current)) "
                    + "| \(figure.ratio.map { String(format: "%.3f", $0) } ?? "–") | \(ranges) |")
        }
        lines += [
            "",
            "Direct UDP in the same rounds (no daemon: what the machine itself did meanwhile): round trip p50 "
                + "\(Self.number(directP50?.median)) µs, spread \(Self.range(directP50)); echoes/s 16×8, 1200 B "
                + "\(Self.number(directEchoesPerSecond?.median)), spread \(Self.range(directEchoesPerSecond)).",
            "",
            "| round | first | direct UDP p50 µs | \(baseline.label) p50 µs | \(current.label) p50 µs "
                + "| \(baseline.label) echoes/s 16×8 | \(current.label) echoes/s 16×8 |",
            "|---|---|---|---|---|---|---|",
        ]
        for round in 1...max(1, rounds) {
            let base = baselineRounds.first { $0.round == round }
            let now = currentRounds.first { $0.round == round }
            let first = base?.position == 1 ? baseline.label : current.label
            lines.append(
                "| \(round) | \(first) | \(Self.number(round <= direct.count ? direct[round - 1].latency?.p50 : nil)) "
                    + "| \(Self.number(base?.daemon.latency?.p50)) | \(Self.number(now?.daemon.latency?.p50)) "
                    + "| \(Self.number(base?.daemon.bulk?.echoesPerSecond)) "
                    + "| \(Self.number(now?.daemon.bulk?.echoesPerSecond)) |")
        }
        if !notes.isEmpty {
            lines += [""] + notes.map { "- \($0)" }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    private static func better(_ figure: ComparedFigure, _ current: Spread, _ baseline: Spread) -> Bool {
        figure.higherIsBetter ? current.median > baseline.median : current.median < baseline.median
    }

    private static func range(_ spread: Spread?) -> String {
        guard let spread else { return "–" }
        let percent = spread.rangePercent.map { String(format: " (%.0f %%)", $0) } ?? ""
        return "\(number(spread.min))–\(number(spread.max))\(percent)"
    }

    /// Three significant digits or more: thousands grouped with commas, no decimals from 100 up.
    static func number(_ value: Double?) -> String {
        guard let value, value.isFinite else { return "–" }
        let magnitude = abs(value)
        let digits = magnitude >= 100 ? 0 : magnitude >= 10 ? 1 : 2
        let text = String(format: "%.\(digits)f", magnitude)
        let parts = text.split(separator: ".", maxSplits: 1)
        var whole = String(parts[0])
        var grouped = ""
        while whole.count > 3 {
            grouped = "," + whole.suffix(3) + grouped
            whole.removeLast(3)
        }
        let fraction = parts.count > 1 ? "." + parts[1] : ""
        return (value < 0 ? "−" : "") + whole + grouped + fraction
    }
}
