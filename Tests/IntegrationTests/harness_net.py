"""Network helpers of the integration harness: ports, plain UDP peers, the Python
echo backend, the stand-in for systemd's NOTIFY_SOCKET, and the metrics endpoint.

``harness`` re-exports all of it; tests import from there.
"""

from __future__ import annotations

import os
import random
import re
import socket
import threading
import time
from pathlib import Path


def endpoint(host: str, port: int) -> str:
    """``host:port`` with an IPv6 host in brackets: a ``listen``, ``backend`` or ``server`` value."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def endpoint_port(text: str) -> int:
    """The port of a ``host:port`` value."""
    return int(text.rsplit(":", 1)[1])


def udp_client(host: str = "127.0.0.1", timeout: float = 5.0) -> socket.socket:
    """A plain UDP peer: a socket bound to a free port of ``host``, every receive bounded by ``timeout``."""
    s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((host, 0))
    s.settimeout(timeout)
    return s


def udp_roundtrip(sock: socket.socket, port: int, payloads: list[bytes], window: int = 50,
                  host: str = "127.0.0.1") -> list[bytes]:
    """Send ``payloads`` to host:port in windows, collecting every reply; bounded by the socket timeout."""
    replies: list[bytes] = []
    for start in range(0, len(payloads), window):
        batch = payloads[start:start + window]
        for p in batch:
            sock.sendto(p, (host, port))
        for _ in batch:
            replies.append(sock.recv(65536))
    return replies


# --------------------------------------------------------------------------- network

def free_udp_port(host: str = "127.0.0.1") -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def fixed_client_port(host: str = "127.0.0.1") -> int:
    """A free UDP port for a client to bind itself (``s_client -bind``), below the
    kernel's ephemeral range: no socket bound to port 0 (the daemon's backend
    sockets, other clients) can take it while a test holds it across reconnects."""
    low, _ = (int(x) for x in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for _ in range(200):
        port = random.randrange(10000, low)
        with socket.socket(family, socket.SOCK_DGRAM) as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
            return port
    raise AssertionError(f"no free UDP port between 10000 and {low} on {host}")


def ipv6_available() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def scrape(port: int, path: str = "/metrics", timeout: float = 5.0) -> tuple[int, str]:
    """(HTTP status, body) of a GET on 127.0.0.1:port."""
    import urllib.error
    import urllib.request
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def metric(text: str, name: str, **labels: str) -> float:
    """The value of the series ``name{labels}`` in Prometheus text; AssertionError if absent."""
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        m = re.match(r"^(\w+)(?:\{(.*)\})? (\S+)$", line)
        if not m or m.group(1) != name:
            continue
        got = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2) or ""))
        if got == labels:
            return float(m.group(3))
    raise AssertionError(f"no series {name}{labels} in:\n{text}")


def free_tcp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------- backend

class _DatagramReceiver:
    """A bound datagram socket ``self.sock`` and a thread that hands every
    datagram to ``_received(data, addr)`` until ``close()``.

    Subclasses bind ``self.sock``, set up what ``_received`` uses, then call
    ``_start_receiving()``. The socket's 0.2 s timeout is how soon the thread
    sees the stop flag; a socket error (closed under it) ends the thread.
    """

    def _start_receiving(self):
        self.sock.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                data, addr = self.sock.recvfrom(65536)
            except (socket.timeout, BlockingIOError):
                continue
            except OSError:
                return
            self._received(data, addr)

    def _received(self, data: bytes, addr):
        raise NotImplementedError

    def close(self):
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()


class EchoBackend(_DatagramReceiver):
    """A UDP echo service in a thread that records (source address, payload) of every datagram."""

    def __init__(self, host: str = "127.0.0.1", prefix: bytes = b"", reply=None, port: int = 0):
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.bind((host, port))
        self.host, self.port = host, self.sock.getsockname()[1]
        self.prefix = prefix
        self.reply = reply or (lambda data: self.prefix + data)  # payload -> reply bytes
        self._records: list[tuple[tuple, bytes]] = []
        self._lock = threading.Lock()
        self._start_receiving()

    def _received(self, data: bytes, addr):
        with self._lock:
            self._records.append((addr, data))
        try:
            self.sock.sendto(self.reply(data), addr)
        except OSError:
            pass

    @property
    def records(self) -> list[tuple[tuple, bytes]]:
        with self._lock:
            return list(self._records)

    def wait_for_count(self, n: int, timeout: float = 10.0) -> list[tuple[tuple, bytes]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            recs = self.records
            if len(recs) >= n:
                return recs
            time.sleep(0.05)
        return self.records

    def stop(self):
        """The same as ``close()``: the name the fixtures and tests use for a backend."""
        self.close()


# --------------------------------------------------------------------------- systemd

class NotifyRecorder(_DatagramReceiver):
    """A unix datagram socket standing in for systemd's NOTIFY_SOCKET.

    A thread records every message with its arrival time (time.monotonic()).
    """

    def __init__(self, directory: str):
        self.path = os.path.join(directory, "notify.sock")  # short: sun_path is 108 bytes
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self._messages: list[tuple[float, str]] = []
        self._cond = threading.Condition()
        self._start_receiving()

    def _received(self, data: bytes, addr):
        with self._cond:
            self._messages.append((time.monotonic(), data.decode("utf-8", "replace")))
            self._cond.notify_all()

    @property
    def messages(self) -> list[tuple[float, str]]:
        with self._cond:
            return list(self._messages)

    def wait_for(self, assignment: str, start: int = 0, timeout: float = 10.0) -> int:
        """Index of the first message at or after ``start`` with the line ``assignment``
        (``READY=1``) or, for ``KEY=``, any line starting with it."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for i in range(start, len(self._messages)):
                    lines = self._messages[i][1].split("\n")
                    if (assignment in lines if not assignment.endswith("=")
                            else any(l.startswith(assignment) for l in lines)):
                        return i
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"no {assignment!r} on NOTIFY_SOCKET within {timeout}s; "
                                         f"got {[m for _, m in self._messages[start:]]}")
                self._cond.wait(min(remaining, 0.5))
