"""A cookie the daemon refuses costs the client one extra round trip, not its handshake.

Two daemons with different cookie secrets (each draws its own at start) sit
behind a relay that sends the client's first datagram to the first daemon and
everything after it to the second, as a load balancer that re-hashes a client
between its two ClientHellos would. The second daemon refuses the first one's
cookie and answers with a new HelloVerifyRequest, which must echo the
ClientHello's message_seq (1) and record sequence number (RFC 6347 §4.2.1): a
client that already got one HelloVerifyRequest takes one numbered 0 for a
stale retransmission and resends the old cookie until it gives up.

Peers: openssl s_client and gnutls-cli.
"""

from __future__ import annotations

import select
import socket
import threading
import time

import pytest

from harness import (
    GNUTLS_DONE,
    S_CLIENT_DONE,
    free_udp_port,
    gnutls_argv,
    s_client_argv,
)


class MovingRelay:
    """Client ⇄ relay ⇄ daemon: the first client datagram goes to ``first``, every later one to ``second``.

    Replies from either daemon go back to the client. Stops by itself after ``lifetime`` seconds.
    """

    def __init__(self, first: tuple[str, int], second: tuple[str, int], lifetime: float = 60.0):
        self.targets = (first, second)
        self.front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.front.bind(("127.0.0.1", 0))
        self.port = self.front.getsockname()[1]
        self.back = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.back.bind(("127.0.0.1", 0))
        self.client: tuple[str, int] | None = None
        self.forwarded = [0, 0]     # datagrams sent to first, second
        self._stop = threading.Event()
        self._deadline = time.monotonic() + lifetime
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set() and time.monotonic() < self._deadline:
            ready, _, _ = select.select([self.front, self.back], [], [], 0.1)
            for sock in ready:
                data, address = sock.recvfrom(65535)
                if sock is self.front:
                    self.client = address
                    which = 0 if sum(self.forwarded) == 0 else 1
                    self.forwarded[which] += 1
                    self.back.sendto(data, self.targets[which])
                elif self.client is not None:
                    self.front.sendto(data, self.client)

    def close(self):
        self._stop.set()
        self._thread.join(timeout=2)
        self.front.close()
        self.back.close()


@pytest.fixture
def moving_relay():
    relays = []

    def start(first: int, second: int) -> MovingRelay:
        relay = MovingRelay(("127.0.0.1", first), ("127.0.0.1", second))
        relays.append(relay)
        return relay
    yield start
    for relay in relays:
        relay.close()


@pytest.mark.parametrize("client", ["s_client", "gnutls-cli"])
def test_client_retries_with_the_second_instances_cookie(client, start_daemon, echo_backend, peer, certs, moving_relay):
    daemons, backends = [], []
    for tag in (b"FIRST:", b"SECOND:"):
        backend = echo_backend(prefix=tag)
        port = free_udp_port()
        daemons.append((start_daemon([{
            "name": "edge", "listen": f"127.0.0.1:{port}", "backend": f"127.0.0.1:{backend.port}",
            "certificate": str(certs["cert"]), "private_key": str(certs["key"]),
        }], name=f"{tag.decode()[:-1].lower()}.toml"), port))
        backends.append(backend)
    (first, first_port), (second, second_port) = daemons
    relay = moving_relay(first_port, second_port)
    started = time.monotonic()
    if client == "s_client":
        c = peer(s_client_argv("127.0.0.1", relay.port, "-ign_eof"))
        c.wait_for(S_CLIENT_DONE, timeout=10)
    else:
        c = peer(gnutls_argv("127.0.0.1", relay.port))
        c.wait_for(GNUTLS_DONE, timeout=10)
    elapsed = time.monotonic() - started
    # One extra round trip on loopback, not a retransmission timeout (1 s and up).
    assert elapsed < 0.9, f"handshake took {elapsed:.2f} s: the client waited for a retransmission"
    start = c.mark()
    c.send(b"after the refused cookie\n")
    c.wait_for(rb"SECOND:after the refused cookie", timeout=5, start=start)
    assert backends[0].records == []
    # The second instance refused the first one's cookie once, then admitted the client.
    stats = second.stats()["edge"]
    assert stats["dropped_bad_cookie"] == 1, stats
    assert stats["hello_verify_sent"] == 1 and stats["handshakes_completed"] == 1, stats
    assert first.stats()["edge"]["hello_verify_sent"] == 1
