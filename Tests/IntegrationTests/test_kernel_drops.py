"""Datagrams the kernel drops on the daemon's sockets are counted too.

A burst faster than the daemon reads fills a socket's receive queue and the
kernel drops the rest. The daemon reads the kernel's own per-socket drop count
(SO_MEMINFO), so what was sent is accounted for exactly: delivered + counted.
"""

from __future__ import annotations

import re
import signal
import socket
import time

from harness import (
    S_CLIENT_DONE,
    _DatagramReceiver,
    echo_roundtrip,
    free_tcp_port,
    free_udp_port,
    metric,
    report,
    s_client_argv,
    scrape,
)

BURST = 10_000
REPLY_SIZE = 300


class BurstBackend(_DatagramReceiver):
    """A UDP backend that answers ``burst`` with BURST replies of REPLY_SIZE bytes,
    sent as fast as the socket takes them, and echoes anything else."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.bursts_sent = 0
        self._start_receiving()

    def _received(self, data: bytes, addr):
        if data.startswith(b"burst"):
            for i in range(BURST):
                head = b"reply-%05d " % i
                self.sock.sendto(head + b"x" * (REPLY_SIZE - len(head) - 1) + b"\n", addr)
            self.bursts_sent += 1
        else:
            self.sock.sendto(data, addr)


def _wait_until(condition, timeout: float):
    """Polls ``condition()`` (a (done, value) pair) until done or the time is up; returns the value."""
    deadline = time.monotonic() + timeout
    while True:
        done, value = condition()
        if done or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


def _burst_through(listener: str, port: int, backend: BurstBackend, mport: int, peer) -> dict:
    """One s_client session on ``listener`` asks for a burst; returns the accounting."""
    client = peer(s_client_argv("127.0.0.1", port))
    client.wait_for(S_CLIENT_DONE, timeout=15)
    echo_roundtrip(client, b"ready\n")
    sent_before = backend.bursts_sent
    client.send(b"burst\n")
    _wait_until(lambda: (backend.bursts_sent > sent_before, None), timeout=30)
    assert backend.bursts_sent == sent_before + 1, "the backend did not finish its burst"
    L = {"listener": listener}

    def accounted():
        _, text = scrape(mport)
        out = metric(text, "dtlsproxy_datagrams_total", direction="out", **L) - 1  # the "ready" echo
        kernel = metric(text, "dtlsproxy_drops_total", reason="kernel_backend", **L)
        daemon = sum(metric(text, "dtlsproxy_drops_total", reason=r, **L) for r in ("oversize", "empty"))
        return out + kernel + daemon == BURST, (out, kernel, daemon)

    out, kernel, daemon = _wait_until(accounted, timeout=20)
    received = len(re.findall(rb"reply-\d{5}", client.output))
    return {"out": out, "kernel": kernel, "daemon": daemon, "received": received}


def test_a_backend_burst_is_delivered_or_counted_and_a_larger_backend_buffer_delivers_more(
        start_daemon, certs, peer):
    small_backend, large_backend = BurstBackend(), BurstBackend()
    try:
        mport = free_tcp_port()
        small_port, large_port = free_udp_port(), free_udp_port()
        common = {"certificate": str(certs["cert"]), "private_key": str(certs["key"])}
        daemon = start_daemon([
            {"name": "small", "listen": f"127.0.0.1:{small_port}",
             "backend": f"127.0.0.1:{small_backend.port}", "backend_receive_buffer": 4096, **common},
            {"name": "large", "listen": f"127.0.0.1:{large_port}",
             "backend": f"127.0.0.1:{large_backend.port}", "backend_receive_buffer": 16 << 20, **common},
        ], daemon={"metrics_listen": f"127.0.0.1:{mport}"})

        small = _burst_through("small", small_port, small_backend, mport, peer)
        large = _burst_through("large", large_port, large_backend, mport, peer)
        for name, result in (("small", small), ("large", large)):
            # Every reply of the burst was sent to the client or counted as dropped, exactly.
            assert result["out"] + result["kernel"] + result["daemon"] == BURST, (name, result)
            assert result["received"] <= result["out"], (name, result)
        # A 4 KiB queue cannot hold a burst the daemon encrypts one by one: the kernel drops
        # most of it, and the counter says so. A 16 MiB queue holds all of it.
        report(f"backend burst of {BURST}: backend_receive_buffer 4096 sent {small['out']:.0f}, "
               f"kernel dropped {small['kernel']:.0f}; 16 MiB sent {large['out']:.0f}, "
               f"kernel dropped {large['kernel']:.0f}")
        assert small["kernel"] > 0, small
        assert large["out"] > small["out"], (small, large)
        stats = daemon.stats()
        assert stats["small"]["dropped_kernel_backend"] == small["kernel"], stats
        assert stats["large"]["dropped_kernel_backend"] == large["kernel"], stats
    finally:
        small_backend.close()
        large_backend.close()


def test_a_client_burst_to_a_stopped_daemon_is_counted_as_kernel_drops(proxied):
    """While the daemon is stopped (SIGSTOP) a burst fills the listener socket's
    small receive queue; after SIGCONT each datagram is either read (and dropped as
    malformed: it is no DTLS record) or counted as dropped by the kernel."""
    mport = free_tcp_port()
    px = proxied(daemon={"metrics_listen": f"127.0.0.1:{mport}", "workers": 1},
                 socket_receive_buffer=4096)
    count = 500
    px.daemon.signal(signal.SIGSTOP)
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for i in range(count):
                s.sendto(b"\x00not a dtls record %04d" % i + b"." * 80, (px.host, px.port))
    finally:
        px.daemon.signal(signal.SIGCONT)
    L = {"listener": "test"}

    def accounted():
        _, text = scrape(mport)
        malformed = metric(text, "dtlsproxy_drops_total", reason="malformed", **L)
        kernel = metric(text, "dtlsproxy_drops_total", reason="kernel_listener", **L)
        return malformed + kernel == count, (malformed, kernel)

    malformed, kernel = _wait_until(accounted, timeout=10)
    assert malformed + kernel == count, (malformed, kernel)
    report(f"client burst of {count} to a stopped daemon: {malformed:.0f} read, {kernel:.0f} dropped by the kernel")
    assert kernel > 0, (malformed, kernel)
    stats = px.daemon.stats()["test"]
    assert stats["dropped_kernel_listener"] == kernel and stats["dropped_malformed"] == malformed, stats
