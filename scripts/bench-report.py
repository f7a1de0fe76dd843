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


def cells(target):
    """The matrix cells of a target keyed by (sessions, payload)."""
    return {(c["sessions"], c["payload"]): c for c in target.get("matrix") or []}


def shapes(report):
    found = sorted({key for t in report["targets"] for key in cells(t)})
    return found or [(16, 1200)]


def chart(report, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    targets = [t for t in report["targets"] if t.get("bulk")]
    names = [t["name"] for t in targets]
    colors = {"direct": "#7f7f7f", "relay": "#bcbd22", "daemon": "#1f77b4", "socat": "#d62728"}
    fig, axes = plt.subplots(2, 2, figsize=(12, 8))
    (echo_axis, mbit_axis), (latency_axis, handshake_axis) = axes
    keys = shapes(report)
    width = 0.8 / max(1, len(targets))
    for index, t in enumerate(targets):
        by_shape = cells(t)
        xs = [k + (index - (len(targets) - 1) / 2) * width for k in range(len(keys))]
        values = [eps(by_shape[key]["run"]) / 1000 if key in by_shape and by_shape[key].get("run") else 0 for key in keys]
        mbits = [v * 1000 * key[1] * 8 / 1e6 for v, key in zip(values, keys)]
        color = colors.get(t["kind"], "#2ca02c")
        echo_axis.bar(xs, values, width, label=t["name"], color=color)
        mbit_axis.bar(xs, mbits, width, label=t["name"], color=color)
        for x, key, value in zip(xs, keys, values):
            cell = by_shape.get(key)
            if cell and cell["admitted"] < cell["sessions"]:
                echo_axis.annotate(f'{cell["admitted"]}/{cell["sessions"]}', (x, value), ha="center", va="bottom", fontsize=6)
    for axis, title, label in ((echo_axis, "echoes / s, window 8 (admitted/asked where refused)", "thousand echoes / s"),
                               (mbit_axis, "payload Mbit / s each way, window 8", "Mbit / s")):
        axis.set_xticks(range(len(keys)))
        axis.set_xticklabels([f"{s} sess.\n{p} B" for s, p in keys])
        axis.set_title(title, fontsize=10)
        axis.set_ylabel(label)
        axis.legend(fontsize=7)
    lat_width = 0.27
    xs = range(len(targets))
    for offset, key, label in ((-lat_width, "p50", "p50"), (0, "p99", "p99"), (lat_width, "p999", "p99.9")):
        values = [t["latency"][key] if t.get("latency") else 0 for t in targets]
        latency_axis.bar([x + offset for x in xs], values, lat_width, label=label)
    latency_axis.set_xticks(list(xs))
    latency_axis.set_xticklabels(names)
    latency_axis.set_yscale("log")
    latency_axis.set_title("round trip, 1 session, window 1, 1200 B", fontsize=10)
    latency_axis.set_ylabel("µs (log scale)")
    latency_axis.legend(fontsize=7)
    dtls = [t for t in report["targets"] if t.get("handshakes8") is not None]
    xs = range(len(dtls))
    for offset, key, label in ((-lat_width, "handshakes8", "full @8"), (0, "handshakes64", "full @64"),
                               (lat_width, "resumedHandshakes8", "resumed @8")):
        values = [t.get(key) or 0 for t in dtls]
        bars = handshake_axis.bar([x + offset for x in xs], [max(v, 0.1) for v in values], lat_width, label=label)
        for bar, value in zip(bars, values):
            handshake_axis.annotate(f"{value:,.0f}", (bar.get_x() + bar.get_width() / 2, max(value, 0.1)),
                                    ha="center", va="bottom", fontsize=7)
    handshake_axis.set_xticks(list(xs))
    handshake_axis.set_xticklabels([t["name"] for t in dtls])
    handshake_axis.set_yscale("log")
    handshake_axis.set_title("handshakes / s (fresh source port each)", fontsize=10)
    handshake_axis.set_ylabel("per second (log scale)")
    handshake_axis.legend(fontsize=7)
    for axis in axes.flat:
        axis.tick_params(axis="x", labelsize=8)
    machine = report["machine"]
    fig.suptitle(f'dtls-proxy-bench, {machine["cores"]} cores, {machine["cpu"]}, {machine["date"]}', fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def spread(value, digits=None):
    """median [min–max] of a Spread, digits by size unless given."""
    if not value:
        return "–"
    if digits is None:
        digits = 1 if abs(value["median"]) < 100 else 0
    return f'{fmt(value["median"], digits)} [{fmt(value["min"], digits)}–{fmt(value["max"], digits)}]'


def goal_table(report):
    """The performance goals, each the daemon's median against its reference's, with both spreads."""
    goals = report.get("goals") or []
    if not goals:
        return []
    rounds = report.get("rounds", 1)
    direct = report.get("directP50")
    lines = [f"**Goals.** {rounds} rounds, every target once per round, the order reversed every other round; "
             "median [min–max] over the rounds. "]
    if direct:
        lines[0] += (f"Direct UDP's p50 at window 1 (the machine's wake-up latency in this run): "
                     f"**{spread(direct)} µs**.")
    lines += ["", "| goal | unit | dtls-proxyd | reference | reference's figure | ratio | goal | sessions admitted (ours / reference's) | met |",
              "|---|---|---|---|---|---|---|---|---|"]
    for g in goals:
        bound = ("≥ " if g["higherIsBetter"] else "≤ ") + f'{g["bound"]:.1f}×'
        lines.append("| " + " | ".join([
            g["goal"], g["unit"], spread(g.get("daemon")), g["referenceName"], spread(g.get("reference")),
            fmt(g.get("ratio"), 2), bound, g.get("admitted") or "–", "yes" if g["met"] else "**no**",
        ]) + " |")
    return lines + [""]


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
    ]
    lines += goal_table(report)
    lines += [
        "Every figure below is the median over the rounds (a throughput or latency run: the round with the median "
        "rate or p50).",
        "",
        "| target | sessions admitted | echoes/s, 16×8, 1200 B | × direct | Mbit/s (each way) | p50 µs | p99 µs | p99.9 µs "
        "| p50 − relay p50 | full handshakes/s @8 | @64 | resumed handshakes/s @8 | CPU µs / full handshake | CPU s / M datagrams |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for t in report["targets"]:
        bulk, latency = t.get("bulk"), t.get("latency")
        ratio = eps(bulk) / direct if bulk and direct else None
        over = latency["p50"] - floor if latency and floor is not None else None
        lines.append("| " + " | ".join([
            t["name"], str(t.get("admitted", "–")), fmt(eps(bulk)), fmt(ratio, 2),
            fmt(bulk["echoes"] / bulk["seconds"] * bulk["payload"] * 8 / 1e6 if bulk else None),
            fmt(latency and latency["p50"], 1), fmt(latency and latency["p99"], 1), fmt(latency and latency["p999"], 1),
            fmt(over, 1), fmt(t.get("handshakes8")), fmt(t.get("handshakes64")), fmt(t.get("resumedHandshakes8")),
            fmt(t.get("handshakeCPUMicroseconds")), fmt(t.get("cpuSecondsPerMillionDatagrams"), 2),
        ]) + " |")
    keys = shapes(report)
    lines += ["", "Echoes/s and payload Mbit/s each way, every session keeping 8 datagrams in flight; "
              "*k of n* where the target admitted only k of the n sessions asked for (the cell ran with those k):", ""]
    lines.append("| target | " + " | ".join(f"{s}×8, {p} B" for s, p in keys) + " |")
    lines.append("|---|" + "---|" * len(keys))
    for t in report["targets"]:
        by_shape = cells(t)
        row = []
        for key in keys:
            cell = by_shape.get(key)
            if not cell or not cell.get("run"):
                row.append("–" if not cell else f'0 of {cell["sessions"]} admitted')
                continue
            run = cell["run"]
            text = f'{fmt(eps(run))} ({fmt(eps(run) * run["payload"] * 8 / 1e6)} Mbit/s)'
            if cell["admitted"] < cell["sessions"]:
                text += f' *{cell["admitted"]} of {cell["sessions"]}*'
            row.append(text)
        lines.append(f'| {t["name"]} | ' + " | ".join(row) + " |")
    cpu_rows = [t for t in report["targets"] if any(c.get("cpuSecondsPerMillionDatagrams") is not None for c in cells(t).values())]
    if cpu_rows:
        lines += ["", "The target's CPU seconds per million datagrams relayed, per cell:", ""]
        lines.append("| target | " + " | ".join(f"{s}×8, {p} B" for s, p in keys) + " |")
        lines.append("|---|" + "---|" * len(keys))
        for t in cpu_rows:
            by_shape = cells(t)
            lines.append(f'| {t["name"]} | ' + " | ".join(
                fmt(by_shape[key].get("cpuSecondsPerMillionDatagrams") if key in by_shape and by_shape[key].get("run") else None, 2)
                for key in keys) + " |")
    resumption = [t for t in report["targets"] if t.get("resumedHandshakes8") is not None]
    if resumption:
        lines += ["", "Resumption (8 in flight, fresh source port each, the SSL_SESSION of one earlier full handshake offered with "
                  "`SSL_set_session`; only handshakes `SSL_session_reused` confirms are counted):", ""]
        lines += ["| target | resumed/s | offered but full | failed | ticket issued | CPU µs / handshake |", "|---|---|---|---|---|---|"]
        for t in resumption:
            ticket = t.get("ticketIssued")
            lines.append(f'| {t["name"]} | {fmt(t["resumedHandshakes8"])} | {fmt(t.get("resumedRefused"))} | {fmt(t.get("resumedFailures"))} '
                         f'| {"–" if ticket is None else ("yes" if ticket else "no")} | {fmt(t.get("resumedCPUMicroseconds"))} |')
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
    cluster = report.get("cluster")
    if cluster:
        lines += ["", "Two instances (`[cluster]`): the daemon's own connector, with a connection ID, tunnels 16 sessions "
                  "to node 1 through a relay; then the relay moves every flow to node 2, which forwards each datagram "
                  "to node 1 over the cluster link and sends the replies it gets back:", "",
                  "| path | echoes/s, 16×8, 1200 B (through the tunnel) | CPU s / M datagrams |", "|---|---|---|",
                  f'| direct to node 1 | {fmt(cluster["directEchoesPerSecond"])} | {cluster["directCPU"]:.2f} (node 1) |',
                  f'| forwarded by node 2 | {fmt(cluster["forwardedEchoesPerSecond"])} | {cluster["forwardedCPU"]:.2f} '
                  f'(both nodes; node 2 {cluster["receivingNodeCPU"]:.2f}) |']
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
