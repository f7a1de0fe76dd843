"""Health endpoints (health_listen, and on metrics_listen) and the drain on SIGTERM (drain_timeout)."""

from __future__ import annotations

import http.client
import signal
import time

from harness import (
    S_CLIENT_DONE,
    SERVER_CLOSE_NOTIFY,
    echo_roundtrip,
    free_tcp_port,
    s_client_argv,
)


def _http(port: int, path: str, method: str = "GET", timeout: float = 5.0):
    """(status, headers as a dict with lower-case names, body) of one request on a fresh connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path)
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read().decode()
    finally:
        conn.close()


def _assert_probes_ok(port: int):
    for path in ("/healthz", "/readyz"):
        status, headers, body = _http(port, path)
        assert (status, body) == (200, "ok\n"), (path, status, body)
        assert headers["content-type"] == "text/plain; charset=utf-8", headers
    status, headers, body = _http(port, "/readyz", "HEAD")
    assert status == 200 and body == "" and headers["content-length"] == "3", (status, headers, body)


def test_health_listen_alone_answers_probes_only(proxied):
    hport = free_tcp_port()
    px = proxied(daemon={"health_listen": f"127.0.0.1:{hport}"})
    px.daemon.wait_for(rf"health: serving http://127\.0\.0\.1:{hport}/healthz and /readyz \(health only", timeout=5)
    _assert_probes_ok(hport)
    assert _http(hport, "/metrics")[0] == 404
    status, _, body = _http(hport, "/")
    assert status == 404 and body == "not found; this endpoint serves /healthz and /readyz\n", body
    status, headers, _ = _http(hport, "/readyz", "POST")
    assert status == 405 and headers["allow"] == "GET, HEAD", (status, headers)
    assert _http(hport, "/healthz", "DELETE")[0] == 405
    assert _http(hport, "/nowhere", "POST")[0] == 404


def test_metrics_endpoint_answers_probes_too(proxied):
    mport = free_tcp_port()
    # health_listen at the metrics address is that one endpoint, not a second bind.
    px = proxied(daemon={"metrics_listen": f"127.0.0.1:{mport}", "health_listen": f"127.0.0.1:{mport}"})
    _assert_probes_ok(mport)
    status, _, text = _http(mport, "/metrics")
    assert status == 200 and "dtlsproxy_sessions_active" in text
    assert _http(mport, "/", "HEAD")[0] == 404
    assert px.daemon.text.count(f"health: serving http://127.0.0.1:{mport}/") == 1


def test_metrics_listen_alone_answers_probes(proxied):
    mport = free_tcp_port()
    proxied(daemon={"metrics_listen": f"127.0.0.1:{mport}"})
    _assert_probes_ok(mport)


def test_reload_moves_health_listen(proxied):
    first, second = free_tcp_port(), free_tcp_port()
    px = proxied(daemon={"health_listen": f"127.0.0.1:{first}"})
    _assert_probes_ok(first)
    px.daemon.config.write_text(px.daemon.config.read_text().replace(str(first), str(second)))
    mark = px.daemon.mark()
    px.daemon.signal(signal.SIGHUP)
    px.daemon.wait_for(r"reload complete", timeout=10, start=mark)
    _assert_probes_ok(second)
    try:
        _http(first, "/healthz", timeout=2)
        raise AssertionError("the old health endpoint still answers")
    except OSError:
        pass


def _wait_status(port: int, path: str, want: int, timeout: float) -> float:
    """Seconds until ``path`` answers ``want``; AssertionError after ``timeout``."""
    start = time.monotonic()
    while True:
        status = _http(port, path, timeout=2)[0]
        elapsed = time.monotonic() - start
        if status == want:
            return elapsed
        assert elapsed < timeout, f"{path} still {status} after {elapsed:.2f}s"
        time.sleep(0.02)


def test_drain_keeps_serving_then_stops(proxied, peer, notify):
    hport = free_tcp_port()
    px = proxied(daemon={"health_listen": f"127.0.0.1:{hport}", "drain_timeout": "3s"},
                 env={"NOTIFY_SOCKET": notify.path})
    notify.wait_for("READY=1", timeout=10)
    old = peer(s_client_argv(px.host, px.port, "-msg"))
    old.wait_for(S_CLIENT_DONE, timeout=15)
    echo_roundtrip(old, b"before the drain\n")
    _assert_probes_ok(hport)

    mark = px.daemon.mark()
    sent = time.monotonic()
    px.daemon.signal(signal.SIGTERM)
    elapsed = _wait_status(hport, "/readyz", 503, timeout=1.0)
    assert elapsed < 1.0, f"/readyz took {elapsed:.2f}s to answer 503"
    assert _http(hport, "/readyz")[2] == "draining\n"
    assert _http(hport, "/healthz")[:1] == (200,)
    stopping = notify.wait_for("STOPPING=1", timeout=2)
    assert "\nSTATUS=draining: " in notify.messages[stopping][1], notify.messages[stopping]

    # Established sessions and new handshakes are served during the drain.
    echo_roundtrip(old, b"during the drain\n")
    new = peer(s_client_argv(px.host, px.port, "-msg"))
    new.wait_for(S_CLIENT_DONE, timeout=2.5)
    echo_roundtrip(new, b"new during the drain\n", timeout=2)
    assert time.monotonic() - sent < 3, "the drain ended before the checks; the test proves nothing"
    assert px.daemon.alive() and _http(hport, "/healthz")[0] == 200

    rc = px.daemon.wait(timeout=15)
    took = time.monotonic() - sent
    assert rc == 0, px.daemon.text[-3000:]
    assert took >= 2.9, f"exited {took:.2f}s after SIGTERM, before drain_timeout"
    lines = px.daemon.log_lines(mark)
    assert sum("draining: /readyz answers 503" in line for line in lines) == 1, lines
    closes = [line for line in lines if " session close " in line]
    assert len(closes) == 2 and all("reason=shutdown" in line for line in closes), closes
    assert any(line.endswith("stopped") for line in lines), lines
    # SwiftNIO logs this (and is to crash instead) when a task is scheduled on a loop that has shut down.
    assert "already shut down" not in px.daemon.text, "the loops' check-ins must stop before the loops"
    for client in (old, new):
        client.wait_for(SERVER_CLOSE_NOTIFY, timeout=5)


def test_second_sigterm_ends_the_drain(proxied, peer):
    hport = free_tcp_port()
    px = proxied(daemon={"health_listen": f"127.0.0.1:{hport}", "drain_timeout": "60s"})
    client = peer(s_client_argv(px.host, px.port, "-msg"))
    client.wait_for(S_CLIENT_DONE, timeout=15)
    echo_roundtrip(client, b"hello\n")
    px.daemon.signal(signal.SIGTERM)
    px.daemon.wait_for(r"draining: /readyz answers 503", timeout=5)
    _wait_status(hport, "/readyz", 503, timeout=1.0)
    sent = time.monotonic()
    px.daemon.signal(signal.SIGTERM)
    assert px.daemon.wait(timeout=10) == 0, px.daemon.text[-3000:]
    assert time.monotonic() - sent < 8
    px.daemon.wait_for(r"draining: ended early by a second stop request", timeout=1)
    client.wait_for(SERVER_CLOSE_NOTIFY, timeout=5)


def test_without_drain_timeout_sigterm_stops_at_once(proxied, peer):
    hport = free_tcp_port()
    px = proxied(daemon={"health_listen": f"127.0.0.1:{hport}"})
    client = peer(s_client_argv(px.host, px.port, "-msg"))
    client.wait_for(S_CLIENT_DONE, timeout=15)
    echo_roundtrip(client, b"hello\n")
    sent = time.monotonic()
    px.daemon.signal(signal.SIGTERM)
    assert px.daemon.wait(timeout=10) == 0, px.daemon.text[-3000:]
    assert time.monotonic() - sent < 5
    assert "draining" not in px.daemon.text
    # SwiftNIO logs this (and is to crash instead) when a task is scheduled on a loop that has shut down.
    assert "already shut down" not in px.daemon.text, "the loops' check-ins must stop before the loops"
    client.wait_for(SERVER_CLOSE_NOTIFY, timeout=5)
    assert sum(" session close " in line and "reason=shutdown" in line for line in px.daemon.log_lines()) == 1


def test_reload_moves_metrics_away_from_the_health_address(proxied):
    """One endpoint for both, then metrics elsewhere: the first address keeps answering probes, now without /metrics."""
    shared, moved = free_tcp_port(), free_tcp_port()
    px = proxied(daemon={"metrics_listen": f"127.0.0.1:{shared}", "health_listen": f"127.0.0.1:{shared}"})
    assert _http(shared, "/metrics")[0] == 200
    text = px.daemon.config.read_text().replace(f'metrics_listen = "127.0.0.1:{shared}"',
                                                 f'metrics_listen = "127.0.0.1:{moved}"')
    px.daemon.config.write_text(text)
    mark = px.daemon.mark()
    px.daemon.signal(signal.SIGHUP)
    px.daemon.wait_for(r"reload complete", timeout=10, start=mark)
    _assert_probes_ok(shared)
    assert _http(shared, "/metrics")[0] == 404
    assert _http(moved, "/metrics")[0] == 200
    _assert_probes_ok(moved)
