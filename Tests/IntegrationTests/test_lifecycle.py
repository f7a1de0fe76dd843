"""Process and session life: idle timeout, systemd notification, stop, start failures."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

from harness import (
    DAEMON_BIN,
    GNUTLS_DONE,
    S_CLIENT_DONE,
    SERVER_CLOSE_NOTIFY,
    Daemon,
    echo_roundtrip,
    gnutls_argv,
    run_daemon_once,
    s_client_argv,
    write_config,
)


def _wait_fd_count(daemon: Daemon, target: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    count = daemon.fd_count()
    while count != target and time.monotonic() < deadline:
        time.sleep(0.1)
        count = daemon.fd_count()
    return count


def test_idle_timeout_closes_session_and_releases_its_socket(proxied, peer):
    px = proxied(idle_timeout="1s")
    time.sleep(0.5)  # let the freshly started daemon settle
    baseline = px.daemon.fd_count()
    client = peer(s_client_argv(px.host, px.port))
    client.wait_for(S_CLIENT_DONE, timeout=15)
    echo_roundtrip(client, b"then silence\n")
    during = px.daemon.fd_count()
    assert during > baseline, f"an open session should hold a backend socket ({baseline} -> {during})"
    start = time.monotonic()
    m = px.daemon.wait_for(rb"session close peer=127\.0\.0\.1:\d+ listener=test [^\n]*reason=idle",
                           timeout=10)
    elapsed = time.monotonic() - start
    assert elapsed < 8, f"idle close took {elapsed:.1f}s for idle_timeout=1s"
    line = m.group(0).decode()
    assert "datagrams_in=1" in line and "datagrams_out=1" in line, line
    after = _wait_fd_count(px.daemon, baseline, timeout=5)
    assert after == baseline, f"fd count {baseline} before, {during} during, {after} after idle close"
    # The client was told: close_notify ends s_client.
    client.wait(10)
    stats = px.daemon.stats()["test"]
    assert stats["active_sessions"] == 0, stats


@pytest.fixture
def notify_socket():
    """A unix datagram socket standing in for systemd's notification socket."""
    d = tempfile.mkdtemp(prefix="dtlsn-", dir="/tmp")  # short: sun_path is 108 bytes
    path = os.path.join(d, "notify.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    yield s, path
    s.close()
    shutil.rmtree(d, ignore_errors=True)


def _recv_until(sock: socket.socket, needle: bytes, timeout: float) -> list[bytes]:
    got: list[bytes] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sock.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            data = sock.recv(4096)
        except socket.timeout:
            break
        got.append(data)
        if needle in data.split(b"\n"):
            return got
    raise AssertionError(f"no {needle!r} on NOTIFY_SOCKET within {timeout}s; got {got}")


def test_notify_ready_stopping_and_close_notify_on_sigterm(proxied, peer, notify_socket):
    sock, path = notify_socket
    px = proxied(env={"NOTIFY_SOCKET": path})
    _recv_until(sock, b"READY=1", timeout=10)
    client = peer(s_client_argv(px.host, px.port, "-msg"))
    client.wait_for(S_CLIENT_DONE, timeout=15)
    echo_roundtrip(client, b"before stop\n")
    g = peer(gnutls_argv(px.host, px.port))
    g.wait_for(GNUTLS_DONE, timeout=15)
    echo_roundtrip(g, b"gnutls before stop\n")

    mark = client.mark()
    started = time.monotonic()
    px.daemon.signal(signal.SIGTERM)
    _recv_until(sock, b"STOPPING=1", timeout=5)
    client.wait_for(SERVER_CLOSE_NOTIFY, timeout=10, start=mark)
    g.wait_for(rb"Peer has closed the GnuTLS connection", timeout=10)
    rc = px.daemon.wait(timeout=max(0.5, 10 - (time.monotonic() - started)))
    assert rc == 0, px.daemon.text[-3000:]
    assert time.monotonic() - started < 10
    closes = [l for l in px.daemon.log_lines() if " session close " in l]
    assert len(closes) == 2 and all("reason=shutdown" in l for l in closes), closes
    assert any(" stats listener=test " in l for l in px.daemon.log_lines()), \
        "the stats line is logged at stop"


def test_ready_means_bound(proxied, peer, notify_socket):
    """READY=1 is sent only once the listener answers: a client started right then works."""
    sock, path = notify_socket
    px = proxied(env={"NOTIFY_SOCKET": path})
    _recv_until(sock, b"READY=1", timeout=10)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        with pytest.raises(OSError):  # the daemon already holds the port
            probe.bind(("127.0.0.1", px.port))
    client = peer(s_client_argv(px.host, px.port))
    client.wait_for(S_CLIENT_DONE, timeout=15)


def test_nothing_sent_without_notify_socket_and_sigint_stops(proxied, notify_socket):
    sock, _ = notify_socket
    px = proxied()  # NOTIFY_SOCKET not set
    px.daemon.signal(signal.SIGINT)
    assert px.daemon.wait(timeout=10) == 0, px.daemon.text[-2000:]
    sock.settimeout(0.3)
    with pytest.raises(socket.timeout):
        sock.recv(4096)


def test_signals_right_after_ready_are_handled(proxied):
    """SIGUSR1 sent as soon as the daemon says ready logs stats; it must not kill it."""
    for attempt in range(5):
        px = proxied()
        start = px.daemon.mark()
        px.daemon.signal(signal.SIGUSR1)
        px.daemon.wait_for(rb"\bstats listener=test ", timeout=5, start=start)
        assert px.daemon.alive(), f"attempt {attempt}: rc={px.daemon.p.returncode}"
        assert px.daemon.stop() == 0


def test_port_in_use_exits_nonzero_with_message(tmp_path, certs):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as squatter:
        squatter.bind(("127.0.0.1", 0))
        port = squatter.getsockname()[1]
        cfg = write_config(tmp_path / "dtls-proxy.toml", [{
            "name": "busy", "listen": f"127.0.0.1:{port}", "backend": "127.0.0.1:9",
            "certificate": str(certs["cert"]), "private_key": str(certs["key"]),
        }])
        r = run_daemon_once(cfg, timeout=20)
    assert r.returncode not in (0, 78), (r.returncode, r.stderr)
    assert "in use" in r.stderr, r.stderr
    assert str(port) in r.stderr, r.stderr


def test_version():
    r = subprocess.run([str(DAEMON_BIN), "--version"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip(), "--version prints a version"
