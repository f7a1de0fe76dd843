"""Internet-facing abuse: cookie floods, malformed datagrams, a backend that goes away."""

from __future__ import annotations

import os
import random
import socket
import threading
import time

from harness import report
from harness import (
    S_CLIENT_DONE,
    EchoBackend,
    client_hello,
    echo_roundtrip,
    s_client_argv,
)

FORGED = 100_000
SOURCES = 1_024          # distinct source addresses in 127.0.0.0/8
PORTS_PER_SOURCE = 2


def _forge(port: int, stop: threading.Event, sent: list[int]):
    """Send FORGED cookieless ClientHellos from SOURCES × PORTS_PER_SOURCE sockets, over about 3 s."""
    sockets = []
    try:
        for index in range(SOURCES):
            address = f"127.{10 + index // 256 // 256}.{index // 256 % 256}.{index % 256 + 1 if index % 256 < 255 else 254}"
            for _ in range(PORTS_PER_SOURCE):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)   # replies are not read
                s.bind((address, 0))
                s.setblocking(False)
                sockets.append(s)
        hellos = [client_hello() for _ in range(64)]
        per_round = len(sockets)
        rounds = FORGED // per_round + 1
        for r in range(rounds):
            if stop.is_set():
                break
            for i, s in enumerate(sockets):
                if sent[0] >= FORGED:
                    break
                try:
                    s.sendto(hellos[(r + i) % len(hellos)], ("127.0.0.1", port))
                    sent[0] += 1
                except (BlockingIOError, OSError):
                    pass
            time.sleep(0.1)   # about 5 s in all, so the real client meets the flood
    finally:
        for s in sockets:
            s.close()


def test_cookie_flood_spends_nothing_and_real_clients_get_through(proxied, peer):
    px = proxied()
    time.sleep(0.3)
    rss_before = px.daemon.rss_kib()
    stop, sent = threading.Event(), [0]
    flood = threading.Thread(target=_forge, args=(px.port, stop, sent), daemon=True)
    flood.start()
    try:
        deadline = time.monotonic() + 30
        while sent[0] < FORGED // 4 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert sent[0] >= FORGED // 4, "the flood did not start"
        started = time.monotonic()
        client = peer(s_client_argv(px.host, px.port))
        client.wait_for(S_CLIENT_DONE, timeout=10)
        handshake = time.monotonic() - started
        flooding = flood.is_alive()
        flood.join(timeout=60)
    finally:
        stop.set()
    assert sent[0] == FORGED, f"only {sent[0]} forged hellos sent"
    assert flooding, "the flood ended before the real handshake did: it proves nothing"
    assert handshake < 2.0, f"real client needed {handshake:.2f}s during the flood"
    echo_roundtrip(client, b"through the flood\n")
    stats = px.daemon.stats()["test"]
    rss_after = px.daemon.rss_kib()
    report(f"flood: {sent[0]} forged hellos, handshake {handshake * 1000:.0f} ms, "
          f"hello_verify_sent {stats['hello_verify_sent']}, RSS {rss_before} -> {rss_after} KiB")
    assert stats["sessions_created"] == 1, stats
    assert stats["hello_verify_sent"] > FORGED // 2, stats
    assert rss_after - rss_before < 5 * 1024, f"RSS grew {rss_after - rss_before} KiB"


def _hostile_datagrams(count: int, seed: int) -> list[bytes]:
    """Random and mutated datagrams of every shape a router must survive."""
    rng = random.Random(seed)
    hello = client_hello()
    shapes = []
    for n in range(count):
        kind = n % 10
        if kind == 0:    # non-DTLS bytes
            d = rng.randbytes(rng.randrange(0, 1500))
        elif kind == 1:  # truncated record header
            d = hello[:rng.randrange(0, 13)]
        elif kind == 2:  # record length past the datagram
            d = bytearray(hello[:40]); d[11:13] = (1000).to_bytes(2, "big"); d = bytes(d)
        elif kind == 3:  # every content type, random epoch, random body
            d = bytes([rng.choice([20, 21, 22, 23, 24, 25, 0, 255]), 0xFE, rng.choice([0xFD, 0xFF, 0x00])])
            d += rng.randbytes(10) + (50).to_bytes(2, "big") + rng.randbytes(50)
        elif kind == 4:  # an alert before any handshake
            d = b"\x15\xfe\xfd" + rng.randbytes(8) + b"\x00\x02" + bytes([2, rng.randrange(256)])
        elif kind == 5:  # a ClientHello with a forged cookie
            d = client_hello(cookie=rng.randbytes(rng.choice([1, 16, 32, 255])), seq=1)
        elif kind == 6:  # a ClientHello with one byte flipped
            d = bytearray(hello); i = rng.randrange(len(d)); d[i] ^= 1 + rng.randrange(255); d = bytes(d)
        elif kind == 7:  # a ClientHello cut short
            d = hello[:rng.randrange(13, len(hello))]
        elif kind == 8:  # fragment of a ClientHello with a bogus offset
            d = bytearray(hello); d[19:22] = rng.randbytes(3); d = bytes(d)
        else:            # epoch-1 application data for no session
            d = b"\x17\xfe\xfd\x00\x01" + rng.randbytes(6) + (40).to_bytes(2, "big") + rng.randbytes(40)
        shapes.append(d)
    return shapes


