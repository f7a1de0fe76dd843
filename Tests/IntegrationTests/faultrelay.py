"""A fault-injecting UDP relay for the tests: it sits between DTLS clients and the daemon.

Per direction it can drop, duplicate, delay, reorder, corrupt one byte of,
truncate, and clamp the size of datagrams (drop, and count, what exceeds an
MTU), each at a rate drawn from its own seeded random generator, so a failing
run can be replayed with the same seed.  Each client address gets its own
upstream socket, so the daemon sees as many peers as there are clients.

Use it in-process (``FaultRelay(...)`` runs a thread) or from a shell:

    python3 faultrelay.py --target 127.0.0.1:5684 --listen 127.0.0.1:6684 \
        --to-server drop=0.2 --to-client drop=0.2,mtu=576 --seed 7 --seconds 60
"""

from __future__ import annotations

import argparse
import heapq
import random
import select
import socket
import threading
import time
from dataclasses import dataclass, field


@dataclass
class Faults:
    """What happens to datagrams going one way.  Rates are probabilities in [0, 1]."""

    drop: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0          # hold a datagram back and send it after the next one
    reorder_hold_ms: float = 100.0  # ...or after this long, when no next one comes (the last of a burst)
    delay_ms: float = 0.0         # every datagram waits this long ...
    jitter_ms: float = 0.0        # ... plus up to this much more
    corrupt: float = 0.0          # flip one random byte
    truncate: float = 0.0         # cut to a random shorter length
    mtu: int = 0                  # 0: no clamp; else drop and count datagrams longer than this

    @classmethod
    def parse(cls, text: str) -> "Faults":
        """``"drop=0.2,mtu=576"`` → Faults(drop=0.2, mtu=576)."""
        faults = cls()
        for item in filter(None, (p.strip() for p in text.split(","))):
            key, _, value = item.partition("=")
            if not hasattr(faults, key):
                raise ValueError(f"unknown fault {key!r}")
            setattr(faults, key, type(getattr(faults, key))(value))
        return faults


@dataclass
class DirectionStats:
    received: int = 0
    sent: int = 0
    dropped: int = 0
    duplicated: int = 0
    reordered: int = 0
    corrupted: int = 0
    truncated: int = 0
    over_mtu: int = 0
    largest: int = 0
    sizes: list[int] = field(default_factory=list)


class _Direction:
    def __init__(self, faults: Faults, seed: int):
        self.faults = faults
        self.rng = random.Random(seed)
        self.stats = DirectionStats()
        self.held: tuple[bytes, object] | None = None   # a datagram kept back for reordering
        self.held_until = 0.0                           # when a held datagram goes out regardless

    def apply(self, data: bytes) -> list[bytes]:
        """The datagrams to send for one received (possibly none, possibly two)."""
        f, rng, st = self.faults, self.rng, self.stats
        st.received += 1
        st.largest = max(st.largest, len(data))
        st.sizes.append(len(data))
        if f.mtu and len(data) > f.mtu:
            st.over_mtu += 1
            return []
        if rng.random() < f.drop:
            st.dropped += 1
            return []
        if f.corrupt and rng.random() < f.corrupt and data:
            i = rng.randrange(len(data))
            data = data[:i] + bytes([data[i] ^ (1 + rng.randrange(255))]) + data[i + 1:]
            st.corrupted += 1
        if f.truncate and rng.random() < f.truncate and len(data) > 1:
            data = data[:rng.randrange(1, len(data))]
            st.truncated += 1
        out = [data]
        if rng.random() < f.duplicate:
            out.append(data)
            st.duplicated += 1
        return out


