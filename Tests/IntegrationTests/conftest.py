"""Fixtures and helpers for the dtls-proxyd integration tests.

The tests run the real daemon binary against real DTLS peers (OpenSSL's
s_client, GnuTLS's gnutls-cli, socat) and a plaintext UDP echo backend that
runs in a Python thread and records every datagram it receives.  Everything
happens on loopback with ports chosen at run time.  Every wait is bounded and
every process a test starts is killed when the test ends.

Helpers that do not need fixtures (process wrappers, the echo backend, config
writing, plain UDP peers, DTLS record crafting) live in ``harness.py``; this file
turns them into fixtures.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from harness import (
    DAEMON_BIN,
    FIGURES,
    UDP_ECHO_BIN,
    Daemon,
    EchoBackend,
    NotifyRecorder,
    Proc,
    connector_config,
    endpoint_port,
    ipv6_available,
    issue_client_cert,
    issue_intermediate_ca,
    listener_config,
    make_ca,
    write_config,
)

PEER_TOOLS = ("openssl", "gnutls-cli", "socat", "coap-client-openssl", "coap-server-notls")


def pytest_report_header(config):
    return [f"dtls-proxyd binary: {DAEMON_BIN}", f"udp-echo binary: {UDP_ECHO_BIN}"]


def pytest_terminal_summary(terminalreporter):
    """Figures the tests measured (security rating, heartbeat period, stop time)."""
    if FIGURES:
        terminalreporter.section("measured")
        for line in FIGURES:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session", autouse=True)
def _tools_present():
    """Fail early and clearly when the binary or a peer is missing."""
    missing = [tool for tool in PEER_TOOLS if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"missing peer tools: {', '.join(missing)} (run `make deps`)")
    if not os.access(DAEMON_BIN, os.X_OK):
        pytest.fail(f"{DAEMON_BIN} is not an executable; run `swift build` or set DTLS_PROXYD_BIN")


@pytest.fixture(scope="session")
def certs(tmp_path_factory) -> dict[str, Path]:
    """A self-signed ECDSA P-256 certificate for localhost, its key, and an unrelated key."""
    d = tmp_path_factory.mktemp("certs")
    cert, key, other = d / "server.pem", d / "server.key", d / "other.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1"],
        check=True, capture_output=True, timeout=30,
    )
    subprocess.run(
        ["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-out", str(other)],
        check=True, capture_output=True, timeout=30,
    )
    return {"cert": cert, "key": key, "other_key": other, "dir": d}


@pytest.fixture(scope="session")
def pki(tmp_path_factory) -> dict:
    """A test CA and client certificates it issued, plus one from an unrelated CA.

    ``ca``: the CA certificate (for ``client_ca``); each client is (certificate, key):
    ``dev1`` (CN=dev1), ``dev2`` (CN=dev2), ``sensor`` (CN=sensor-9 with SAN
    URI spiffe://example.org/sensor/9 and DNS sensor9.example.org), ``stranger``
    (CN=dev1, issued by another CA), ``deep`` (CN=deep, issued by an intermediate
    CA under the test CA; its certificate file holds the leaf and the intermediate).
    """
    d = tmp_path_factory.mktemp("pki")
    ca = make_ca(d, "test-ca")
    other_ca = make_ca(d, "other-ca")
    intermediate = issue_intermediate_ca(d, ca, "intermediate-ca")
    deep_cert, deep_key = issue_client_cert(d, intermediate, "deep", "deep")
    deep_chain = d / "deep-chain.pem"
    deep_chain.write_bytes(deep_cert.read_bytes() + intermediate[0].read_bytes())
    return {
        "deep": (deep_chain, deep_key),
        "dir": d,
        "ca": ca[0],
        "dev1": issue_client_cert(d, ca, "dev1", "dev1"),
        "dev2": issue_client_cert(d, ca, "dev2", "dev2"),
        "sensor": issue_client_cert(d, ca, "sensor", "sensor-9",
                                    san="URI:spiffe://example.org/sensor/9,DNS:sensor9.example.org"),
        "stranger": issue_client_cert(d, other_ca, "stranger", "dev1"),
    }


@pytest.fixture
def procs():
    """Registry of processes started by a test; all are killed at teardown."""
    started: list[Proc | Daemon] = []
    yield started
    for p in reversed(started):
        p.kill()


@pytest.fixture
def relays():
    """Registry of fault relays (``faultrelay.FaultRelay``); all are stopped at teardown."""
    started: list = []
    yield started
    for relay in started:
        relay.stop()


@pytest.fixture
def backends():
    """Registry of Python echo backends; all are stopped at teardown."""
    started: list[EchoBackend] = []
    yield started
    for b in started:
        b.stop()


@pytest.fixture
def echo_backend(backends):
    """Start a Python echo backend: ``echo_backend(host="127.0.0.1", prefix=b"", reply=None)``."""
    def start(host: str = "127.0.0.1", prefix: bytes = b"", reply=None) -> EchoBackend:
        b = EchoBackend(host=host, prefix=prefix, reply=reply)
        backends.append(b)
        return b
    return start


@pytest.fixture
def start_daemon(procs, tmp_path):
    """Write a config and start the daemon on it; returns the running ``Daemon``.

    ``start_daemon(listeners=[...], daemon={...}, env={...}, wait_ready=True, connectors=[...], cluster={...})``.
    Each listener and connector is a dict of config keys (``listener_config``,
    ``connector_config``). The config is ``name`` in the test's folder; without one,
    ``dtls-proxy.toml`` for the test's first daemon, ``dtls-proxy-2.toml`` for its second...
    """
    written: list[Path] = []

    def start(listeners=(), daemon=None, env=None, wait_ready=True, name=None, connectors=(), cluster=None):
        if name is None:
            name = f"dtls-proxy-{len(written) + 1}.toml" if written else "dtls-proxy.toml"
        path = write_config(tmp_path / name, listeners, daemon, connectors, cluster)
        written.append(path)
        d = Daemon(path, env=env)
        procs.append(d)
        if wait_ready:
            d.wait_ready()
        return d
    return start


class Proxied:
    """A running daemon with one listener ``test`` in front of a Python echo backend."""

    def __init__(self, daemon: Daemon, backend: EchoBackend, host: str, port: int):
        self.daemon, self.backend, self.host, self.port = daemon, backend, host, port


@pytest.fixture
def proxied(start_daemon, echo_backend, certs):
    """``proxied(host="127.0.0.1", reply=None, **listener_keys)``: backend + daemon, ready to use."""
    def start(host: str = "127.0.0.1", daemon=None, env=None, reply=None, **keys) -> Proxied:
        backend = echo_backend(host=host, reply=reply)
        listener = listener_config(backend, certs, host=host, **keys)
        d = start_daemon([listener], daemon=daemon, env=env)
        return Proxied(d, backend, host, endpoint_port(listener["listen"]))
    return start


class Tunnel:
    """Two daemons: ``far`` with listener ``far`` in front of a Python echo ``backend``,
    ``near`` with connector ``tun`` to it; a local peer talks to ``127.0.0.1:port``."""

    def __init__(self, far: Daemon, near: Daemon, backend: EchoBackend, listener: dict, connector: dict):
        self.far, self.near, self.backend = far, near, backend
        self.listener, self.connector = listener, connector
        self.port = endpoint_port(connector["listen"])


@pytest.fixture
def tunnel(start_daemon, echo_backend, certs):
    """``tunnel(prefix=b"", near_daemon=None, **connector_keys)``: backend, listener instance,
    connector instance, ready to use. The connector verifies the listener's certificate
    (``server_ca``, ``server_name="localhost"``); ``connector_keys`` add or override, and a
    key given as None is left out. ``near_daemon`` is the connector instance's [daemon] table."""
    def start(prefix: bytes = b"", near_daemon=None, **connector_keys) -> Tunnel:
        backend = echo_backend(prefix=prefix)
        listener = listener_config(backend, certs, name="far")
        far = start_daemon([listener])
        keys = {"server_ca": str(certs["cert"]), "server_name": "localhost", **connector_keys}
        connector = connector_config(listener["listen"], **{k: v for k, v in keys.items() if v is not None})
        near = start_daemon(connectors=[connector], daemon=near_daemon)
        return Tunnel(far, near, backend, listener, connector)
    return start


@pytest.fixture
def peer(procs):
    """Start a peer process: ``peer(argv)`` returns a ``Proc`` killed at teardown."""
    def start(argv: list[str]) -> Proc:
        p = Proc(argv)
        procs.append(p)
        return p
    return start


@pytest.fixture
def notify():
    """A fake NOTIFY_SOCKET recording every message: pass ``{"NOTIFY_SOCKET": notify.path}``."""
    import shutil
    import tempfile
    d = tempfile.mkdtemp(prefix="dtlsn-", dir="/tmp")
    recorder = NotifyRecorder(d)
    yield recorder
    recorder.close()
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def require_ipv6():
    if not ipv6_available():
        pytest.fail("IPv6 loopback (::1) is not available on this host; the IPv6 listener cannot be proven")
