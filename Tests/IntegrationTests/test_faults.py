"""Lossy, duplicating, reordering and narrow paths between clients and the daemon."""

from __future__ import annotations

import collections
import re
import subprocess
import time
from pathlib import Path

import pytest

from faultrelay import FaultRelay, Faults
from harness import report
from harness import GNUTLS_DONE, S_CLIENT_DONE, gnutls_argv, s_client_argv

CLIENTS = 20


def _start_clients(peer, port: int, count: int):
    return [peer(s_client_argv("127.0.0.1", port)) for _ in range(count)]


def _echo_with_retries(client, tag: str, attempts: int = 10, wait: float = 2.5) -> int:
    """Send a unique line until its echo arrives (application data is never retransmitted by DTLS)."""
    for attempt in range(attempts):
        line = f"{tag}-try{attempt}".encode()
        start = client.mark()
        client.send(line + b"\n")
        try:
            client.wait_for(re.escape(line), timeout=wait, start=start)
            return attempt
        except AssertionError:
            continue
    raise AssertionError(f"{tag}: no echo after {attempts} tries")


def _assert_no_payload_twice(backend):
    counts = collections.Counter(payload for _, payload in backend.records)
    twice = {p: n for p, n in counts.items() if n > 1}
    assert not twice, f"payloads that reached the backend more than once: {twice}"


def test_handshakes_and_echoes_survive_20_percent_loss(proxied, peer):
    px = proxied(handshake_timeout="90s")
    relay = FaultRelay((px.host, px.port), to_server=Faults(drop=0.2), to_client=Faults(drop=0.2), seed=20)
    try:
        clients = _start_clients(peer, relay.port, CLIENTS)
        for index, client in enumerate(clients):
            client.wait_for(S_CLIENT_DONE, timeout=90)
        tries = [_echo_with_retries(c, f"lossy{i}") for i, c in enumerate(clients)]
        assert relay.to_server.dropped > 0 and relay.to_client.dropped > 0, "the relay dropped nothing"
        _assert_no_payload_twice(px.backend)
        stats = px.daemon.stats()["test"]
        assert stats["handshakes_completed"] >= CLIENTS, stats
        report(f"loss: dropped {relay.to_server.dropped}/{relay.to_server.received} up, "
              f"{relay.to_client.dropped}/{relay.to_client.received} down; echo retries {sum(tries)}")
    finally:
        relay.stop()


def test_duplicates_and_reordering_never_reach_the_backend_twice(proxied, peer):
    """gnutls-cli here: OpenSSL 3.0's s_client stops sending after it receives a
    duplicate of the server's final flight (a client-side stall, seen with the
    relay alone), while GnuTLS carries on as a client should."""
    px = proxied()
    faults = Faults(duplicate=0.1, reorder=0.1)
    relay = FaultRelay((px.host, px.port), to_server=faults, to_client=Faults(duplicate=0.1, reorder=0.1), seed=21)
    try:
        clients = [peer(gnutls_argv("127.0.0.1", relay.port)) for _ in range(CLIENTS)]
        for client in clients:
            client.wait_for(GNUTLS_DONE, timeout=30)
        lines = 5
        for n in range(lines):
            for i, client in enumerate(clients):
                client.send(f"dup{i}-{n}\n".encode())
            time.sleep(0.1)  # s_client reads its input in chunks: one line, one datagram
        px.backend.wait_for_count(CLIENTS * lines, timeout=20)
        time.sleep(0.5)  # a late duplicate would land now
        payloads = collections.Counter(p for _, p in px.backend.records)
        assert len(payloads) == CLIENTS * lines, f"{len(payloads)} distinct payloads"
        _assert_no_payload_twice(px.backend)
        assert relay.to_server.duplicated > 0, "the relay duplicated nothing"
        for i, client in enumerate(clients):
            # Replies may have been reordered or duplicated on the way back: only presence counts.
            for n in range(lines):
                client.wait_for(re.escape(f"dup{i}-{n}".encode()), timeout=10)
    finally:
        relay.stop()


