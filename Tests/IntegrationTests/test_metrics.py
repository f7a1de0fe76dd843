"""The Prometheus endpoint (metrics_listen): counters move by the right amounts."""

from __future__ import annotations

import signal
import socket
import time

from harness import (
    S_CLIENT_DONE,
    client_hello,
    echo_roundtrip,
    free_tcp_port,
    metric,
    s_client_argv,
    scrape,
)


def _wait_metric(port, name, value, timeout=10.0, **labels):
    deadline = time.monotonic() + timeout
    while True:
        _, text = scrape(port)
        try:
            got = metric(text, name, **labels)
        except AssertionError:
            got = None
        if got == value or time.monotonic() > deadline:
            assert got == value, f"{name}{labels} = {got}, expected {value}\n{text}"
            return text
        time.sleep(0.2)


def test_scrape_after_a_few_sessions_shows_the_right_counts(proxied, peer):
    mport = free_tcp_port()
    px = proxied(daemon={"metrics_listen": f"127.0.0.1:{mport}"}, idle_timeout="1s")
    status, text = scrape(mport)
    assert status == 200
    assert metric(text, "dtlsproxy_sessions_opened_total", listener="test") == 0

    lines = [b"one\n", b"second line\n", b"3\n"]
    clients = [peer(s_client_argv(px.host, px.port)) for _ in range(3)]
    for client in clients:
        client.wait_for(S_CLIENT_DONE, timeout=15)
        for line in lines:
            echo_roundtrip(client, line)
    # Garbage and a cookieless ClientHello: counted as drops and cookies, no session.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for _ in range(4):
            s.sendto(b"\x00not dtls", (px.host, px.port))
        s.sendto(client_hello(), (px.host, px.port))
        s.settimeout(5)
        s.recv(2048)  # the HelloVerifyRequest

    status, text = scrape(mport)
    assert status == 200
    per_client = sum(len(l) for l in lines)
    L = {"listener": "test"}
    assert metric(text, "dtlsproxy_sessions_active", **L) == 3
    assert metric(text, "dtlsproxy_sessions_opened_total", **L) == 3
    assert metric(text, "dtlsproxy_handshakes_completed_total", **L) == 3
    assert metric(text, "dtlsproxy_cookies_sent_total", **L) == 4  # one per s_client, one for the bare hello
    assert metric(text, "dtlsproxy_datagrams_total", direction="in", **L) == 9
    assert metric(text, "dtlsproxy_datagrams_total", direction="out", **L) == 9
    assert metric(text, "dtlsproxy_bytes_total", direction="in", **L) == 3 * per_client
    assert metric(text, "dtlsproxy_bytes_total", direction="out", **L) == 3 * per_client
    assert metric(text, "dtlsproxy_drops_total", reason="malformed", **L) == 4
    assert metric(text, "dtlsproxy_handshake_duration_seconds_count", **L) == 3
    assert metric(text, "dtlsproxy_handshake_duration_seconds_bucket", le="+Inf", **L) == 3
    assert "# TYPE dtlsproxy_handshake_duration_seconds histogram" in text
    assert metric(text, "dtlsproxy_sessions_closed_total", reason="idle", **L) == 0

    # After idle_timeout the three close as idle; none counts as a failed handshake.
    text = _wait_metric(mport, "dtlsproxy_sessions_closed_total", 3, reason="idle", **L)
    assert metric(text, "dtlsproxy_sessions_active", **L) == 0
    assert metric(text, "dtlsproxy_handshakes_failed_total", reason="idle", **L) == 0
    # The SIGUSR1 stats line agrees.
    stats = px.daemon.stats()["test"]
    assert stats["sessions_created"] == 3 and stats["dropped_malformed"] == 4, stats


def test_metrics_endpoint_paths_and_moving_it_on_reload(proxied):
    first, second = free_tcp_port(), free_tcp_port()
    px = proxied(daemon={"metrics_listen": f"127.0.0.1:{first}"})
    assert scrape(first, "/")[0] == 404
    assert scrape(first)[0] == 200
    px.daemon.config.write_text(px.daemon.config.read_text().replace(str(first), str(second)))
    mark = px.daemon.mark()
    px.daemon.signal(signal.SIGHUP)
    px.daemon.wait_for(r"reload complete", timeout=10, start=mark)
    status, text = scrape(second)
    assert status == 200
    assert metric(text, "dtlsproxy_reloads_total", result="success") == 1
    assert metric(text, "dtlsproxy_config_last_reload_successful") == 1
    import urllib.error
    try:
        scrape(first, timeout=2)
        raise AssertionError("the old endpoint still answers")
    except (urllib.error.URLError, ConnectionError, OSError):
        pass
