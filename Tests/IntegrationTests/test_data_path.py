"""The data path: real DTLS peers through the daemon to a plaintext UDP backend and back."""

from __future__ import annotations

import os
import re
import time

import pytest

from harness import (
    GNUTLS_DONE,
    S_CLIENT_DONE,
    UDP_ECHO_BIN,
    Proc,
    echo_roundtrip,
    free_udp_port,
    gnutls_argv,
    s_client_argv,
)


def test_s_client_handshake_and_echo(proxied, peer):
    px = proxied()
    client = peer(s_client_argv(px.host, px.port))
    m = client.wait_for(S_CLIENT_DONE, timeout=15)
    assert m.group(1).startswith(b"ECDHE-"), client.text[-2000:]
    client.wait_for(rb"Protocol\s*:\s*DTLSv1\.2", timeout=5)
    for i in range(2):
        echo_roundtrip(client, b"hello from s_client %d\n" % i)
    payloads = [p for _, p in px.backend.records]
    assert payloads == [b"hello from s_client 0\n", b"hello from s_client 1\n"]
    log = px.daemon.wait_for(rb"session open peer=127\.0\.0\.1:\d+ listener=test .*version=DTLSv1\.2",
                             timeout=5)
    assert b"cipher=ECDHE-" in log.group(0)


def test_gnutls_cli_handshake_and_echo(proxied, peer):
    px = proxied()
    client = peer(gnutls_argv(px.host, px.port))
    client.wait_for(GNUTLS_DONE, timeout=15)
    assert "DTLS1.2" in client.text
    for i in range(2):
        echo_roundtrip(client, b"hello from gnutls %d\n" % i)
    payloads = [p for _, p in px.backend.records]
    assert payloads == [b"hello from gnutls 0\n", b"hello from gnutls 1\n"]


def test_bundled_udp_echo_backend(start_daemon, certs, procs):
    """The bundled udp-echo binary as the backend, with --prefix marking its replies."""
    backend_port = free_udp_port()
    echo = Proc([str(UDP_ECHO_BIN), "--listen", f"127.0.0.1:{backend_port}", "--prefix", "E1:"])
    procs.append(echo)
    echo.wait_for(rb"udp-echo listening on 127\.0\.0\.1:%d" % backend_port, timeout=10)
    port = free_udp_port()
    start_daemon([{
        "name": "test", "listen": f"127.0.0.1:{port}", "backend": f"127.0.0.1:{backend_port}",
        "certificate": str(certs["cert"]), "private_key": str(certs["key"]),
    }])
    client = Proc(s_client_argv("127.0.0.1", port))
    procs.append(client)
    client.wait_for(S_CLIENT_DONE, timeout=15)
    start = client.mark()
    client.send(b"through udp-echo\n")
    client.wait_for(rb"E1:through udp-echo", timeout=10, start=start)


def test_fifty_concurrent_clients(proxied, peer):
    px = proxied()
    n = 50
    clients = [peer(s_client_argv(px.host, px.port)) for _ in range(n)]
    deadline = time.monotonic() + 90
    for c in clients:
        c.wait_for(S_CLIENT_DONE, timeout=max(1.0, deadline - time.monotonic()))
    tokens = [b"client-%02d-%s" % (i, os.urandom(4).hex().encode()) for i in range(n)]
    marks = [c.mark() for c in clients]
    for c, tok in zip(clients, tokens):
        c.send(tok + b"\n")
    for c, tok, mark in zip(clients, tokens, marks):
        c.wait_for(re.escape(tok), timeout=max(1.0, deadline - time.monotonic()), start=mark)
    # Each client saw its own reply and no one else's.
    for i, c in enumerate(clients):
        out = c.output
        others = [t for j, t in enumerate(tokens) if j != i and t in out]
        assert not others, f"client {i} received other clients' data: {others}"
    # The backend saw each client from its own source port.
    port_of = {}
    for addr, payload in px.backend.records:
        for tok in tokens:
            if payload.startswith(tok):
                port_of[tok] = addr[1]
    assert len(port_of) == n, f"backend saw {len(port_of)} of {n} clients"
    assert len(set(port_of.values())) == n, "clients shared backend source ports"
    assert len(px.backend.records) == n


def test_ipv6_listener_and_backend(require_ipv6, proxied, peer):
    px = proxied(host="::1")
    px.daemon.wait_for(rb"listener test bound to \[::1\]:%d" % px.port, timeout=5)
    s = peer(s_client_argv("::1", px.port))
    s.wait_for(S_CLIENT_DONE, timeout=15)
    echo_roundtrip(s, b"over ipv6 with openssl\n")
    g = peer(gnutls_argv("::1", px.port))
    g.wait_for(GNUTLS_DONE, timeout=15)
    echo_roundtrip(g, b"over ipv6 with gnutls\n")
    recs = px.backend.records
    assert [p for _, p in recs] == [b"over ipv6 with openssl\n", b"over ipv6 with gnutls\n"]
    assert all(addr[0] == "::1" for addr, _ in recs), recs
    assert recs[0][0][1] != recs[1][0][1], "two clients must use two backend sockets"
    px.daemon.wait_for(rb"session open peer=\[::1\]:\d+ listener=test", timeout=5)


def test_large_datagram_and_boundaries(proxied, peer):
    px = proxied()
    client = peer(s_client_argv(px.host, px.port))
    client.wait_for(S_CLIENT_DONE, timeout=15)
    big = bytes((ord("a") + i % 26) for i in range(1199)) + b"\n"
    assert len(big) == 1200
    echo_roundtrip(client, big)
    lines = [b"first line\n", b"second line\n", b"third line\n"]
    for line in lines:
        echo_roundtrip(client, line)
    recs = px.backend.records
    assert recs[0][1] == big, f"backend got {len(recs[0][1])} bytes, not the 1200 sent"
    assert [p for _, p in recs[1:]] == lines, "3 lines must arrive as exactly 3 datagrams"
    assert len({addr for addr, _ in recs}) == 1, "one client, one backend source address"
    # The reply came back whole: the 1200-byte line appears intact in the client's output.
    assert big.rstrip(b"\n") in client.output


@pytest.mark.parametrize("tool", ["s_client", "gnutls-cli"])
def test_session_close_line_counts(proxied, peer, tool):
    """A client that closes cleanly produces a close line with its counters."""
    px = proxied()
    if tool == "s_client":
        c = peer(s_client_argv(px.host, px.port))
        c.wait_for(S_CLIENT_DONE, timeout=15)
    else:
        c = peer(gnutls_argv(px.host, px.port))
        c.wait_for(GNUTLS_DONE, timeout=15)
    for line in (b"one\n", b"two\n", b"three\n"):
        echo_roundtrip(c, line)
    c.close_stdin()  # both tools send close_notify at end of input
    m = px.daemon.wait_for(rb"session close peer=127\.0\.0\.1:\d+ listener=test .*", timeout=10)
    line = m.group(0).decode()
    assert "reason=close_notify" in line, line
    assert "datagrams_in=3" in line and "datagrams_out=3" in line, line
    # plaintext bytes: "one\n" + "two\n" + "three\n"
    assert "bytes_in=14" in line and "bytes_out=14" in line, line
