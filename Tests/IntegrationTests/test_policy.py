"""Protocol policy and resumption: versions, cipher strings, renegotiation,
session tickets (also shared between two daemons), key-file modes, --check-config."""

from __future__ import annotations

import os
import re
import time

import pytest

from harness import (
    S_CLIENT_DONE,
    SERVER_NO_RENEGOTIATION,
    Daemon,
    echo_roundtrip,
    free_udp_port,
    run_daemon_once,
    s_client_argv,
    write_config,
    write_secret,
)

EX_CONFIG = 78
DTLS10 = ("-cipher", "DEFAULT:@SECLEVEL=0")


def _dtls10_argv(port: int) -> list[str]:
    return ["openssl", "s_client", "-dtls1", "-connect", f"127.0.0.1:{port}", "-nocommands", *DTLS10]


# --------------------------------------------------------------------------- versions and ciphers

def test_dtls_1_0_client_accepted_with_min_version_1_0(proxied, peer):
    px = proxied(min_version="1.0")
    old = peer(_dtls10_argv(px.port))
    m = old.wait_for(S_CLIENT_DONE, timeout=15)
    assert b"TLSv1.0" in old.output or b"DTLSv1" in old.output, old.text[-1500:]
    echo_roundtrip(old, b"from a DTLS 1.0 client\n")
    px.daemon.wait_for(rb"session open [^\n]*version=DTLSv1 ", timeout=5)
    assert m.group(1) != b"(NONE)"


def test_dtls_1_0_client_refused_with_protocol_version_alert(proxied, peer):
    px = proxied()  # min_version = "1.2"
    old = peer(_dtls10_argv(px.port))
    old.wait_for(rb"alert protocol version", timeout=15)
    px.daemon.wait_for(rb"session close [^\n]*reason=handshake_failed", timeout=10)
    assert px.backend.records == []


def test_max_version_1_0_refuses_dtls_1_2_only_clients(proxied, peer):
    px = proxied(min_version="1.0", max_version="1.0")
    modern = peer(s_client_argv(px.host, px.port))  # -dtls1_2
    # The server answers DTLS 1.0; a client that insists on 1.2 gives up.
    modern.wait_for(rb"unsupported protocol|alert protocol version", timeout=15)
    assert not re.search(S_CLIENT_DONE, modern.output)
    old = peer(_dtls10_argv(px.port))
    old.wait_for(S_CLIENT_DONE, timeout=15)


def test_client_offering_only_ciphers_outside_ciphers_refused(proxied, peer):
    px = proxied(ciphers="ECDHE-ECDSA-AES256-GCM-SHA384")
    outside = peer(s_client_argv(px.host, px.port, "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305"))
    outside.wait_for(rb"alert handshake failure", timeout=15)
    px.daemon.wait_for(rb"session close [^\n]*reason=handshake_failed detail=\"no shared cipher\"", timeout=10)
    inside = peer(s_client_argv(px.host, px.port))
    assert inside.wait_for(S_CLIENT_DONE, timeout=15).group(1) == b"ECDHE-ECDSA-AES256-GCM-SHA384"
    echo_roundtrip(inside, b"allowed suite\n")


def test_groups_restrict_the_key_exchange(proxied, peer):
    # With an ECDSA certificate, DTLS 1.2 also requires its curve (P-256 here) in the list.
    px = proxied(groups="P-256")
    wrong = peer(s_client_argv(px.host, px.port, "-groups", "X25519"))
    wrong.wait_for(rb"alert handshake failure", timeout=15)
    right = peer(s_client_argv(px.host, px.port, "-groups", "X25519:P-256"))
    right.wait_for(S_CLIENT_DONE, timeout=15)
    # Without the restriction the daemon prefers X25519.
    right.wait_for(rb"Server Temp Key: ECDH, (?:P-256|prime256v1)", timeout=5)


# --------------------------------------------------------------------------- renegotiation

def test_client_renegotiation_is_refused_and_service_continues(proxied, peer):
    px = proxied()
    argv = ["openssl", "s_client", "-dtls1_2", "-connect", f"127.0.0.1:{px.port}", "-msg"]
    c = peer(argv)  # without -nocommands: a line "R" asks for renegotiation
    c.wait_for(S_CLIENT_DONE, timeout=15)
    echo_roundtrip(c, b"before renegotiation\n")
    start = c.mark()
    c.send(b"R\n")
    c.wait_for(rb"RENEGOTIATING", timeout=5, start=start)
    # The daemon answers the new ClientHello with a no_renegotiation warning, not a ServerHello.
    c.wait_for(SERVER_NO_RENEGOTIATION, timeout=10, start=start)
    assert not re.search(rb"<<< [^\n]*ServerHello", c.output[start:])
    stats = px.daemon.stats()["test"]
    assert stats["handshakes_completed"] == 1, stats
    assert px.daemon.alive()
    after = peer(s_client_argv(px.host, px.port))
    after.wait_for(S_CLIENT_DONE, timeout=15)
    echo_roundtrip(after, b"after the renegotiation attempt\n")


