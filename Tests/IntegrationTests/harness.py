"""Plain helpers for the integration tests: processes, peers, config, figures, and (from
``harness_net`` and ``harness_tls``, re-exported here) ports, plain UDP peers, the echo
backend, the metrics endpoint, DTLS records and the test PKI.

Nothing here is a pytest fixture; ``conftest.py`` wraps these.  Every wait
takes a timeout and every loop is bounded.  Tests import every helper from here.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

from harness_net import (  # noqa: F401 (re-exported)
    EchoBackend,
    NotifyRecorder,
    _DatagramReceiver,
    endpoint,
    endpoint_port,
    fixed_client_port,
    free_tcp_port,
    free_udp_port,
    ipv6_available,
    metric,
    scrape,
    udp_client,
    udp_roundtrip,
)
from harness_tls import (  # noqa: F401 (re-exported)
    client_hello,
    fingerprint,
    issue_client_cert,
    issue_intermediate_ca,
    make_ca,
    make_certificate,
    parse_hello_verify,
    write_secret,
)

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

    def wait_count(self, text: str, n: int, timeout: float = 5.0) -> bool:
        """Whether the output holds exactly ``n`` occurrences of ``text`` once it has at least
        ``n`` or ``timeout`` has passed."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.text.count(text) < n:
            time.sleep(0.1)
        return self.text.count(text) == n

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

    def stats(self, timeout: float = 10.0, kind: str = "listener") -> dict[str, dict[str, int]]:
        """SIGUSR1, then the stats lines logged after it of every listener (or, with
        ``kind="connector"``, every connector), as ints, by name."""
        start = self.mark()
        self.signal(signal.SIGUSR1)
        self.wait_for(rb"\bstats " + kind.encode() + rb"=\S+", timeout=timeout, start=start)
        time.sleep(0.3)  # let every listener's (connector's) line arrive
        result: dict[str, dict[str, int]] = {}
        for line in self.log_lines(start):
            if re.search(rf"\bstats {kind}=", line):
                kv = parse_kv(line.split(" stats ", 1)[1])
                name = kv.pop(kind)
                result[name] = {k: int(v) for k, v in kv.items() if v.isdigit()}
        return result

    def fd_count(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def socket_count(self) -> int:
        """Open sockets of the daemon (other descriptors, e.g. timers of the runtime, come and go)."""
        fds = Path(f"/proc/{self.pid}/fd")
        return sum(1 for fd in fds.iterdir() if os.readlink(fd).startswith("socket:"))

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


def s_client_argv(host: str, port: int, *extra: str) -> list[str]:
    return ["openssl", "s_client", "-dtls1_2", "-connect", endpoint(host, port),
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

# s_client -msg: a received warning(1) no_renegotiation(100) alert record.
SERVER_NO_RENEGOTIATION = rb"<<< [^\n]*(?:content_type=21|Alert)[^\n]*\n\s+01 64"


# --------------------------------------------------------------------------- config

def toml_tables(value):
    """Every table in a parsed TOML document, nested arrays of tables included."""
    if isinstance(value, dict):
        yield value
        for child in value.values():
            yield from toml_tables(child)
    elif isinstance(value, list):
        for child in value:
            yield from toml_tables(child)


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(x)}" for k, x in v.items()) + " }"
    return json.dumps(str(v))  # a JSON string is a valid TOML basic string here


def config_text(listeners: list[dict] = (), daemon: dict | None = None, connectors: list[dict] = (),
                cluster: dict | None = None) -> str:
    daemon = {"log_level": "info", **(daemon or {})}
    out = ["[daemon]"] + [f"{k} = {_toml_value(v)}" for k, v in daemon.items()]
    if cluster:
        out += ["", "[cluster]"] + [f"{k} = {_toml_value(v)}" for k, v in cluster.items()]
    for listener in listeners:
        out += ["", "[[listener]]"]
        out += [f"{k} = {_toml_value(v)}" for k, v in listener.items() if k != "routes"]
        for route in listener.get("routes", []):  # [[listener.route]] blocks follow their listener
            out += ["", "[[listener.route]]"]
            out += [f"{k} = {_toml_value(v)}" for k, v in route.items()]
    for connector in connectors:
        out += ["", "[[connector]]"]
        out += [f"{k} = {_toml_value(v)}" for k, v in connector.items()]
    return "\n".join(out) + "\n"


def write_config(path: Path, listeners: list[dict] = (), daemon: dict | None = None,
                 connectors: list[dict] = (), cluster: dict | None = None) -> Path:
    path.write_text(config_text(listeners, daemon, connectors, cluster))
    return path


def listener_config(backend, certs: dict | None = None, name: str = "test", host: str = "127.0.0.1",
                    **keys) -> dict:
    """A listener ``name`` on a free port of ``host`` in front of ``backend`` (a port, or a
    backend with ``.port``), with the session's test certificate when ``certs`` is given;
    ``keys`` add or override."""
    port = backend if isinstance(backend, int) else backend.port
    listener = {"name": name, "listen": endpoint(host, free_udp_port(host)), "backend": endpoint(host, port)}
    if certs is not None:
        listener.update(certificate=str(certs["cert"]), private_key=str(certs["key"]))
    listener.update(keys)
    return listener


def connector_config(server: str, name: str = "tun", **keys) -> dict:
    """A connector ``name`` on a free local port to the DTLS server at ``server`` (``host:port``);
    ``keys`` add or override."""
    connector = {"name": name, "listen": endpoint("127.0.0.1", free_udp_port()), "server": server}
    connector.update(keys)
    return connector


# --------------------------------------------------------------------------- figures

# Measured figures the run reports at its end (see conftest.pytest_terminal_summary),
# so that they show in `make test` output even when every test passes.
FIGURES: list[str] = []


def report(line: str):
    print(line)
    FIGURES.append(line)
