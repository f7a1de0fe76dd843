"""Admission: stateless cookies, hostile input, and clients that restart on the same port."""

from __future__ import annotations

import os
import select
import signal
import socket
import time

import pytest

from harness import (
    S_CLIENT_DONE,
    client_hello,
    echo_roundtrip,
    fixed_client_port,
    free_udp_port,
    parse_hello_verify,
    s_client_argv,
    socat_argv,
)

FLOOD = 1000
BATCH = 100


def _hello_flood(host: str, port: int, total: int) -> tuple[dict[int, bytes], set[int]]:
    """Send ``total`` cookieless ClientHellos, each from a distinct source port.

    Returns {source port: first reply datagram} and the set of ports used.
    Works in batches of BATCH open sockets; a socket without a reply after
    its first try is retried once, so one lost loopback datagram is not a failure.
    """
    replies: dict[int, bytes] = {}
    used: set[int] = set()
    while len(used) < total:
        batch: list[socket.socket] = []
        try:
            attempts = 0
            while len(batch) < min(BATCH, total - len(used)) and attempts < 10 * BATCH:
                attempts += 1
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                s.bind((host, 0))
                p = s.getsockname()[1]
                if p in used:
                    s.close()
                    continue
                used.add(p)
                s.setblocking(False)
                batch.append(s)
            assert batch, "could not find fresh source ports"
            for attempt in range(2):
                pending = {s for s in batch if s.getsockname()[1] not in replies}
                for s in pending:
                    s.sendto(client_hello(), (host, port))
                deadline = time.monotonic() + 3.0
                while pending and time.monotonic() < deadline:
                    ready, _, _ = select.select(list(pending), [], [], 0.2)
                    for s in ready:
                        data, _ = s.recvfrom(65536)
                        replies[s.getsockname()[1]] = data
                        pending.discard(s)
                if not pending:
                    break
        finally:
            for s in batch:
                s.close()
    return replies, used


def test_cookieless_hellos_get_hello_verify_and_allocate_nothing(proxied, peer):
    px = proxied()
    replies, used = _hello_flood(px.host, px.port, FLOOD)
    assert len(used) == FLOOD
    missing = used - replies.keys()
    assert not missing, f"{len(missing)} of {FLOOD} ClientHellos got no reply"
    bad = []
    for src, data in replies.items():
        try:
            ctype, htype, cookie = parse_hello_verify(data)
        except ValueError as e:
            bad.append((src, str(e)))
            continue
        if ctype != 22 or htype != 3 or not cookie:
            bad.append((src, data[:40].hex()))
    assert not bad, f"{len(bad)} replies were not HelloVerifyRequests, e.g. {bad[:3]}"
    # Cookies are bound to the source address: distinct ports, distinct cookies.
    cookies = {parse_hello_verify(d)[2] for d in replies.values()}
    assert len(cookies) > FLOOD // 2, "cookies do not depend on the source port"

    stats = px.daemon.stats()["test"]
    assert stats["sessions_created"] == 0, stats
    assert stats["active_sessions"] == 0, stats
    assert stats["hello_verify_sent"] >= FLOOD, stats
    assert px.backend.records == [], "no datagram may reach the backend before a handshake"
    assert b"session open" not in px.daemon.output

    client = peer(s_client_argv(px.host, px.port))
    client.wait_for(S_CLIENT_DONE, timeout=15)
    echo_roundtrip(client, b"served after the flood\n")
    stats = px.daemon.stats()["test"]
    assert stats["sessions_created"] == 1, stats
    assert stats["handshakes_completed"] == 1, stats


def test_a_valid_cookie_is_bound_to_its_source_port(proxied):
    """A cookie replayed from another port must not open a session."""
    px = proxied()
    a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        a.bind(("127.0.0.1", 0))
        b.bind(("127.0.0.1", 0))
        a.settimeout(5)
        b.settimeout(1.5)
        a.sendto(client_hello(), (px.host, px.port))
        _, htype, cookie = parse_hello_verify(a.recvfrom(65536)[0])
        assert htype == 3 and cookie
        b.sendto(client_hello(cookie=cookie), (px.host, px.port))
        try:
            data, _ = b.recvfrom(65536)
        except socket.timeout:
            data = b""
        # Either silence or a fresh HelloVerifyRequest; never a ServerHello (type 2).
        assert not data or parse_hello_verify(data)[1] == 3, data[:40].hex()
    finally:
        a.close()
        b.close()
    stats = px.daemon.stats()["test"]
    assert stats["sessions_created"] == 0, stats


