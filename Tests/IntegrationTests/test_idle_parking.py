"""Idle sessions park their backend socket: it keeps its port and still receives.

After a second without datagrams a session's backend socket loses its SwiftNIO
channel (the memory an idle session holds, BENCHMARKS.md) but stays open and
connected. What a user relies on: the backend still sees the same source port
for that client, a datagram the backend sends to a quiet client still reaches
it, and every close path gives the parked socket back.
"""

from __future__ import annotations

import os
import time

from harness import (
    GNUTLS_DONE,
    S_CLIENT_DONE,
    echo_roundtrip,
    free_tcp_port,
    gnutls_argv,
    metric,
    s_client_argv,
    scrape,
)


def _parked(mport: int) -> float:
    _, text = scrape(mport)
    return metric(text, "dtlsproxy_backend_sockets_parked", listener="test")


def _wait_parked(mport: int, want: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    got = None
    while time.monotonic() < deadline:
        got = _parked(mport)
        if got == want:
            return
        time.sleep(0.2)
    raise AssertionError(f"dtlsproxy_backend_sockets_parked = {got}, expected {want}")


def _udp_sockets(pid: int) -> int:
    """How many UDP sockets (listener and backend sockets) the process holds open."""
    inodes = set()
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        with open(table) as f:
            next(f)
            inodes.update(line.split()[9] for line in f)
    held = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:[") and target[8:-1] in inodes:
            held += 1
    return held


def test_parked_socket_keeps_its_port_and_delivers_backend_pushes(proxied, peer):
    mport = free_tcp_port()
    px = proxied(daemon={"metrics_listen": f"127.0.0.1:{mport}"})
    clients = [peer(s_client_argv(px.host, px.port)), peer(gnutls_argv(px.host, px.port))]
    clients[0].wait_for(S_CLIENT_DONE, timeout=15)
    clients[1].wait_for(GNUTLS_DONE, timeout=15)
    for i, client in enumerate(clients):
        echo_roundtrip(client, b"first line of client %d\n" % i)
    sources = {}
    for addr, payload in px.backend.wait_for_count(2):
        sources[int(payload.split()[-1])] = addr
    assert len(set(sources.values())) == 2, sources

    # Both go quiet: within a few sweeps both backend sockets are parked.
    _wait_parked(mport, 2)

    # The backend speaks first to a quiet client: the parked socket wakes and the client gets it.
    for i, client in enumerate(clients):
        start = client.mark()
        px.backend.sock.sendto(b"unsolicited to client %d\n" % i, sources[i])
        client.wait_for(rb"unsolicited to client %d" % i, timeout=10, start=start)

    # Quiet again, parked again; then the client speaks first.
    _wait_parked(mport, 2)
    for i, client in enumerate(clients):
        echo_roundtrip(client, b"second line of client %d\n" % i)
    by_client = {}
    for addr, payload in px.backend.wait_for_count(4):
        by_client.setdefault(int(payload.split()[-1]), set()).add(addr)
    # The backend saw each client from one and the same source port throughout.
    assert by_client == {0: {sources[0]}, 1: {sources[1]}}, by_client
    assert px.daemon.stats()["test"]["backend_errors"] == 0


def test_parked_sockets_are_closed_on_idle_timeout_and_shutdown(proxied, peer):
    mport = free_tcp_port()
    px = proxied(daemon={"metrics_listen": f"127.0.0.1:{mport}"}, idle_timeout="4s")
    baseline = _udp_sockets(px.daemon.pid)
    clients = [peer(s_client_argv(px.host, px.port)) for _ in range(4)]
    for i, client in enumerate(clients):
        client.wait_for(S_CLIENT_DONE, timeout=15)
        echo_roundtrip(client, b"line %d\n" % i)
    _wait_parked(mport, 4)
    # Four parked sockets are still four open UDP sockets: the socket itself is kept.
    assert _udp_sockets(px.daemon.pid) == baseline + 4
    # The idle timeout closes the sessions with their parked sockets.
    px.daemon.wait_for(rb"(?s)(reason=idle.*){4}", timeout=15)
    _wait_parked(mport, 0)
    deadline = time.monotonic() + 5
    while _udp_sockets(px.daemon.pid) != baseline and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _udp_sockets(px.daemon.pid) == baseline

    # Shutdown closes parked sockets too (close_notify goes out, the daemon exits cleanly).
    late = [peer(s_client_argv(px.host, px.port)) for _ in range(2)]
    for client in late:
        client.wait_for(S_CLIENT_DONE, timeout=15)
        echo_roundtrip(client, b"late\n")
    _wait_parked(mport, 2)
    px.daemon.signal(15)
    assert px.daemon.wait(timeout=15) == 0
    px.daemon.wait_for(rb"(?s)(reason=shutdown.*){2}", timeout=5)