# --------------------------------------------------------------------------- resumption

def _connect_and_save(peer, port: int, session: str, *extra: str):
    c = peer(s_client_argv("127.0.0.1", port, "-sess_out", session, *extra))
    c.wait_for(S_CLIENT_DONE, timeout=15)
    echo_roundtrip(c, b"first connection\n")
    c.close_stdin()
    assert c.wait(timeout=10) == 0
    return c


def test_session_ticket_resumption(proxied, peer, tmp_path):
    px = proxied(ticket_key_rotation="2h")
    session = str(tmp_path / "session.pem")
    first = _connect_and_save(peer, px.port, session)
    # A ticket lives for two rotation periods.
    assert b"TLS session ticket lifetime hint: 14400 (seconds)" in first.output, first.text[-2000:]
    assert os.path.getsize(session) > 0
    again = peer(s_client_argv(px.host, px.port, "-sess_in", session))
    again.wait_for(rb"^Reused, TLSv1\.2", timeout=15)
    echo_roundtrip(again, b"resumed\n")
    px.daemon.wait_for(rb"session open [^\n]*resumed=yes", timeout=5)


def test_session_tickets_false_disables_resumption(proxied, peer, tmp_path):
    px = proxied(session_tickets=False)
    session = tmp_path / "session.pem"
    first = _connect_and_save(peer, px.port, str(session))
    # No ticket, and (no server-side cache) no session id: nothing a client could resume.
    assert b"TLS session ticket" not in first.output, first.text[-2000:]
    assert re.search(rb"Session-ID: *\n", first.output), first.text[-2000:]
    assert not session.exists()


def test_ticket_keys_rotate_and_expire_after_two_periods(proxied, peer, tmp_path):
    px = proxied(ticket_key_rotation="2s")
    session = str(tmp_path / "session.pem")
    _connect_and_save(peer, px.port, session)
    soon = peer(s_client_argv(px.host, px.port, "-sess_in", session))
    soon.wait_for(rb"^Reused, TLSv1\.2", timeout=15)
    soon.close_stdin()
    soon.wait(timeout=10)
    # Issued in period p; from period p + 2 on (at most 4 s later) no key reads it.
    time.sleep(4.5)
    late = peer(s_client_argv(px.host, px.port, "-sess_in", session))
    late.wait_for(rb"^New, TLSv1\.2", timeout=15)
    echo_roundtrip(late, b"full handshake again\n")


def _ticket_daemon(procs, tmp_path, name: str, backend_port: int, ticket_file, certs, pki) -> tuple[Daemon, int]:
    port = free_udp_port()
    cfg = write_config(tmp_path / f"{name}.toml", [{
        "name": "shared", "listen": f"127.0.0.1:{port}", "backend": f"127.0.0.1:{backend_port}",
        "certificate": str(certs["cert"]), "private_key": str(certs["key"]),
        "client_ca": str(pki["ca"]), "allow_cn": ["dev1"],
        "ticket_key_file": str(ticket_file), "ticket_key_rotation": "10m"}])
    d = Daemon(cfg)
    procs.append(d)
    d.wait_ready()
    return d, port


def test_two_daemons_sharing_ticket_key_file_resume_each_others_sessions(
        procs, peer, tmp_path, echo_backend, certs, pki):
    backend = echo_backend()
    shared = write_secret(tmp_path / "ticket.key", os.urandom(48))
    first, first_port = _ticket_daemon(procs, tmp_path, "first", backend.port, shared, certs, pki)
    second, second_port = _ticket_daemon(procs, tmp_path, "second", backend.port, shared, certs, pki)
    elsewhere = write_secret(tmp_path / "other-ticket.key", os.urandom(48))
    third, third_port = _ticket_daemon(procs, tmp_path, "third", backend.port, elsewhere, certs, pki)

    cert, key = pki["dev1"]
    session = str(tmp_path / "session.pem")
    _connect_and_save(peer, first_port, session, "-cert", str(cert), "-key", str(key))
    assert os.path.getsize(session) > 0
    resumed = peer(s_client_argv("127.0.0.1", second_port, "-sess_in", session))
    resumed.wait_for(rb"^Reused, TLSv1\.2", timeout=15)
    echo_roundtrip(resumed, b"resumed on the other instance\n")
    # The resumed session carries the identity verified by the first instance.
    second.wait_for(rb"session open [^\n]*identity=dev1 resumed=yes", timeout=5)
    # A daemon with a different ticket secret cannot read the ticket: full handshake.
    fresh = peer(s_client_argv("127.0.0.1", third_port, "-sess_in", session, "-cert", str(cert), "-key", str(key)))
    fresh.wait_for(rb"^New, TLSv1\.2", timeout=15)
    assert first.alive() and second.alive() and third.alive()


# --------------------------------------------------------------------------- key files and --check-config

