"""Who may connect: client certificates with allow-lists, PSK identities, CoAP over PSK.

Peers: gnutls-cli and openssl s_client with client certificates from a test CA;
gnutls-cli, s_client and libcoap's coap-client-openssl with pre-shared keys.
"""

from __future__ import annotations

import re
import time

from harness import (
    GNUTLS_DONE,
    S_CLIENT_DONE,
    Daemon,
    Proc,
    echo_roundtrip,
    free_udp_port,
    gnutls_argv,
    s_client_argv,
    write_config,
    write_secret,
)

PSK_IDENTITY = "sensor-17"
PSK_KEY = b"coap-shared-secret"
PSK_HEX = PSK_KEY.hex()
# gnutls-cli 3.7.9 crashes on ECDHE-PSK with CHACHA20 in DTLS; plain PSK works.
GNUTLS_PSK = ("--priority", "NORMAL:-KX-ALL:+PSK")


def _cert_args(pair) -> list[str]:
    return ["--x509certfile", str(pair[0]), "--x509keyfile", str(pair[1])]


def _mtls(proxied, pki, **keys):
    return proxied(client_ca=str(pki["ca"]), **keys)


# --------------------------------------------------------------------------- certificates

def test_gnutls_client_certificate_from_the_ca_connects(proxied, peer, pki):
    px = _mtls(proxied, pki)  # client_auth defaults to "require"
    c = peer(gnutls_argv(px.host, px.port, *_cert_args(pki["dev1"])))
    c.wait_for(GNUTLS_DONE, timeout=15)
    echo_roundtrip(c, b"hello from dev1\n")
    opened = px.daemon.wait_for(rb"session open [^\n]*", timeout=5).group(0)
    assert b" identity=dev1" in opened, opened
    c.close_stdin()
    closed = px.daemon.wait_for(rb"session close [^\n]*reason=close_notify", timeout=10).group(0)
    assert b" identity=dev1" in closed, closed


def test_without_a_certificate_refused_when_required(proxied, peer, pki):
    px = _mtls(proxied, pki, client_auth="require")
    c = peer(gnutls_argv(px.host, px.port))
    c.wait_for(rb"Received alert \[40\]", timeout=15)  # handshake_failure
    assert not re.search(GNUTLS_DONE, c.output)
    px.daemon.wait_for(rb"session close [^\n]*reason=handshake_failed detail=\"peer did not return a certificate\"",
                       timeout=10)
    assert px.backend.records == []


def test_certificate_from_another_ca_refused(proxied, peer, pki):
    px = _mtls(proxied, pki, allow_cn=["dev1"])
    c = peer(gnutls_argv(px.host, px.port, *_cert_args(pki["stranger"])))  # CN=dev1, wrong issuer
    c.wait_for(rb"Received alert \[48\]", timeout=15)  # unknown_ca
    assert not re.search(GNUTLS_DONE, c.output)
    px.daemon.wait_for(rb"session close [^\n]*reason=handshake_failed", timeout=10)


def test_optional_admits_clients_with_and_without_certificates(proxied, peer, pki):
    px = _mtls(proxied, pki, client_auth="optional")
    anonymous = peer(gnutls_argv(px.host, px.port))
    anonymous.wait_for(GNUTLS_DONE, timeout=15)
    echo_roundtrip(anonymous, b"no certificate\n")
    with_cert = peer(gnutls_argv(px.host, px.port, *_cert_args(pki["dev2"])))
    with_cert.wait_for(GNUTLS_DONE, timeout=15)
    echo_roundtrip(with_cert, b"with certificate\n")
    px.daemon.wait_for(rb"session open [^\n]*identity=dev2", timeout=5)


def test_client_auth_none_asks_for_no_certificate(proxied, peer, pki):
    px = _mtls(proxied, pki, client_auth="none")
    c = peer(s_client_argv(px.host, px.port))
    c.wait_for(S_CLIENT_DONE, timeout=15)
    assert b"No client certificate CA names sent" in c.output, c.text[-2000:]
    echo_roundtrip(c, b"anonymous\n")
    opened = px.daemon.wait_for(rb"session open [^\n]*", timeout=5).group(0)
    assert b"identity=" not in opened, opened