def test_malformed_datagrams_create_nothing_and_crash_nothing(proxied, peer):
    px = proxied()
    datagrams = _hostile_datagrams(10_000, seed=5)
    senders = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(16)]
    try:
        for i, d in enumerate(datagrams):
            senders[i % len(senders)].sendto(d, (px.host, px.port))
            if i % 500 == 0:
                time.sleep(0.01)
    finally:
        for s in senders:
            s.close()
    time.sleep(0.5)
    assert px.daemon.alive(), px.daemon.text[-2000:]
    stats = px.daemon.stats()["test"]
    assert stats["sessions_created"] == 0, stats
    dropped = sum(v for k, v in stats.items() if k.startswith("dropped_"))
    report(f"malformed: {len(datagrams)} sent; {stats}")
    assert dropped + stats["hello_verify_sent"] >= len(datagrams) * 0.9, stats
    client = peer(s_client_argv(px.host, px.port))
    client.wait_for(S_CLIENT_DONE, timeout=15)
    echo_roundtrip(client, b"still serving\n")


def test_backend_down_then_up(proxied, peer):
    px = proxied()
    client = peer(s_client_argv(px.host, px.port))
    client.wait_for(S_CLIENT_DONE, timeout=15)
    echo_roundtrip(client, b"before the outage\n")
    backend_port = px.backend.port
    px.backend.stop()
    cpu_before = px.daemon.cpu_seconds()
    window = 3.0
    for n in range(30):
        client.send(f"into the void {n}\n".encode())
        time.sleep(window / 30)
    cpu = px.daemon.cpu_seconds() - cpu_before
    stats = px.daemon.stats()["test"]
    assert stats["backend_errors"] > 0, stats
    assert stats["active_sessions"] == 1, stats
    assert cpu < 0.5, f"the daemon used {cpu:.2f}s of CPU in {window}s with its backend down"
    revived = EchoBackend(port=backend_port)
    try:
        echo_roundtrip(client, b"after the outage\n", timeout=10)
        assert any(p == b"after the outage\n" for _, p in revived.records)
    finally:
        revived.stop()
    assert b"session close" not in px.daemon.output
    report(f"backend outage: {stats['backend_errors']} backend errors, {cpu:.3f}s CPU in {window}s")


def _half_open_handshake(host: str, port: int) -> socket.socket:
    """Complete the cookie exchange from Python, then never answer: a handshake left hanging."""
    from harness import parse_hello_verify
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(3)
    random_bytes = os.urandom(32)
    s.sendto(client_hello(random=random_bytes), (host, port))
    _, _, cookie = parse_hello_verify(s.recv(4096))
    s.sendto(client_hello(cookie=cookie, random=random_bytes, seq=1), (host, port))
    s.recv(4096)   # the ServerHello flight: the daemon holds a session now
    return s


def test_handshakes_in_progress_are_capped(proxied, peer):
    from harness import GNUTLS_DONE, gnutls_argv
    px = proxied(max_handshakes_in_progress=1, handshake_timeout="2s")
    hanging = _half_open_handshake(px.host, px.port)
    try:
        stats = px.daemon.stats()["test"]
        assert stats["handshakes_in_progress"] == 1, stats
        started = time.monotonic()
        client = peer(gnutls_argv(px.host, px.port))
        client.wait_for(GNUTLS_DONE, timeout=20)
        waited = time.monotonic() - started
        stats = px.daemon.stats()["test"]
        assert stats["dropped_handshake_limit"] >= 1, stats
        assert b"reason=handshake_timeout" in px.daemon.output
        assert waited >= 1.0, f"the client got in after {waited:.2f}s, before the slot was free"
        echo_roundtrip(client, b"after the slot freed\n")
    finally:
        hanging.close()


def test_handshake_rate_per_source(proxied, peer):
    from harness import GNUTLS_DONE, gnutls_argv
    px = proxied(daemon={"workers": 1}, handshake_rate_per_source=1)  # one loop: one bucket per source
    clients = [peer(gnutls_argv(px.host, px.port)) for _ in range(3)]
    for client in clients:
        client.wait_for(GNUTLS_DONE, timeout=30)
    stats = px.daemon.stats()["test"]
    assert stats["dropped_rate_limited"] >= 1, stats
    assert stats["handshakes_completed"] == 3, stats
