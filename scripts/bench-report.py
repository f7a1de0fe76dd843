#!/usr/bin/env python3
"""Render a dtls-proxy-bench JSON result as a PNG chart and as the results
section of BENCHMARKS.md.

    bench-report.py bench-results/latest.json docs/bench/latest.png BENCHMARKS.md

Only the text between the "bench:begin" and "bench:end" markers of
BENCHMARKS.md is replaced; what is written around them by hand stays.
"""
import json
import sys

BEGIN = "<!-- bench:begin (written by make bench; edit outside these markers) -->"
END = "<!-- bench:end -->"


def fmt(value, digits=0):
    if value is None:
        return "–"
    return f"{value:,.{digits}f}"


def eps(run):
    return run["echoes"] / run["seconds"] if run and run["seconds"] > 0 else None


def chart(report, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    targets = [t for t in report["targets"] if t.get("bulk")]
    names = [t["name"] for t in targets]
    colors = {"direct": "#7f7f7f", "relay": "#bcbd22", "daemon": "#1f77b4", "socat": "#d62728"}
    palette = [colors.get(t["kind"], "#2ca02c") for t in targets]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    left.bar(names, [eps(t["bulk"]) / 1000 for t in targets], color=palette)
    left.set_title("16 sessions × 8 in flight, 1200 B")
    left.set_ylabel("thousand echoes / s")
    for i, t in enumerate(targets):
        left.annotate(f'{t["admitted"]} sess.', (i, eps(t["bulk"]) / 1000), ha="center", va="bottom", fontsize=8)
    width = 0.27
    xs = range(len(targets))
    for offset, key, label in ((-width, "p50", "p50"), (0, "p99", "p99"), (width, "p999", "p99.9")):
        left_values = [t["latency"][key] if t.get("latency") else 0 for t in targets]
        right.bar([x + offset for x in xs], left_values, width, label=label)
    right.set_xticks(list(xs))
    right.set_xticklabels(names)
    right.set_yscale("log")
    right.set_title("round trip, 1 session, window 1, 1200 B")
    right.set_ylabel("µs (log scale)")
    right.legend()
    for axis in (left, right):
        axis.tick_params(axis="x", labelsize=8)
    machine = report["machine"]
    fig.suptitle(f'dtls-proxy-bench, {machine["cores"]} cores, {machine["cpu"]}, {machine["date"]}', fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def section(report, png):
    machine = report["machine"]
    direct = next((eps(t["bulk"]) for t in report["targets"] if t["kind"] == "direct" and t.get("bulk")), None)
    floor = next((t["latency"]["p50"] for t in report["targets"] if t["kind"] == "relay" and t.get("latency")), None)
    lines = [
        BEGIN,
        "",
        f'Run {machine["date"]} on {machine["cores"]} cores ({machine["cpu"]}), Linux {machine["kernel"]}, '
        f'{machine["openssl"]}; load average at start {machine["loadAverageAtStart"]}; run took {report["seconds"]:.0f} s.',
        "",
        f"![throughput and latency per target]({png})",
        "",
        "| target | sessions admitted | echoes/s, 16×8, 1200 B | × direct | Mbit/s (each way) | p50 µs | p99 µs | p99.9 µs "
        "| p50 − relay p50 | echoes/s 1×8 64 B | echoes/s 256×8 64 B | handshakes/s @8 | @64 | CPU µs / handshake | CPU s / M datagrams |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for t in report["targets"]:
        bulk, latency = t.get("bulk"), t.get("latency")
        ratio = eps(bulk) / direct if bulk and direct else None
        over = latency["p50"] - floor if latency and floor is not None else None
        lines.append("| " + " | ".join([
            t["name"], str(t.get("admitted", "–")), fmt(eps(bulk)), fmt(ratio, 2),
            fmt(bulk["echoes"] / bulk["seconds"] * bulk["payload"] * 8 / 1e6 if bulk else None),
            fmt(latency and latency["p50"], 1), fmt(latency and latency["p99"], 1), fmt(latency and latency["p999"], 1),
            fmt(over, 1), fmt(eps(t.get("small1"))), fmt(eps(t.get("small256"))),
            fmt(t.get("handshakes8")), fmt(t.get("handshakes64")), fmt(t.get("handshakeCPUMicroseconds")), fmt(t.get("cpuSecondsPerMillionDatagrams"), 2),
        ]) + " |")
    for t in report["targets"]:
        if t.get("perLoop"):
            lines += ["", f'{t["name"]}: sessions per event loop in the 16-session run: {t["perLoop"]}; cipher {t.get("cipher")}.']
    memory = report.get("memory")
    if memory:
        lines += ["", f'Resident memory of an idle daemon (workers = {memory["workers"]}), baseline {memory["baselineKiB"]} KiB:', ""]
        lines += ["| idle established sessions | RSS KiB | KiB per session |", "|---|---|---|"]
        for count, rss, per in zip(memory["sessions"], memory["residentKiB"], memory["perSessionKiB"]):
            lines.append(f"| {count:,} | {rss:,} | {per:.1f} |")
        lines += ["", f'Sessions per event loop at {memory["sessions"][-1]:,}: {memory["perLoop"]}.']
    if report.get("workers"):
        lines += ["", "| workers | echoes/s, 16×8, 1200 B | sessions per event loop | CPU s / M datagrams |", "|---|---|---|---|"]
        for run in report["workers"]:
            lines.append(f'| {run["workers"]} | {fmt(eps(run["bulk"]))} | {run["perLoop"]} | {run["cpuSecondsPerMillionDatagrams"]:.2f} |')
    if report.get("notes"):
        lines += [""] + [f"- {note}" for note in report["notes"]]
    lines += ["", END]
    return "\n".join(lines)


def main():
    source, png, markdown = sys.argv[1:4]
    with open(source) as handle:
        report = json.load(handle)
    chart(report, png)
    block = section(report, png)
    try:
        with open(markdown) as handle:
            text = handle.read()
    except FileNotFoundError:
        text = "# Benchmarks\n\n" + BEGIN + "\n" + END + "\n"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        tail = rest.split(END, 1)[1]
        text = head + block + tail
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    with open(markdown, "w") as handle:
        handle.write(text)
    print(f"wrote {png} and {markdown}")


if __name__ == "__main__":
    main()
