"""The log never stops the service: stderr on /dev/full, on a pipe whose reader
is gone, on a pipe nobody reads; and the metrics endpoint out of descriptors.

Each test starts the daemon with its stderr where the fault is, keeps a real
DTLS client (openssl s_client) talking through it, and reads the drop counter
from the metrics endpoint.
"""

from __future__ import annotations

import os
import resource
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from harness import (
    DAEMON_BIN,
    S_CLIENT_DONE,
    clean_env,
    echo_roundtrip,
    free_tcp_port,
    free_udp_port,
    metric,
    s_client_argv,
    scrape,
    write_config,
)
from test_half_open_flood import _stall_handshakes


class Raw:
    """The daemon with stderr wherever the test says; no reader of ours on it."""

    def __init__(self, config: Path, stderr, preexec_fn=None):
        self.p = subprocess.Popen([str(DAEMON_BIN), "--config", str(config)], stdin=subprocess.DEVNULL,
                                  stdout=subprocess.DEVNULL, stderr=stderr, env=clean_env(),
                                  start_new_session=True, preexec_fn=preexec_fn)
        self.pid = self.p.pid

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def alive(self) -> bool:
        return self.p.poll() is None

    def stop(self) -> int:
        self.p.send_signal(signal.SIGTERM)
        try:
            return self.p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.p.kill()
            return self.p.wait(timeout=5)


@pytest.fixture
def raw_daemon(tmp_path, certs, echo_backend):
    started: list[Raw] = []

    def start(stderr, log_level="info", preexec_fn=None, listener_keys=None, **daemon_keys):
        backend = echo_backend()
        port, metrics = free_udp_port(), free_tcp_port()
        config = write_config(tmp_path / "dtls-proxy.toml", [{
            "name": "log", "listen": f"127.0.0.1:{port}", "backend": f"127.0.0.1:{backend.port}",
            "certificate": str(certs["cert"]), "private_key": str(certs["key"]), "handshake_timeout": "1s",
            "max_sessions": 100, **(listener_keys or {}),
        }], daemon={"log_level": log_level, "metrics_listen": f"127.0.0.1:{metrics}", **daemon_keys})
        daemon = Raw(config, stderr, preexec_fn)
        started.append(daemon)
        _wait_for_endpoint(daemon, metrics, timeout=20, what="the metrics endpoint never answered")
        return daemon, port, metrics
    yield start
    for daemon in started:
        if daemon.alive():
            daemon.p.kill()
            daemon.p.wait(timeout=5)


def _wait_for_endpoint(daemon: Raw, metrics_port: int, timeout: float, what: str):
    """Until a scrape answers 200; fails if the daemon exits or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if scrape(metrics_port, timeout=2)[0] == 200:
                return
        except OSError:
            pass
        assert daemon.alive(), f"the daemon exited with {daemon.p.returncode}"
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def _dropped(metrics_port: int) -> float:
    return metric(scrape(metrics_port)[1], "dtlsproxy_log_lines_dropped_total")


def _serve_a_client(peer, port: int, lines: int = 5):
    client = peer(s_client_argv("127.0.0.1", port))
    client.wait_for(S_CLIENT_DONE, timeout=15)
    for n in range(lines):
        echo_roundtrip(client, b"line %d\n" % n)
    return client


def test_stderr_on_dev_full(raw_daemon, peer):
    with open("/dev/full", "w") as full:
        daemon, port, metrics = raw_daemon(full)
    client = _serve_a_client(peer, port)
    client.kill()
    assert daemon.alive()
    assert _dropped(metrics) >= 2, "the ready and session lines were refused and must be counted"
    assert daemon.stop() == 0


def test_stderr_pipe_whose_reader_is_gone(raw_daemon, peer):
    read, write = os.pipe()
    os.close(read)                 # like `dtls-proxyd 2>&1 | head -n 2` after head exits
    try:
        daemon, port, metrics = raw_daemon(write)
    finally:
        os.close(write)
    _serve_a_client(peer, port).kill()
    assert daemon.alive()
    assert _dropped(metrics) >= 2
    assert daemon.stop() == 0


def test_stderr_pipe_nobody_reads_does_not_stall_traffic(raw_daemon, peer):
    read, write = os.pipe()
    try:
        daemon, port, metrics = raw_daemon(write, log_level="debug", listener_keys={
            "max_sessions": 5000, "max_handshakes_per_source": 5000, "max_handshakes_per_prefix": 5000,
            "handshake_rate_per_source": 0})
    finally:
        os.close(write)
    try:
        client = _serve_a_client(peer, port, lines=1)
        # Stalled handshakes log a line each at start and at their timeout: far more than a pipe holds.
        _stall_handshakes("127.0.0.1", port, ["127.0.0.1"], 3000)
        time.sleep(1.5)            # their timeouts log too
        assert _dropped(metrics) > 0, "the pipe should be full by now"
        started = time.monotonic()
        for n in range(50):
            echo_roundtrip(client, b"while the log is stuck %d\n" % n, timeout=5)
        assert time.monotonic() - started < 10, "echoes slowed to a crawl behind the log"
        newcomer = peer(s_client_argv("127.0.0.1", port))
        newcomer.wait_for(S_CLIENT_DONE, timeout=10)
        echo_roundtrip(newcomer, b"new handshake while the log is stuck\n")
        # Once somebody reads again, the log says how much it lost.
        os.set_blocking(read, False)
        seen = b""
        deadline = time.monotonic() + 10
        while b"lines dropped" not in seen and time.monotonic() < deadline:
            try:
                seen = (seen + os.read(read, 1 << 16))[-(1 << 20):]
            except BlockingIOError:
                time.sleep(0.05)
        assert b"lines dropped" in seen
        assert daemon.stop() == 0
    finally:
        os.close(read)


def test_metrics_endpoint_backs_off_when_descriptors_run_out(raw_daemon):
    def low_limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
    daemon, port, metrics = raw_daemon(subprocess.DEVNULL, preexec_fn=low_limit, workers=1)
    held = []
    try:
        # Connections the daemon accepts until it has no descriptor left; the rest wait in its backlog.
        for _ in range(80):
            s = socket.create_connection(("127.0.0.1", metrics), timeout=2)
            held.append(s)
        time.sleep(1.0)
        before = daemon.cpu_seconds()
        time.sleep(2.0)
        spent = daemon.cpu_seconds() - before
        assert spent < 0.3, f"the daemon spent {spent:.2f} CPU-seconds in 2 s with a scrape pending"
    finally:
        for s in held:
            s.close()
    # Descriptors free again: the endpoint answers.
    _wait_for_endpoint(daemon, metrics, timeout=10, what="the metrics endpoint did not recover")
