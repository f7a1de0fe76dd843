"""Weeks of uptime in two minutes: thousands of sessions must leave nothing behind."""

from __future__ import annotations

import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

from harness import report
from harness import clean_env, s_client_argv

ROUND = 2_000
PARALLEL = 12


def _session(host: str, port: int, index: int) -> bool:
    """One session: even ones end with close_notify, odd ones vanish and are closed on idle."""
    line = f"leak{index}\n".encode()
    by_close_notify = index % 2 == 0
    # -ign_eof keeps an odd client up after its input ends; once its echo is back it
    # is killed without a close_notify, and the daemon must notice on its own.
    # (-quiet would imply -ign_eof, so the close_notify clients go without it.)
    extra = () if by_close_notify else ("-quiet",)
    proc = subprocess.Popen(s_client_argv(host, port, *extra), stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=clean_env())
    echoed = False
    try:
        proc.stdin.write(line)
        proc.stdin.flush()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            got = proc.stdout.readline()
            if not got or got.strip() == line.strip():
                echoed = bool(got)
                break
        if by_close_notify:
            proc.stdin.close()      # end of input: s_client sends close_notify and exits
            proc.wait(timeout=10)
        return echoed
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
        for pipe in (proc.stdin, proc.stdout):
            if not pipe.closed:
                pipe.close()


def _round(px, first: int) -> int:
    with ThreadPoolExecutor(PARALLEL) as pool:
        results = list(pool.map(lambda i: _session(px.host, px.port, i), range(first, first + ROUND)))
    return sum(results)


def _wait_idle(px, timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        stats = px.daemon.stats()["test"]
        if stats["active_sessions"] == 0 or time.monotonic() > deadline:
            return stats
        time.sleep(0.5)


def test_thousands_of_sessions_leave_no_descriptor_or_memory_behind(proxied):
    px = proxied(idle_timeout="1s", handshake_rate_per_source=0)
    time.sleep(0.5)
    fds_before = px.daemon.fd_count()
    echoed = _round(px, 0)
    stats = _wait_idle(px)
    assert stats["active_sessions"] == 0, stats
    fds_first, rss_first = px.daemon.fd_count(), px.daemon.rss_kib()
    echoed += _round(px, ROUND)
    stats = _wait_idle(px)
    assert stats["active_sessions"] == 0, stats
    fds_second, rss_second = px.daemon.fd_count(), px.daemon.rss_kib()
    log = px.daemon.text
    closed_by_notify = log.count("reason=close_notify")
    closed_by_idle = log.count("reason=idle")
    report(f"leaks: {2 * ROUND} sessions ({echoed} echoed; {closed_by_notify} close_notify, {closed_by_idle} idle); "
          f"fds {fds_before} -> {fds_first} -> {fds_second}; RSS {rss_first} -> {rss_second} KiB")
    assert stats["handshakes_completed"] >= 2 * ROUND * 0.99, stats
    assert echoed >= 2 * ROUND * 0.99, f"only {echoed} of {2 * ROUND} sessions echoed"
    assert closed_by_notify >= ROUND * 0.99 and closed_by_idle >= ROUND * 0.99, (closed_by_notify, closed_by_idle)
    assert fds_first == fds_before and fds_second == fds_before, (fds_before, fds_first, fds_second)
    assert abs(rss_second - rss_first) <= rss_first * 0.10, f"RSS {rss_first} -> {rss_second} KiB"