def test_cn_not_in_allow_cn_gets_access_denied(proxied, peer, pki):
    px = _mtls(proxied, pki, allow_cn=["dev1"])
    c = peer(gnutls_argv(px.host, px.port, *_cert_args(pki["dev2"])))
    c.wait_for(rb"Received alert \[49\]", timeout=15)  # access_denied
    assert not re.search(GNUTLS_DONE, c.output), c.text[-1500:]
    line = px.daemon.wait_for(rb"session close [^\n]*reason=access_denied[^\n]*", timeout=10).group(0)
    assert b"identity=dev2" in line and b"refused by allow_cn" in line and b"cn=dev2" in line, line
    assert px.backend.records == []
    # The same listener admits the listed CN.
    ok = peer(gnutls_argv(px.host, px.port, *_cert_args(pki["dev1"])))
    ok.wait_for(GNUTLS_DONE, timeout=15)
    echo_roundtrip(ok, b"listed\n")


def test_san_uri_in_allow_uri_connects(proxied, peer, pki):
    px = _mtls(proxied, pki, allow_cn=["dev1"], allow_uri=["spiffe://example.org/sensor/*"])
    c = peer(gnutls_argv(px.host, px.port, *_cert_args(pki["sensor"])))
    c.wait_for(GNUTLS_DONE, timeout=15)
    echo_roundtrip(c, b"spiffe\n")
    opened = px.daemon.wait_for(rb"session open [^\n]*", timeout=5).group(0)
    assert b" identity=spiffe://example.org/sensor/9" in opened, opened
    # A certificate with neither the CN nor a URI listed is refused, naming both lists.
    denied = peer(gnutls_argv(px.host, px.port, *_cert_args(pki["dev2"])))
    denied.wait_for(rb"Received alert \[49\]", timeout=15)
    px.daemon.wait_for(rb"reason=access_denied detail=\"refused by allow_cn,allow_uri", timeout=10)


def test_verify_depth_limits_intermediate_cas(proxied, peer, pki):
    shallow = _mtls(proxied, pki, verify_depth=0)
    refused = peer(gnutls_argv(shallow.host, shallow.port, *_cert_args(pki["deep"])))
    refused.wait_for(rb"Received alert \[48\]", timeout=15)  # unknown_ca: chain too long
    assert not re.search(GNUTLS_DONE, refused.output)
    deep_enough = _mtls(proxied, pki, verify_depth=1)
    ok = peer(gnutls_argv(deep_enough.host, deep_enough.port, *_cert_args(pki["deep"])))
    ok.wait_for(GNUTLS_DONE, timeout=15)
    echo_roundtrip(ok, b"one intermediate\n")
    deep_enough.daemon.wait_for(rb"session open [^\n]*identity=deep", timeout=5)


def test_san_dns_in_allow_dns_connects(proxied, peer, pki):
    px = _mtls(proxied, pki, allow_dns=["*.example.org"])
    c = peer(gnutls_argv(px.host, px.port, *_cert_args(pki["sensor"])))
    c.wait_for(GNUTLS_DONE, timeout=15)
    echo_roundtrip(c, b"dns\n")


def test_s_client_with_certificate_and_access_denied(proxied, peer, pki):
    px = _mtls(proxied, pki, allow_cn=["dev1"])
    dev1_cert, dev1_key = pki["dev1"]
    ok = peer(s_client_argv(px.host, px.port, "-cert", str(dev1_cert), "-key", str(dev1_key)))
    ok.wait_for(S_CLIENT_DONE, timeout=15)
    echo_roundtrip(ok, b"s_client with dev1\n")
    dev2_cert, dev2_key = pki["dev2"]
    denied = peer(s_client_argv(px.host, px.port, "-cert", str(dev2_cert), "-key", str(dev2_key)))
    denied.wait_for(rb"alert access denied", timeout=15)
    px.daemon.wait_for(rb"session close [^\n]*identity=dev2[^\n]*reason=access_denied", timeout=10)
    assert [data for _, data in px.backend.records] == [b"s_client with dev1\n"]