class FaultRelay:
    """Relays client ⇄ ``target`` with faults; ``port`` is where clients connect."""

    def __init__(self, target: tuple[str, int], to_server: Faults | None = None,
                 to_client: Faults | None = None, seed: int = 1, listen_host: str = "127.0.0.1",
                 listen_port: int = 0, lifetime: float = 120.0):
        self.target = target
        self.seed = seed
        self.up = _Direction(to_server or Faults(), seed)
        self.down = _Direction(to_client or Faults(), seed + 1)
        self.front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.front.bind((listen_host, listen_port))
        self.port = self.front.getsockname()[1]
        self._upstream: dict[tuple, socket.socket] = {}    # client address → socket to target
        self._client_of: dict[socket.socket, tuple] = {}
        self._timers: list[tuple[float, int, socket.socket, bytes, object]] = []
        self._counter = 0
        # The last datagrams received from clients (before faults), for tests that replay them.
        self.from_clients: list[bytes] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._deadline = time.monotonic() + lifetime
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @property
    def to_server(self) -> DirectionStats:
        return self.up.stats

    @property
    def to_client(self) -> DirectionStats:
        return self.down.stats

    def _schedule(self, direction: _Direction, sock: socket.socket, data: bytes, dest):
        f = direction.faults
        for datagram in direction.apply(data):
            if f.reorder and direction.rng.random() < f.reorder and direction.held is None:
                direction.held = (datagram, (sock, dest))
                direction.held_until = time.monotonic() + f.reorder_hold_ms / 1000.0
                direction.stats.reordered += 1
                continue
            self._queue(direction, sock, datagram, dest)
            self._release_held(direction)

    def _release_held(self, direction: _Direction):
        if direction.held is not None:
            held, (hsock, hdest) = direction.held
            direction.held = None
            self._queue(direction, hsock, held, hdest)

    def _queue(self, direction: _Direction, sock, data, dest):
        f = direction.faults
        wait = (f.delay_ms + direction.rng.random() * f.jitter_ms) / 1000.0
        self._counter += 1
        heapq.heappush(self._timers, (time.monotonic() + wait, self._counter, sock, data, dest))
        direction.stats.sent += 1

    def _run(self):
        while not self._stop.is_set() and time.monotonic() < self._deadline:
            now = time.monotonic()
            for direction in (self.up, self.down):
                if direction.held is not None and direction.held_until <= now:
                    self._release_held(direction)
            while self._timers and self._timers[0][0] <= now:
                _, _, sock, data, dest = heapq.heappop(self._timers)
                try:
                    if dest is None:
                        sock.send(data)
                    else:
                        sock.sendto(data, dest)
                except OSError:
                    pass
            timeout = 0.05 if not self._timers else max(0.0, min(0.05, self._timers[0][0] - now))
            with self._lock:
                sockets = [self.front, *self._client_of]
            try:
                ready, _, _ = select.select(sockets, [], [], timeout)
            except (OSError, ValueError):
                continue  # a socket closed by rebind() since the snapshot
            for sock in ready:
                try:
                    data, addr = sock.recvfrom(65536)
                except OSError:
                    continue
                if sock is self.front:
                    self.from_clients = (self.from_clients + [data])[-64:]
                    up = self._upstream.get(addr)
                    if up is None:
                        up = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                        up.connect(self.target)
                        with self._lock:
                            self._upstream[addr] = up
                            self._client_of[up] = addr
                    self._schedule(self.up, up, data, None)
                else:
                    client = self._client_of.get(sock)
                    if client is not None:
                        self._schedule(self.down, self.front, data, client)

    def rebind(self, target: tuple[str, int] | None = None) -> list[tuple[int, int]]:
        """A NAT rebinding: every client gets a new upstream socket (a new source
        port toward the target); the old one is closed, so what the target still
        sends to the old port is lost, as behind a NAT whose binding expired.
        With ``target``, the new sockets go there from now on, as a balancer that
        hashed the new 5-tuple to another instance. Returns (old port, new port) per client."""
        moves = []
        with self._lock:
            if target is not None:
                self.target = target
            for addr, old in list(self._upstream.items()):
                new = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                new.connect(self.target)
                self._upstream[addr] = new
                del self._client_of[old]
                self._client_of[new] = addr
                moves.append((old.getsockname()[1], new.getsockname()[1]))
                old.close()
        return moves

    def stop(self):
        self._stop.set()
        self._thread.join(timeout=5)
        for sock in [self.front, *self._upstream.values()]:
            sock.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", required=True, help="daemon address HOST:PORT")
    parser.add_argument("--listen", default="127.0.0.1:0", help="where clients connect")
    parser.add_argument("--to-server", default="", help="faults client→daemon, e.g. drop=0.2")
    parser.add_argument("--to-client", default="", help="faults daemon→client, e.g. drop=0.2,mtu=576")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    host, _, port = args.target.rpartition(":")
    lhost, _, lport = args.listen.rpartition(":")
    relay = FaultRelay((host, int(port)), Faults.parse(args.to_server), Faults.parse(args.to_client),
                       seed=args.seed, listen_host=lhost, listen_port=int(lport), lifetime=args.seconds)
    print(f"faultrelay listening on {lhost}:{relay.port} seed={args.seed}", flush=True)
    time.sleep(args.seconds)
    relay.stop()
    print(f"to_server {relay.to_server}\nto_client {relay.to_client}".replace("sizes=", "n="), flush=True)


if __name__ == "__main__":
    main()