@pytest.fixture(scope="module")
def big_chain(tmp_path_factory) -> dict[str, Path]:
    """A three-certificate RSA-4096 chain whose leaf carries many names: over 6 KB on the wire."""
    d = tmp_path_factory.mktemp("bigchain")

    def run(*argv):
        subprocess.run(argv, cwd=d, check=True, capture_output=True, timeout=120)

    run("openssl", "req", "-x509", "-newkey", "rsa:4096", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
        "-days", "2", "-subj", "/CN=Fault Test Root")
    run("openssl", "req", "-newkey", "rsa:4096", "-nodes", "-keyout", "int.key", "-out", "int.csr",
        "-subj", "/CN=Fault Test Intermediate")
    (d / "int.ext").write_text("basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n")
    run("openssl", "x509", "-req", "-in", "int.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "int.pem", "-days", "2", "-extfile", "int.ext")
    run("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
        "leaf.key", "-out", "leaf.csr", "-subj", "/CN=localhost")
    names = ",".join(f"DNS:host{i}.many-names.example" for i in range(100))
    (d / "leaf.ext").write_text(f"subjectAltName=DNS:localhost,{names}\n")
    run("openssl", "x509", "-req", "-in", "leaf.csr", "-CA", "int.pem", "-CAkey", "int.key",
        "-CAcreateserial", "-out", "leaf.pem", "-days", "2", "-extfile", "leaf.ext")
    chain = d / "chain.pem"
    chain.write_text((d / "leaf.pem").read_text() + (d / "int.pem").read_text() + (d / "ca.pem").read_text())
    (d / "leaf.key").chmod(0o600)
    der = sum(len(subprocess.run(["openssl", "x509", "-in", str(d / f), "-outform", "DER"],
                                 capture_output=True, check=True).stdout)
              for f in ("leaf.pem", "int.pem", "ca.pem"))
    return {"chain": chain, "key": d / "leaf.key", "der_bytes": der}


def test_big_chain_at_mtu_576_fits_every_datagram(proxied, peer, big_chain):
    assert big_chain["der_bytes"] >= 6 * 1024, f"chain is only {big_chain['der_bytes']} bytes"
    px = proxied(mtu=576, certificate=str(big_chain["chain"]), private_key=str(big_chain["key"]))
    relay = FaultRelay((px.host, px.port), to_client=Faults(mtu=576), seed=22)
    try:
        client = peer(s_client_argv("127.0.0.1", relay.port))
        client.wait_for(S_CLIENT_DONE, timeout=30)
        _echo_with_retries(client, "narrow")
        assert relay.to_client.over_mtu == 0, f"{relay.to_client.over_mtu} datagrams over 576 bytes"
        assert relay.to_client.received >= big_chain["der_bytes"] // 576, "the chain did not cross the relay"
        assert relay.to_client.largest <= 576
        report(f"chain {big_chain['der_bytes']} bytes DER in {relay.to_client.received} datagrams, "
              f"largest {relay.to_client.largest}")
    finally:
        relay.stop()


def _corrupting_session(proxied, peer, **keys):
    from harness import echo_roundtrip
    px = proxied(**keys)
    relay = FaultRelay((px.host, px.port), seed=23)
    client = peer(gnutls_argv("127.0.0.1", relay.port))
    client.wait_for(GNUTLS_DONE, timeout=15)
    echo_roundtrip(client, b"clean\n")
    relay.up.faults.corrupt = 1.0          # from now on every datagram to the daemon has one byte flipped
    for n in range(6):
        try:
            client.send(f"garbled {n}\n".encode())
        except BrokenPipeError:     # the daemon already closed the session and the client left
            break
        time.sleep(0.1)
    return px, relay, client


def test_undecryptable_datagrams_are_dropped_and_counted(proxied, peer):
    from harness import echo_roundtrip
    px, relay, client = _corrupting_session(proxied, peer)
    try:
        time.sleep(0.3)
        stats = px.daemon.stats()["test"]
        assert stats["dropped_undecryptable"] >= 5, stats
        assert stats["active_sessions"] == 1, stats
        assert not any(p.startswith(b"garbled") for _, p in px.backend.records), "a corrupted record reached the backend"
        relay.up.faults.corrupt = 0.0
        echo_roundtrip(client, b"clean again\n")
    finally:
        relay.stop()


def test_max_undecryptable_datagrams_closes_the_session(proxied, peer):
    px, relay, client = _corrupting_session(proxied, peer, max_undecryptable_datagrams=5)
    try:
        px.daemon.wait_for(rb"session close [^\n]*reason=error[^\n]*could not be decrypted", timeout=10)
        stats = px.daemon.stats()["test"]
        assert stats["active_sessions"] == 0, stats
    finally:
        relay.stop()