# --------------------------------------------------------------------------- PSK

def _psk_listener(proxied, tmp_path, **keys):
    psk = write_secret(tmp_path / "psk.txt", f"# lab\n{PSK_IDENTITY}:{PSK_HEX}\nother:00ff\n")
    return proxied(certificate="", private_key="", psk_file=str(psk), **keys)


def test_gnutls_psk_to_a_psk_only_listener(proxied, peer, tmp_path):
    px = _psk_listener(proxied, tmp_path, psk_identity_hint="dtls-proxyd-lab")
    c = peer(gnutls_argv(px.host, px.port, "--pskusername", PSK_IDENTITY, "--pskkey", PSK_HEX, *GNUTLS_PSK))
    c.wait_for(GNUTLS_DONE, timeout=15)
    assert b"PSK hint 'dtls-proxyd-lab'" in c.output, c.text[-2000:]
    echo_roundtrip(c, b"psk datagram\n")
    opened = px.daemon.wait_for(rb"session open [^\n]*", timeout=5).group(0)
    assert b" psk_identity=sensor-17" in opened and b"cipher=PSK-" in opened, opened


def test_wrong_psk_fails(proxied, peer, tmp_path):
    px = _psk_listener(proxied, tmp_path, handshake_timeout="3s")
    c = peer(gnutls_argv(px.host, px.port, "--pskusername", PSK_IDENTITY, "--pskkey", "00" * 16, *GNUTLS_PSK))
    # DTLS drops records that fail authentication (RFC 6347 §4.1.2.7), so the
    # client's Finished never verifies; the server gives the handshake up.
    px.daemon.wait_for(rb"session close [^\n]*reason=handshake_timeout", timeout=15)
    assert not re.search(GNUTLS_DONE, c.output), c.text[-1500:]
    unknown = peer(gnutls_argv(px.host, px.port, "--pskusername", "nobody", "--pskkey", PSK_HEX, *GNUTLS_PSK))
    unknown.wait_for(rb"Received alert \[115\]", timeout=15)  # unknown_psk_identity
    assert not re.search(GNUTLS_DONE, unknown.output)
    assert px.backend.records == []


def test_s_client_psk_sees_the_identity_hint(proxied, peer, tmp_path):
    px = _psk_listener(proxied, tmp_path, psk_identity_hint="lab-hint")
    c = peer(s_client_argv(px.host, px.port, "-psk_identity", PSK_IDENTITY, "-psk", PSK_HEX, "-debug"))
    c.wait_for(S_CLIENT_DONE, timeout=15)
    assert b"Received PSK identity hint 'lab-hint'" in c.output
    echo_roundtrip(c, b"psk via s_client\n")


def test_coap_client_over_psk_reaches_a_coap_server(proxied, peer, procs, tmp_path):
    coap_port = free_udp_port()
    server = Proc(["coap-server-notls", "-A", "127.0.0.1", "-p", str(coap_port)])
    procs.append(server)
    time.sleep(0.5)
    psk = write_secret(tmp_path / "psk.txt", f"{PSK_IDENTITY}:{PSK_HEX}\n")
    port = free_udp_port()
    cfg = write_config(tmp_path / "coap.toml", [{
        "name": "coaps", "listen": f"127.0.0.1:{port}", "backend": f"127.0.0.1:{coap_port}",
        "psk_file": str(psk)}])
    d = Daemon(cfg)
    procs.append(d)
    d.wait_ready()
    client = peer(["coap-client-openssl", "-B", "10", "-u", PSK_IDENTITY, "-k", PSK_KEY.decode(),
                   "-m", "get", f"coaps://127.0.0.1:{port}/"])
    client.wait_for(rb"This is a test server made with libcoap", timeout=15)
    assert client.wait(timeout=15) == 0
    d.wait_for(rb"session open [^\n]*psk_identity=sensor-17", timeout=5)
    d.wait_for(rb"session close [^\n]*listener=coaps[^\n]*datagrams_in=1 [^\n]*datagrams_out=1 ", timeout=10)
