"""PROXY protocol v2 in front of every datagram to the backend (HAProxy's
"PROXY protocol" text, section 2.2), checked byte for byte by a backend that
parses it independently of the daemon's code.

Peer: openssl s_client with -bind, so the test knows the client's true
source address and port, and -servername for the AUTHORITY TLV.
"""

from __future__ import annotations

import ipaddress
import struct

import pytest

from harness import S_CLIENT_DONE, echo_roundtrip, fixed_client_port, free_udp_port, s_client_argv

SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"


def parse_proxy_v2(data: bytes) -> dict:
    """Parses one datagram's PROXY v2 header; raises AssertionError on any deviation."""
    assert data[:12] == SIGNATURE, data[:12]
    assert data[12] == 0x21, f"version 2 / command PROXY expected, got {data[12]:#x}"
    family, transport = data[13] >> 4, data[13] & 0x0F
    assert transport == 0x2, f"transport DGRAM expected, got {transport}"
    (length,) = struct.unpack("!H", data[14:16])
    body, payload = data[16:16 + length], data[16 + length:]
    assert len(body) == length
    if family == 0x1:
        src, dst = ipaddress.IPv4Address(body[0:4]), ipaddress.IPv4Address(body[4:8])
        sport, dport = struct.unpack("!HH", body[8:12])
        rest = body[12:]
    else:
        assert family == 0x2, f"AF_INET or AF_INET6 expected, got {family}"
        src, dst = ipaddress.IPv6Address(body[0:16]), ipaddress.IPv6Address(body[16:32])
        sport, dport = struct.unpack("!HH", body[32:36])
        rest = body[36:]
    tlvs = {}
    while rest:
        assert len(rest) >= 3, "truncated TLV"
        kind, size = rest[0], struct.unpack("!H", rest[1:3])[0]
        assert len(rest) >= 3 + size, "TLV longer than the header"
        tlvs[kind] = rest[3:3 + size]
        rest = rest[3 + size:]
    return {"src": (str(src), sport), "dst": (str(dst), dport), "tlvs": tlvs, "payload": payload}


def parse_ssl_tlv(value: bytes) -> dict:
    client, verify = value[0], struct.unpack("!I", value[1:5])[0]
    subs, rest = {}, value[5:]
    while rest:
        kind, size = rest[0], struct.unpack("!H", rest[1:3])[0]
        subs[kind] = rest[3:3 + size]
        rest = rest[3 + size:]
    return {"client": client, "verify": verify, "subs": subs}


class ProxyV2Parser:
    """The reply function of an echo backend: parses each datagram's header,
    keeps it, and echoes the payload alone (replies carry no header)."""

    def __init__(self):
        self.headers: list[dict] = []
        self.errors: list[str] = []

    def __call__(self, data: bytes) -> bytes:
        try:
            parsed = parse_proxy_v2(data)
        except AssertionError as error:
            self.errors.append(str(error))
            return b"unparsable header"
        self.headers.append(parsed)
        return parsed["payload"]


@pytest.fixture
def v2_backend(echo_backend):
    """``v2_backend(host)`` -> (backend, parser)."""
    def start(host: str):
        parser = ProxyV2Parser()
        return echo_backend(host=host, reply=parser), parser
    return start


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_backend_sees_the_true_client_address_in_a_proxy_v2_header(host, start_daemon, v2_backend, peer, certs, require_ipv6):
    backend, parser = v2_backend(host)
    port, client_port = free_udp_port(host), fixed_client_port(host)
    hostport = f"[{host}]" if ":" in host else host
    start_daemon([{"name": "pp", "listen": f"{hostport}:{port}", "backend": f"{hostport}:{backend.port}",
                   "proxy_protocol": "v2",
                   "certificate": str(certs["cert"]), "private_key": str(certs["key"])}])
    c = peer(s_client_argv(host, port, "-bind", f"{hostport}:{client_port}", "-servername", "svc.example", "-ign_eof"))
    c.wait_for(S_CLIENT_DONE, timeout=15)
    for i in range(3):
        echo_roundtrip(c, b"payload %d\n" % i)  # the reply reached the client without a header
    assert parser.errors == []
    assert len(parser.headers) == 3
    for i, header in enumerate(parser.headers):
        assert header["src"] == (str(ipaddress.ip_address(host)), client_port), header
        assert header["dst"] == (str(ipaddress.ip_address(host)), port), header
        assert header["payload"] == b"payload %d\n" % i
        assert header["tlvs"][0x02] == b"svc.example"
        ssl = parse_ssl_tlv(header["tlvs"][0x20])
        assert ssl["client"] & 0x01 and not ssl["client"] & 0x02, "DTLS, no client certificate"
        assert ssl["verify"] == 0
        assert ssl["subs"][0x21] == b"DTLSv1.2"
        assert ssl["subs"][0x23].startswith(b"ECDHE-")


def test_route_level_proxy_protocol_and_client_certificate_tlvs(start_daemon, v2_backend, echo_backend, peer, certs, pki):
    plain, (backend, parser) = echo_backend(), v2_backend("127.0.0.1")
    port, client_port = free_udp_port(), fixed_client_port()
    start_daemon([{"name": "pp", "listen": f"127.0.0.1:{port}", "backend": f"127.0.0.1:{plain.port}",
                   "certificate": str(certs["cert"]), "private_key": str(certs["key"]),
                   "client_ca": str(pki["ca"]),
                   "routes": [{"client_identity": "sensor-9", "backend": f"127.0.0.1:{backend.port}", "proxy_protocol": "v2"}]}])
    cert, key = pki["sensor"]
    c = peer(s_client_argv("127.0.0.1", port, "-bind", f"127.0.0.1:{client_port}", "-cert", str(cert), "-key", str(key), "-ign_eof"))
    c.wait_for(S_CLIENT_DONE, timeout=15)
    echo_roundtrip(c, b"from the sensor\n")
    assert parser.errors == [] and len(parser.headers) == 1
    header = parser.headers[0]
    assert header["src"] == ("127.0.0.1", client_port)
    assert 0x02 not in header["tlvs"], "no SNI sent, no AUTHORITY TLV"
    ssl = parse_ssl_tlv(header["tlvs"][0x20])
    assert ssl["client"] == 0x07, "DTLS, certificate in this connection and in the session"
    assert ssl["subs"][0x22] == b"sensor-9"
    # dev1 matches no route: the default backend gets plain datagrams.
    cert, key = pki["dev1"]
    d = peer(s_client_argv("127.0.0.1", port, "-cert", str(cert), "-key", str(key), "-ign_eof"))
    d.wait_for(S_CLIENT_DONE, timeout=15)
    echo_roundtrip(d, b"plain\n")
    assert [p for _, p in plain.records] == [b"plain\n"]