def _listener(certs, **keys) -> dict:
    listener = {"name": "test", "listen": f"127.0.0.1:{free_udp_port()}", "backend": "127.0.0.1:9",
                "certificate": str(certs["cert"]), "private_key": str(certs["key"])}
    listener.update(keys)
    return listener


def _config_error(tmp_path, listener, *args) -> str:
    cfg = write_config(tmp_path / "dtls-proxy.toml", [listener])
    r = run_daemon_once(cfg, *args)
    assert r.returncode == EX_CONFIG, (r.returncode, r.stdout, r.stderr)
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith(f"dtls-proxyd: {cfg}: "), lines[0]
    return lines[0]


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_world_readable_private_key_refused_at_start(tmp_path, certs, mode):
    key = tmp_path / "loose.key"
    key.write_bytes(certs["key"].read_bytes())
    os.chmod(key, mode)
    line = _config_error(tmp_path, _listener(certs, private_key=str(key)))  # a real start, not --check-config
    assert f"listener[0].private_key: {key} is readable by group or others (mode {mode:#o}".replace("0o", "0") in line, line
    assert "allow_world_readable_keys" in line


def test_world_readable_psk_file_refused_unless_allowed(tmp_path, certs):
    psk = tmp_path / "psk.txt"
    psk.write_text("dev1:00112233\n")
    os.chmod(psk, 0o644)
    line = _config_error(tmp_path, _listener(certs, psk_file=str(psk)))
    assert f"listener[0].psk_file: {psk} is readable by group or others" in line, line
    cfg = write_config(tmp_path / "ok.toml", [_listener(certs, psk_file=str(psk), allow_world_readable_keys=True)])
    r = run_daemon_once(cfg, "--check-config")
    assert r.returncode == 0, r.stderr


def test_world_readable_key_refused_by_a_running_daemon_too(start_daemon, tmp_path, certs):
    key = tmp_path / "loose.key"
    key.write_bytes(certs["key"].read_bytes())
    os.chmod(key, 0o644)
    d = start_daemon([_listener(certs, private_key=str(key))], wait_ready=False)
    assert d.wait(timeout=20) == EX_CONFIG
    d.wait_for(rf"private_key: {re.escape(str(key))} is readable by group or others", timeout=5)


CHECK_CASES = [
    pytest.param({"max_version": "1.3"}, "listener[0].max_version: DTLS 1.3 is not supported by the linked OpenSSL",
                 id="dtls-1.3"),
    pytest.param({"ciphers": "NO-SUCH-CIPHER"}, "listener[0].ciphers: OpenSSL accepts none of the ciphers",
                 id="bad-cipher-string"),
    pytest.param({"ciphers": "PSK-AES128-GCM-SHA256"}, "listener[0].ciphers: no suite in \"PSK-AES128-GCM-SHA256\" works",
                 id="unusable-ciphers"),
    pytest.param({"groups": "X25519:P-999"}, "listener[0].groups: OpenSSL refuses groups", id="bad-groups"),
    pytest.param({"client_auth": "require"}, "listener[0].client_auth: client_auth = \"require\" needs client_ca",
                 id="client-auth-without-ca"),
    pytest.param({"min_version": "1.2", "max_version": "1.0"}, "listener[0].min_version: \"1.2\" is above max_version",
                 id="min-above-max"),
]


@pytest.mark.parametrize("keys,expected", CHECK_CASES)
def test_check_config_judges_policy(tmp_path, certs, keys, expected):
    line = _config_error(tmp_path, _listener(certs, **keys), "--check-config")
    assert expected in line, line


def test_check_config_parses_the_ca_and_allow_lists(tmp_path, certs, pki):
    not_pem = tmp_path / "ca.pem"
    not_pem.write_text("this is not a certificate\n")
    line = _config_error(tmp_path, _listener(certs, client_ca=str(not_pem)), "--check-config")
    assert "listener[0].client_ca: cannot load CA bundle" in line, line
    line = _config_error(tmp_path, _listener(certs, client_ca=str(pki["ca"]), allow_uri=["spiffe://ok/x", "no scheme"]),
                         "--check-config")
    assert "listener[0].allow_uri[1]: \"no scheme\" is not an absolute URI" in line, line
    psk = write_secret(tmp_path / "psk.txt", "dev1:0011\ndev2:xyz\n")
    line = _config_error(tmp_path, _listener(certs, psk_file=str(psk)), "--check-config")
    assert f"listener[0].psk_file: {psk} line 2: invalid hex digit" in line, line
    good = write_config(tmp_path / "good.toml", [_listener(
        certs, client_ca=str(pki["ca"]), client_auth="optional", verify_depth=2, allow_cn=["dev1"],
        allow_dns=["*.example.org"], allow_uri=["spiffe://example.org/sensor/*"], min_version="1.0",
        ciphers="ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES128-SHA", groups="X25519:P-256",
        ticket_key_rotation="30m")])
    r = run_daemon_once(good, "--check-config")
    assert r.returncode == 0, r.stderr
