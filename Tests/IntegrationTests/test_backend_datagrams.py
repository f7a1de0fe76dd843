"""What the daemon does with backend datagrams that DTLS cannot carry as they are."""

from __future__ import annotations

import time

from harness import (
    S_CLIENT_DONE,
    echo_roundtrip,
    free_tcp_port,
    metric,
    s_client_argv,
    scrape,
)


def test_empty_backend_datagram_is_dropped_and_counted_and_the_session_survives(proxied, peer):
    """A zero-length reply cannot be one DTLS record (SSL_write refuses zero bytes):
    it is dropped under reason ``empty`` and the session keeps serving its client."""
    def reply(data: bytes) -> bytes:
        return b"" if data.startswith(b"empty") else data

    mport = free_tcp_port()
    px = proxied(reply=reply, daemon={"metrics_listen": f"127.0.0.1:{mport}"})
    client = peer(s_client_argv(px.host, px.port))
    client.wait_for(S_CLIENT_DONE, timeout=15)
    echo_roundtrip(client, b"before the empty reply\n")

    log_mark = px.daemon.mark()
    client.send(b"empty please\n")
    px.backend.wait_for_count(2, timeout=5)
    time.sleep(0.3)  # the empty reply is back at the daemon by now

    # The same session goes on: the next line still echoes, from the same backend port.
    echo_roundtrip(client, b"after the empty reply\n")
    records = px.backend.records
    assert len({addr for addr, _ in records}) == 1, records
    L = {"listener": "test"}
    _, text = scrape(mport)
    assert metric(text, "dtlsproxy_drops_total", reason="empty", **L) == 1, text
    assert metric(text, "dtlsproxy_sessions_active", **L) == 1
    assert metric(text, "dtlsproxy_sessions_closed_total", reason="error", **L) == 0
    assert metric(text, "dtlsproxy_drops_total", reason="no_session", **L) == 0
    assert "session close" not in "\n".join(px.daemon.log_lines(log_mark))
    stats = px.daemon.stats()["test"]
    assert stats["dropped_empty"] == 1 and stats["active_sessions"] == 1, stats
