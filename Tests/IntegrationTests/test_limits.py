"""Limits an operator relies on: handshake_timeout, max_sessions, mtu, oversize replies, min_version."""

from __future__ import annotations

import re
import socket
import threading
import time

from harness import (
    S_CLIENT_DONE,
    client_hello,
    echo_roundtrip,
    parse_hello_verify,
    s_client_argv,
)


class Relay:
    """A UDP relay between one client and the daemon that records datagram sizes each way."""

    def __init__(self, target: tuple[str, int], lifetime: float = 30.0):
        self.target = target
        self.front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.front.bind(("127.0.0.1", 0))
        self.back = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.back.bind(("127.0.0.1", 0))
        self.port = self.front.getsockname()[1]
        self.to_client: list[int] = []
        self.client = None
        self._stop = threading.Event()
        self._deadline = time.monotonic() + lifetime
        self._threads = [threading.Thread(target=self._pump, args=(self.front, True), daemon=True),
                         threading.Thread(target=self._pump, args=(self.back, False), daemon=True)]
        for t in self._threads:
            t.start()

    def _pump(self, sock: socket.socket, from_client: bool):
        sock.settimeout(0.2)
        while not self._stop.is_set() and time.monotonic() < self._deadline:
            try:
                data, addr = sock.recvfrom(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            if from_client:
                self.client = addr
                self.back.sendto(data, self.target)
            elif self.client:
                self.to_client.append(len(data))
                self.front.sendto(data, self.client)

    def stop(self):
        self._stop.set()
        for t in self._threads:
            t.join(timeout=2)
        self.front.close()
        self.back.close()


def test_no_datagram_to_a_client_exceeds_mtu(proxied, peer):
    px = proxied(mtu=576)
    relay = Relay((px.host, px.port))
    try:
        client = peer(s_client_argv("127.0.0.1", relay.port))
        client.wait_for(S_CLIENT_DONE, timeout=15)
        echo_roundtrip(client, b"m" * 400 + b"\n")
        assert relay.to_client, "nothing came back through the relay"
        assert max(relay.to_client) <= 576, f"datagram sizes to the client: {relay.to_client}"
    finally:
        relay.stop()


def test_oversize_backend_reply_is_dropped_and_counted(proxied, peer):
    def reply(data: bytes) -> bytes:
        return b"B" * 3000 if data.startswith(b"big") else data
    px = proxied(reply=reply)
    client = peer(s_client_argv(px.host, px.port))
    client.wait_for(S_CLIENT_DONE, timeout=15)
    mark = client.mark()
    client.send(b"big please\n")
    px.backend.wait_for_count(1, timeout=5)
    time.sleep(0.5)
    assert b"BBBB" not in client.output[mark:], "a reply larger than one record must not be split"
    echo_roundtrip(client, b"small after big\n")
    stats = px.daemon.stats()["test"]
    assert stats["dropped_oversize"] >= 1, stats
    assert stats["active_sessions"] == 1, stats


def test_handshake_timeout_releases_the_half_open_session(proxied):
    px = proxied(handshake_timeout="2s")
    time.sleep(0.5)
    baseline = px.daemon.fd_count()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.settimeout(5)
        s.sendto(client_hello(), (px.host, px.port))
        _, htype, cookie = parse_hello_verify(s.recvfrom(65536)[0])
        assert htype == 3 and cookie
        s.sendto(client_hello(cookie=cookie, seq=1), (px.host, px.port))
        flight, _ = s.recvfrom(65536)
        assert flight[0] == 22 and flight[13] == 2, f"expected a ServerHello: {flight[:30].hex()}"
        # Now fall silent. The daemon may retransmit; it must give up after 2s.
        src = s.getsockname()[1]
        started = time.monotonic()
        line = px.daemon.wait_for(
            rb"session close peer=127\.0\.0\.1:%d [^\n]*reason=handshake_timeout" % src, timeout=15)
    assert time.monotonic() - started < 10, "handshake_timeout=2s took too long"
    assert b"session open peer=127.0.0.1:%d " % src not in px.daemon.output, line.group(0)
    deadline = time.monotonic() + 5
    while px.daemon.fd_count() != baseline and time.monotonic() < deadline:
        time.sleep(0.1)
    assert px.daemon.fd_count() == baseline
    stats = px.daemon.stats()["test"]
    assert stats["active_sessions"] == 0, stats
    assert stats["handshakes_failed"] >= 1, stats


def test_max_sessions_is_enforced(proxied, peer):
    px = proxied(max_sessions=2)
    first = [peer(s_client_argv(px.host, px.port)) for _ in range(2)]
    for c in first:
        c.wait_for(S_CLIENT_DONE, timeout=15)
        echo_roundtrip(c, b"inside the limit\n")
    extra = peer(s_client_argv(px.host, px.port))
    time.sleep(4)
    assert not re.search(S_CLIENT_DONE, extra.output), "a third session was admitted"
    stats = px.daemon.stats()["test"]
    assert stats["active_sessions"] == 2, stats
    assert stats["dropped_session_limit"] >= 1, stats
    extra.kill()
    # Free a slot: the next client gets in.
    first[0].close_stdin()
    px.daemon.wait_for(rb"session close [^\n]*reason=close_notify", timeout=10)
    late = peer(s_client_argv(px.host, px.port))
    late.wait_for(S_CLIENT_DONE, timeout=15)
    echo_roundtrip(late, b"after a slot freed\n")


def test_dtls_1_0_client_refused_by_default(proxied, peer):
    px = proxied()  # min_version defaults to "1.2"
    old = peer(["openssl", "s_client", "-dtls1", "-connect", f"127.0.0.1:{px.port}",
                "-nocommands", "-cipher", "DEFAULT:@SECLEVEL=0"])
    time.sleep(4)
    assert not re.search(S_CLIENT_DONE, old.output), old.text[-1500:]
    assert px.daemon.alive()
    modern = peer(s_client_argv(px.host, px.port))
    modern.wait_for(S_CLIENT_DONE, timeout=15)