def test_fragmented_client_hello_is_served(proxied, peer):
    """A client with a small MTU sends its ClientHello in several fragments (RFC 6347 4.2.3).

    With -mtu 256, s_client's ClientHello (with cookie) spans two datagrams.
    """
    px = proxied()
    client = peer(s_client_argv(px.host, px.port, "-mtu", "256"))
    client.wait_for(S_CLIENT_DONE, timeout=15)
    echo_roundtrip(client, b"small mtu client\n")


GARBAGE = [
    b"",                                              # empty datagram
    b"\x00",
    os.urandom(1),
    os.urandom(13),
    os.urandom(200),
    os.urandom(1400),
    b"\x16\xfe\xfd" + bytes(8) + b"\xff\xff",        # record header claiming 65535 bytes
    b"\x16\xfe\xfd" + bytes(8) + b"\x00\x05" + b"\x01\x00\x00",  # truncated handshake
    b"\x17\xfe\xfd\x00\x01" + bytes(6) + b"\x00\x10" + os.urandom(16),  # app data, no session
    b"\x15\xfe\xfd" + bytes(8) + b"\x00\x02\x02\x28",  # an alert from nobody
    client_hello()[:60],                              # a ClientHello cut short
    client_hello(cookie=os.urandom(32)),              # a forged cookie
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
]


def test_garbage_does_not_crash_and_service_continues(proxied, peer):
    px = proxied()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for _ in range(3):
            for g in GARBAGE:
                s.sendto(g, (px.host, px.port))
        for _ in range(200):
            s.sendto(os.urandom(1 + os.urandom(1)[0] * 4), (px.host, px.port))
    time.sleep(0.5)
    assert px.daemon.alive(), "daemon died on garbage:\n" + px.daemon.text[-3000:]
    client = peer(s_client_argv(px.host, px.port))
    client.wait_for(S_CLIENT_DONE, timeout=15)
    echo_roundtrip(client, b"still serving\n")
    stats = px.daemon.stats()["test"]
    drops = sum(v for k, v in stats.items() if k.startswith("dropped_"))
    assert drops >= 1, f"garbage was not counted as dropped: {stats}"
    assert stats["sessions_created"] == 1, stats
    assert px.daemon.alive()


def _fixed_port_client(tool: str, host: str, port: int, fixed: int) -> list[str]:
    if tool == "socat":
        return socat_argv(host, port, fixed)
    return s_client_argv(host, port, "-bind", f"127.0.0.1:{fixed}")


@pytest.mark.parametrize("tool", ["s_client", "socat"])
def test_client_restarting_on_same_port_gets_new_session(proxied, peer, tool):
    """RFC 6347 4.2.8: a client that restarts on its old address gets a new session.

    socat (1.7.4 on OpenSSL 3.0) sends its ClientHello fragmented over two
    256-byte datagrams, so that variant also shows fragmented ClientHellos work.
    """
    px = proxied()
    fixed = fixed_client_port()
    first = peer(_fixed_port_client(tool, px.host, px.port, fixed))
    echo_roundtrip(first, b"before restart\n", timeout=15)
    px.daemon.wait_for(rb"session open peer=127\.0\.0\.1:%d " % fixed, timeout=5)
    first.signal(signal.SIGKILL)  # no close_notify: the daemon still holds the session
    first.wait(5)
    assert b"session close peer=127.0.0.1:%d " % fixed not in px.daemon.output

    second = peer(_fixed_port_client(tool, px.host, px.port, fixed))
    echo_roundtrip(second, b"after restart\n", timeout=20)
    px.daemon.wait_for(
        rb"session close peer=127\.0\.0\.1:%d [^\n]*reason=replaced" % fixed, timeout=5)
    # The log is written by a thread: the second open line can come after the echo.
    assert px.daemon.wait_count(f"session open peer=127.0.0.1:{fixed} ", 2), px.daemon.log_lines()
    payloads = [p for _, p in px.backend.records]
    assert payloads == [b"before restart\n", b"after restart\n"], payloads
    stats = px.daemon.stats()["test"]
    assert stats["active_sessions"] == 1, stats
