"""Plain helpers for the integration tests: processes, peers, backend, config, records.

Nothing here is a pytest fixture; ``conftest.py`` wraps these.  Every wait
takes a timeout and every loop is bounded.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import socket
import struct
import subprocess
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DAEMON_BIN = Path(os.environ.get("DTLS_PROXYD_BIN", REPO / ".build" / "debug" / "dtls-proxyd"))
UDP_ECHO_BIN = Path(os.environ.get("UDP_ECHO_BIN", REPO / ".build" / "debug" / "udp-echo"))

# Variables a test run must not leak into the daemon from the caller's environment.
_SCRUBBED_ENV = ("NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES",
                 "JOURNAL_STREAM", "WATCHDOG_USEC", "WATCHDOG_PID")


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED_ENV}
    env.update(extra or {})
    return env


# --------------------------------------------------------------------------- processes

class Proc:
    """A child process with stdin piped and stdout+stderr collected by a thread.

    ``wait_for`` searches the collected output (bytes regex) from an offset,
    so a test can wait for something that happens after a given point.
    """

    def __init__(self, argv: list[str], env: dict[str, str] | None = None, stderr_apart=False):
        self.argv = argv
        self.p = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE if stderr_apart else subprocess.STDOUT,
            env=clean_env(env), start_new_session=True,
        )
        self.pid = self.p.pid
        self._buf = bytearray()
        self._cond = threading.Condition()
        self._eof = False
        stream = self.p.stderr if stderr_apart else self.p.stdout
        self._reader = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._reader.start()
        if stderr_apart:  # keep stdout drained too, into its own buffer
            self.stdout_buf = bytearray()
            threading.Thread(target=self._drain, args=(self.p.stdout, self.stdout_buf),
                             daemon=True).start()

    def _read(self, stream):
        while True:
            chunk = stream.read1(65536) if hasattr(stream, "read1") else stream.read(4096)
            with self._cond:
                if not chunk:
                    self._eof = True
                    self._cond.notify_all()
                    return
                self._buf += chunk
                self._cond.notify_all()

    @staticmethod
    def _drain(stream, buf):
        while chunk := stream.read1(65536):
            buf += chunk

    # -- output
    @property
    def output(self) -> bytes:
        with self._cond:
            return bytes(self._buf)

    @property
    def text(self) -> str:
        return self.output.decode("utf-8", "replace")

    def mark(self) -> int:
        with self._cond:
            return len(self._buf)

    def wait_for(self, pattern: bytes | str, timeout: float = 10.0, start: int = 0):
        """The first match of ``pattern`` at or after ``start``; AssertionError on timeout/EOF."""
        if isinstance(pattern, str):
            pattern = pattern.encode()
        rx = re.compile(pattern, re.MULTILINE)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                m = rx.search(self._buf, start)
                if m:
                    return m
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._eof:
                    break
                self._cond.wait(min(remaining, 0.5))
        state = "exited" if self._eof else f"no match within {timeout}s"
        raise AssertionError(
            f"{self.argv[0]}: {state} waiting for {pattern!r}; output tail:\n"
            + self.text[-3000:])

    # -- input and life
    def send(self, data: bytes):
        self.p.stdin.write(data)
        self.p.stdin.flush()

    def close_stdin(self):
        try:
            self.p.stdin.close()
        except OSError:
            pass

    def signal(self, sig: int):
        if self.p.poll() is None:
            os.kill(self.pid, sig)

    def wait(self, timeout: float) -> int:
        return self.p.wait(timeout=timeout)

    def alive(self) -> bool:
        return self.p.poll() is None

    def kill(self):
        """SIGKILL the process (only this pid and the session it leads), then reap it."""
        if self.p.poll() is None:
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            self.p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        for f in (self.p.stdin, self.p.stdout, self.p.stderr):
            try:
                if f:
                    f.close()
            except OSError:
                pass


_KV = re.compile(rb"(\w+)=(\S+)")


def parse_kv(line: bytes | str) -> dict[str, str]:
    if isinstance(line, str):
        line = line.encode()
    return {k.decode(): v.decode() for k, v in _KV.findall(line)}


class Daemon(Proc):
    """The real dtls-proxyd on a config file; its stderr log is what ``wait_for`` searches."""

    def __init__(self, config: Path, env: dict[str, str] | None = None, args=()):
        self.config = config
        super().__init__([str(DAEMON_BIN), "--config", str(config), *args], env=env,
                         stderr_apart=True)

    def wait_ready(self, timeout: float = 30.0):
        self.wait_for(rb"\bready:", timeout=timeout)

    def log_lines(self, start: int = 0) -> list[str]:
        return self.output[start:].decode("utf-8", "replace").splitlines()

    def stats(self, timeout: float = 10.0) -> dict[str, dict[str, int]]:
        """SIGUSR1, then the per-listener stats lines logged after it, as ints."""
        start = self.mark()
        self.signal(signal.SIGUSR1)
        self.wait_for(rb"\bstats listener=\S+", timeout=timeout, start=start)
        time.sleep(0.3)  # let every listener's line arrive
        result: dict[str, dict[str, int]] = {}
        for line in self.log_lines(start):
            if re.search(r"\bstats listener=", line):
                kv = parse_kv(line.split(" stats ", 1)[1])
                name = kv.pop("listener")
                result[name] = {k: int(v) for k, v in kv.items() if v.isdigit()}
        return result

    def fd_count(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def rss_kib(self, field: str = "VmRSS") -> int:
        """Resident memory, from /proc/PID/status: ``VmRSS`` in all, or one of its
        parts, ``RssAnon`` (heap, stacks: what the daemon allocated) and
        ``RssFile`` (mapped files, above all the binary's and libraries' code)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        raise AssertionError(f"no {field} in /proc status")

    def cpu_seconds(self) -> float:
        """User + system CPU time the daemon has used so far."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        self.signal(sig)
        return self.wait(timeout)


def run_daemon_once(config: Path, *args: str, timeout: float = 20.0) -> subprocess.CompletedProcess:
    """Run the daemon to completion (for failures and --check-config); kill it at the timeout."""
    argv = [str(DAEMON_BIN), *args, "--config", str(config)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=clean_env(),
                          stdin=subprocess.DEVNULL)


# --------------------------------------------------------------------------- peers

def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def s_client_argv(host: str, port: int, *extra: str) -> list[str]:
    return ["openssl", "s_client", "-dtls1_2", "-connect", _hostport(host, port),
            "-nocommands", *extra]


def gnutls_argv(host: str, port: int, *extra: str) -> list[str]:
    return ["gnutls-cli", "--udp", "--insecure", "-p", str(port), *extra, host]


def socat_argv(host: str, port: int, bind_port: int) -> list[str]:
    return ["socat", "-",
            f"OPENSSL-DTLS-CLIENT:{host}:{port},verify=0,bind=127.0.0.1:{bind_port}"]


S_CLIENT_DONE = rb"New, \S+, Cipher is (?!\(NONE\))(\S+)"
GNUTLS_DONE = rb"Handshake was completed"
# s_client -msg: a received alert record whose body is warning(1) close_notify(0).
# OpenSSL 3.0 prints DTLS records as "Not TLS data ... content_type=21"; later
# versions print "Alert"; accept both.
SERVER_CLOSE_NOTIFY = rb"<<< [^\n]*(?:content_type=21|Alert)[^\n]*\n\s+01 00"


def echo_roundtrip(proc: Proc, line: bytes, timeout: float = 10.0) -> re.Match:
    """Send one line (one datagram) and wait until it comes back."""
    start = proc.mark()
    proc.send(line)
    return proc.wait_for(re.escape(line.rstrip(b"\n")), timeout=timeout, start=start)


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


# --------------------------------------------------------------------------- config

def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return json.dumps(str(v))  # a JSON string is a valid TOML basic string here


def config_text(listeners: list[dict], daemon: dict | None = None) -> str:
    daemon = {"log_level": "info", **(daemon or {})}
    out = ["[daemon]"] + [f"{k} = {_toml_value(v)}" for k, v in daemon.items()]
    for listener in listeners:
        out += ["", "[[listener]]"]
        out += [f"{k} = {_toml_value(v)}" for k, v in listener.items() if k != "routes"]
        for route in listener.get("routes", []):  # [[listener.route]] blocks follow their listener
            out += ["", "[[listener.route]]"]
            out += [f"{k} = {_toml_value(v)}" for k, v in route.items()]
    return "\n".join(out) + "\n"


def write_config(path: Path, listeners: list[dict], daemon: dict | None = None) -> Path:
    path.write_text(config_text(listeners, daemon))
    return path


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


# --------------------------------------------------------------------------- DTLS records

def _u16(n: int) -> bytes:
    return struct.pack("!H", n)


def _u24(n: int) -> bytes:
    return struct.pack("!I", n)[1:]


def _ext(ext_type: int, body: bytes) -> bytes:
    return _u16(ext_type) + _u16(len(body)) + body


def client_hello(cookie: bytes = b"", random: bytes | None = None, seq: int = 0) -> bytes:
    """A DTLS 1.2 ClientHello in one epoch-0 record; ``seq`` is message_seq and record seq.

    The first ClientHello has seq 0; the one repeating it with a cookie has seq 1.

    ECDHE AEAD suites, supported_groups, ec_point_formats,
    signature_algorithms, extended_master_secret and renegotiation_info.
    """
    random = random if random is not None else os.urandom(32)
    suites = [0xC02B, 0xC02C, 0xC02F, 0xC030, 0xCCA9, 0xCCA8]
    groups = [0x0017, 0x001D, 0x0018]           # secp256r1, x25519, secp384r1
    sigalgs = [0x0403, 0x0503, 0x0804, 0x0401]
    exts = (_ext(0x000A, _u16(2 * len(groups)) + b"".join(_u16(g) for g in groups))
            + _ext(0x000B, b"\x01\x00")
            + _ext(0x000D, _u16(2 * len(sigalgs)) + b"".join(_u16(s) for s in sigalgs))
            + _ext(0x0017, b"")
            + _ext(0xFF01, b"\x00"))
    body = (b"\xfe\xfd" + random + b"\x00" + bytes([len(cookie)]) + cookie
            + _u16(2 * len(suites)) + b"".join(_u16(s) for s in suites)
            + b"\x01\x00" + _u16(len(exts)) + exts)
    handshake = b"\x01" + _u24(len(body)) + _u16(seq) + _u24(0) + _u24(len(body)) + body
    return b"\x16\xfe\xff" + _u16(0) + seq.to_bytes(6, "big") + _u16(len(handshake)) + handshake


def parse_hello_verify(datagram: bytes) -> tuple[int, int, bytes]:
    """(record content type, handshake type, cookie) of a HelloVerifyRequest datagram.

    Raises ValueError when the datagram is too short to be one.
    """
    if len(datagram) < 13 + 12 + 3:
        raise ValueError(f"datagram too short for a HelloVerifyRequest: {datagram.hex()}")
    length = struct.unpack("!H", datagram[11:13])[0]
    handshake = datagram[13:13 + length]
    body = handshake[12:]
    cookie_len = body[2]
    cookie = body[3:3 + cookie_len]
    if len(cookie) != cookie_len:
        raise ValueError(f"truncated cookie: {datagram.hex()}")
    return datagram[0], handshake[0], cookie


# --------------------------------------------------------------------------- test PKI

def _openssl(*args: str):
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=30)


def make_ca(directory: Path, name: str) -> tuple[Path, Path]:
    """A self-signed ECDSA P-256 CA: (certificate, key) as ``NAME.pem`` / ``NAME.key``."""
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", f"/CN={name}",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    os.chmod(key, 0o600)
    return cert, key


def issue_client_cert(directory: Path, ca: tuple[Path, Path], name: str, cn: str,
                      san: str | None = None) -> tuple[Path, Path]:
    """A client certificate (clientAuth) for ``cn`` issued by ``ca``, optional SAN
    (e.g. ``"URI:spiffe://example.org/x,DNS:a.example.org"``): (certificate, key)."""
    cert, key, csr = (directory / f"{name}.pem", directory / f"{name}.key",
                      directory / f"{name}.csr")
    ext = directory / f"{name}.ext"
    ext.write_text("extendedKeyUsage=clientAuth\n" + (f"subjectAltName={san}\n" if san else ""))
    _openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={cn}")
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca[0]), "-CAkey", str(ca[1]),
             "-set_serial", str(int.from_bytes(os.urandom(8), "big")), "-days", "2",
             "-out", str(cert), "-extfile", str(ext))
    os.chmod(key, 0o600)
    return cert, key


def issue_intermediate_ca(directory: Path, ca: tuple[Path, Path], name: str) -> tuple[Path, Path]:
    """A CA certificate signed by ``ca`` (one level down): (certificate, key)."""
    cert, key, csr = directory / f"{name}.pem", directory / f"{name}.key", directory / f"{name}.csr"
    ext = directory / f"{name}.ext"
    ext.write_text("basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n")
    _openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={name}")
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca[0]), "-CAkey", str(ca[1]),
             "-set_serial", str(int.from_bytes(os.urandom(8), "big")), "-days", "2",
             "-out", str(cert), "-extfile", str(ext))
    os.chmod(key, 0o600)
    return cert, key


def write_secret(path: Path, text: str | bytes) -> Path:
    """Write a key-like file readable by its owner only (the daemon refuses looser modes)."""
    data = text.encode() if isinstance(text, str) else text
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(path, 0o600)
    return path


# s_client -msg: a received warning(1) no_renegotiation(100) alert record.
SERVER_NO_RENEGOTIATION = rb"<<< [^\n]*(?:content_type=21|Alert)[^\n]*\n\s+01 64"


# --------------------------------------------------------------------------- figures

# Measured figures the run reports at its end (see conftest.pytest_terminal_summary),
# so that they show in `make test` output even when every test passes.
FIGURES: list[str] = []


def report(line: str):
    print(line)
    FIGURES.append(line)


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


def make_certificate(directory: Path, stem: str, cn: str = "localhost") -> tuple[Path, Path]:
    """A self-signed ECDSA P-256 certificate and key, ``stem.pem`` and ``stem.key``."""
    cert, key = directory / f"{stem}.pem", directory / f"{stem}.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", f"/CN={cn}",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True, timeout=30)
    return cert, key


def fingerprint(pem: bytes | str) -> str:
    """SHA-256 fingerprint of the first PEM certificate in ``pem``."""
    if isinstance(pem, str):
        pem = pem.encode()
    m = re.search(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", pem, re.S)
    assert m, f"no certificate in {pem[:300]!r}"
    r = subprocess.run(["openssl", "x509", "-noout", "-fingerprint", "-sha256"], input=m.group(0),
                       capture_output=True, check=True, timeout=10)
    return r.stdout.decode().strip().split("=", 1)[1]


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
