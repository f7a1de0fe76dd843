"""A resumed session is routed, logged and reported exactly as its full handshake was.

OpenSSL 3.0 keeps a TLS 1.2 session's SNI only when a servername callback
accepted it, and on a resumption reports the stored name; these tests resume
with tickets from independent clients and check the route, the log line and
the PROXY v2 AUTHORITY TLV of the resumed session.

Peers: openssl s_client (-sess_out / -sess_in), gnutls-cli (-r: a full
handshake, then a resumed one in the same run).
"""

from __future__ import annotations

import re

from harness import (
    S_CLIENT_DONE,
    free_udp_port,
    gnutls_argv,
    s_client_argv,
    write_secret,
)
from test_proxy_protocol import ProxyV2Parser

RESUMED_GNUTLS = rb"\*\*\* This is a resumed session"


def _tagged_reply(client, line: bytes, timeout: float = 10.0) -> bytes:
    start = client.mark()
    client.send(line + b"\n")
    return client.wait_for(rb"([A-Z]+):" + re.escape(line), timeout=timeout, start=start).group(1)


def _session_opens(daemon) -> list[str]:
    return [line for line in daemon.log_lines() if " session open " in line]


def _full_then_resumed_s_client(peer, port: int, session: str, *extra: str):
    first = peer(s_client_argv("127.0.0.1", port, "-sess_out", session, "-ign_eof", *extra))
    first.wait_for(S_CLIENT_DONE, timeout=15)
    yield first
    first.kill()
    again = peer(s_client_argv("127.0.0.1", port, "-sess_in", session, "-ign_eof", *extra))
    again.wait_for(rb"^Reused, TLSv1\.2", timeout=15)
    yield again


def test_s_client_resumed_with_its_ticket_keeps_its_sni_route_and_proxy_header(start_daemon, echo_backend, peer, certs, tmp_path):
    default = echo_backend(prefix=b"D:")
    parser = ProxyV2Parser()
    routed = echo_backend(reply=parser)
    port = free_udp_port()
    daemon = start_daemon([{
        "name": "sni", "listen": f"127.0.0.1:{port}", "backend": f"127.0.0.1:{default.port}",
        "certificate": str(certs["cert"]), "private_key": str(certs["key"]),
        "routes": [{"name": "r-localhost", "server_name": "localhost",
                    "backend": f"127.0.0.1:{routed.port}", "proxy_protocol": "v2"}],
    }])
    session = str(tmp_path / "session.pem")
    for n, client in enumerate(_full_then_resumed_s_client(peer, port, session, "-servername", "localhost")):
        line = b"connection %d" % n
        start = client.mark()
        client.send(line + b"\n")
        client.wait_for(re.escape(line), timeout=10, start=start)
    # Both connections reached the route's backend, never the default one.
    assert default.records == [], default.records
    assert parser.errors == [] and [h["payload"] for h in parser.headers] == [b"connection 0\n", b"connection 1\n"]
    # The resumed session's PROXY v2 header names the SNI of the full handshake.
    assert [h["tlvs"].get(0x02) for h in parser.headers] == [b"localhost", b"localhost"], parser.headers
    assert daemon.wait_count(" session open ", 2), _session_opens(daemon)  # the log is written by a thread
    opens = _session_opens(daemon)
    assert "resumed=yes" not in opens[0] and "resumed=yes" in opens[1], opens
    for line in opens:
        assert "server_name=localhost" in line and "route=r-localhost" in line, line


def test_gnutls_resumption_keeps_sni_and_psk_identity_routes(start_daemon, echo_backend, peer, certs, tmp_path):
    default, by_name, by_identity = echo_backend(prefix=b"D:"), echo_backend(prefix=b"SNI:"), echo_backend(prefix=b"PSK:")
    psk = write_secret(tmp_path / "psk.txt", "device-1:" + "11" * 16 + "\n")
    port = free_udp_port()
    daemon = start_daemon([{
        "name": "mixed", "listen": f"127.0.0.1:{port}", "backend": f"127.0.0.1:{default.port}",
        "certificate": str(certs["cert"]), "private_key": str(certs["key"]), "psk_file": str(psk),
        "routes": [{"name": "r-localhost", "server_name": "localhost", "backend": f"127.0.0.1:{by_name.port}"},
                   {"name": "r-device", "psk_identity": "device-1", "backend": f"127.0.0.1:{by_identity.port}"}],
    }])
    c = peer(gnutls_argv("127.0.0.1", port, "-r", "--sni-hostname", "localhost"))
    c.wait_for(RESUMED_GNUTLS, timeout=20)
    assert _tagged_reply(c, b"resumed by name") == b"SNI"
    c.kill()
    p = peer(gnutls_argv("127.0.0.1", port, "-r", "--pskusername", "device-1", "--pskkey", "11" * 16,
                         "--priority", "NORMAL:-KX-ALL:+PSK"))
    p.wait_for(RESUMED_GNUTLS, timeout=20)
    assert _tagged_reply(p, b"resumed by identity") == b"PSK"
    assert default.records == []
    assert daemon.wait_count("resumed=yes", 2), _session_opens(daemon)  # the log is written by a thread
    resumed = [line for line in _session_opens(daemon) if "resumed=yes" in line]
    assert "server_name=localhost" in resumed[0] and "route=r-localhost" in resumed[0], resumed
    assert "psk_identity=device-1" in resumed[1] and "route=r-device" in resumed[1], resumed


def test_client_certificate_route_survives_resumption(start_daemon, echo_backend, peer, certs, pki, tmp_path):
    default, devices = echo_backend(prefix=b"D:"), echo_backend(prefix=b"DEV:")
    port = free_udp_port()
    daemon = start_daemon([{
        "name": "mtls", "listen": f"127.0.0.1:{port}", "backend": f"127.0.0.1:{default.port}",
        "certificate": str(certs["cert"]), "private_key": str(certs["key"]), "client_ca": str(pki["ca"]),
        "routes": [{"name": "r-dev1", "client_identity": "dev1", "backend": f"127.0.0.1:{devices.port}"}],
    }])
    cert, key = pki["dev1"]
    session = str(tmp_path / "session.pem")
    for n, client in enumerate(_full_then_resumed_s_client(peer, port, session, "-cert", str(cert), "-key", str(key))):
        assert _tagged_reply(client, b"certificate %d" % n) == b"DEV"
    assert default.records == []
    assert daemon.wait_count(" session open ", 2), _session_opens(daemon)  # the log is written by a thread
    opens = _session_opens(daemon)
    assert "resumed=yes" in opens[1], opens
    assert all("route=r-dev1" in line and "identity=dev1" in line for line in opens), opens
