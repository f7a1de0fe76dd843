"""RFC 9146 connection IDs: a session that survives a change of its client's address.

The daemon's own connector is the client (no independent peer on this machine
offers the extension; the record format itself is checked against sessions
captured from Mbed TLS in the unit tests). Between the connector and the
listener a relay plays the NAT: ``rebind()`` gives the tunnel a new source
port mid-session, as a NAT whose binding expired would.
"""

from __future__ import annotations

import socket
import time

import pytest

from faultrelay import FaultRelay
from test_proxy_protocol import ProxyV2Parser
from harness import (
    connector_config,
    endpoint_port,
    listener_config,
    udp_client,
    udp_roundtrip,
    write_secret,
)

PSK_IDENTITY = "sensor-17"
PSK_HEX = "00112233445566778899aabbccddeeff"

# Certificate with AES-128-GCM, PSK with AES-128-CCM-8 (the CoAP suite of RFC 7252).
CASES = [("cert", "ECDHE-ECDSA-AES128-GCM-SHA256"), ("psk", "PSK-AES128-CCM8")]
# Every other AEAD suite the daemon offers.
MORE_SUITES = [("cert", "ECDHE-ECDSA-AES256-GCM-SHA384"), ("cert", "ECDHE-ECDSA-CHACHA20-POLY1305"),
               ("psk", "PSK-AES128-CCM"), ("psk", "PSK-CHACHA20-POLY1305")]


def start_tunnel(start_daemon, echo_backend, certs, tmp_path, relays, auth, cipher, listener_cid=True,
                 reply=None, node_id=0, **listener_keys):
    """Backend ← listener ← relay ← connector, with connection IDs offered by the connector."""
    backend = echo_backend(reply=reply)
    if auth == "cert":
        listener = listener_config(backend, certs, name="far", ciphers=cipher, connection_id=listener_cid,
                                   **listener_keys)
        credentials = {"server_ca": str(certs["cert"]), "server_name": "localhost"}
    else:
        psk = write_secret(tmp_path / "psk.txt", f"{PSK_IDENTITY}:{PSK_HEX}\n")
        listener = listener_config(backend, name="far", psk_file=str(psk), ciphers=cipher,
                                   connection_id=listener_cid, **listener_keys)
        credentials = {"psk_identity": PSK_IDENTITY, "psk_file": str(psk)}
    far = start_daemon([listener], daemon={"node_id": node_id})
    relay = FaultRelay(("127.0.0.1", endpoint_port(listener["listen"])))
    relays.append(relay)
    connector = connector_config(f"127.0.0.1:{relay.port}", ciphers=cipher, connection_id=True, **credentials)
    near = start_daemon(connectors=[connector])
    return far, near, relay, backend, endpoint_port(connector["listen"])


def opens(daemon) -> list[str]:
    return [line for line in daemon.log_lines() if "session open" in line]


@pytest.mark.parametrize("auth,cipher", CASES + MORE_SUITES)
def test_session_follows_its_client_to_a_new_port(start_daemon, echo_backend, certs, tmp_path, relays,
                                                  auth, cipher):
    far, near, relay, backend, local = start_tunnel(start_daemon, echo_backend, certs, tmp_path, relays,
                                                    auth, cipher)
    client = udp_client()
    before = [b"before %d" % i for i in range(20)]
    assert udp_roundtrip(client, local, before, window=5) == before
    ports_before = {addr[1] for addr, _ in backend.records}
    assert len(ports_before) == 1

    ((old_port, new_port),) = relay.rebind()
    after = [b"after %d" % i for i in range(20)]
    assert udp_roundtrip(client, local, after, window=1) == after

    # One handshake on each side, the same backend source port, one move logged and counted.
    assert len(opens(far)) == 1 and len(opens(near)) == 1
    assert {addr[1] for addr, _ in backend.records} == ports_before
    assert far.wait_for(rf"session moved peer=127\.0\.0\.1:{old_port} -> 127\.0\.0\.1:{new_port} listener=far",
                        timeout=5)
    stats = far.stats()["far"]
    assert stats["sessions_moved"] == 1
    assert stats["dropped_unverified_address"] == 0
    assert f"cipher={cipher}" in opens(far)[0]


def test_without_connection_ids_the_same_rebinding_needs_a_new_handshake(start_daemon, echo_backend, certs,
                                                                         tmp_path, relays):
    far, near, relay, backend, local = start_tunnel(start_daemon, echo_backend, certs, tmp_path, relays,
                                                    *CASES[0], listener_cid=False)
    client = udp_client(timeout=1.5)
    assert udp_roundtrip(client, local, [b"one"]) == [b"one"]
    relay.rebind()
    client.sendto(b"lost", ("127.0.0.1", local))
    with pytest.raises(socket.timeout):
        client.recv(65536)
    assert far.stats()["far"]["dropped_no_session"] >= 1
    # A new local peer gets a session of its own: a second full handshake.
    fresh = udp_client()
    assert udp_roundtrip(fresh, local, [b"two"]) == [b"two"]
    assert far.wait_count("session open", 2, timeout=5), opens(far)
    assert far.stats()["far"]["sessions_moved"] == 0


def test_replayed_forged_and_unknown_records_from_new_addresses_move_nothing(start_daemon, echo_backend, certs,
                                                                            tmp_path, relays):
    far, near, relay, backend, local = start_tunnel(start_daemon, echo_backend, certs, tmp_path, relays, *CASES[1],
                                                    node_id=201)
    client = udp_client()
    assert udp_roundtrip(client, local, [b"ping"]) == [b"ping"]
    record = next(d for d in reversed(relay.from_clients) if d[0] == 25)
    # The CID (after type, version, epoch and sequence number) starts with the instance's node_id.
    assert record[11] == 201
    listener_port = relay.target[1]
    attacker = udp_client(timeout=0.5)

    attacker.sendto(record, ("127.0.0.1", listener_port))               # a replay
    forged = bytearray(record)
    forged[-1] ^= 0x01                                                  # a broken tag
    attacker.sendto(bytes(forged), ("127.0.0.1", listener_port))
    unknown = bytearray(record)
    unknown[12] ^= 0xFF                                                 # another CID
    attacker.sendto(bytes(unknown), ("127.0.0.1", listener_port))
    attacker.sendto(bytes([25, 0xFE, 0xFD]) + bytes(40), ("127.0.0.1", listener_port))  # garbage
    with pytest.raises(socket.timeout):
        attacker.recv(65536)

    deadline = time.monotonic() + 5
    while True:
        stats = far.stats()["far"]
        if stats["dropped_unverified_address"] >= 2 and stats["dropped_unknown_cid"] >= 2:
            break
        assert time.monotonic() < deadline, stats
        time.sleep(0.2)
    assert stats["sessions_moved"] == 0
    # The session stays where it was and keeps working.
    assert udp_roundtrip(client, local, [b"still here"]) == [b"still here"]
    assert len(opens(far)) == 1


def test_a_new_address_gets_at_most_three_times_what_it_sent_until_it_sends_again(start_daemon, echo_backend,
                                                                                  certs, tmp_path, relays):
    # The backend answers "big" with 1 000 bytes: more than three times the record that asked.
    far, near, relay, backend, local = start_tunnel(
        start_daemon, echo_backend, certs, tmp_path, relays, *CASES[0],
        reply=lambda data: b"B" * 1000 if data == b"big" else data)
    client = udp_client(timeout=1.5)
    assert udp_roundtrip(client, local, [b"hello"]) == [b"hello"]
    relay.rebind()
    client.sendto(b"big", ("127.0.0.1", local))
    with pytest.raises(socket.timeout):
        client.recv(65536)
    stats = far.stats()["far"]
    assert stats["sessions_moved"] == 1 and stats["dropped_amplification"] >= 1
    # A second authenticated record from the new address lifts the limit.
    assert udp_roundtrip(client, local, [b"again"]) == [b"again"]
    assert udp_roundtrip(client, local, [b"big"]) == [b"B" * 1000]


def test_resumed_sessions_negotiate_their_own_cid_and_move_too(start_daemon, echo_backend, certs, tmp_path,
                                                               relays):
    far, near, relay, backend, local = start_tunnel(start_daemon, echo_backend, certs, tmp_path, relays, *CASES[0])
    first, second = udp_client(), udp_client()
    assert udp_roundtrip(first, local, [b"first"]) == [b"first"]
    assert udp_roundtrip(second, local, [b"second"]) == [b"second"]
    assert far.wait_count("session open", 2, timeout=5)
    assert "resumed=yes" in opens(far)[1]
    cids = {d[11:19] for d in relay.from_clients if d[0] == 25}
    assert len(cids) == 2, "each session has a CID of its own"
    assert len(relay.rebind()) == 2
    assert udp_roundtrip(first, local, [b"first again"]) == [b"first again"]
    assert udp_roundtrip(second, local, [b"second again"]) == [b"second again"]
    assert far.wait_count("session moved peer=", 2, timeout=5)
    assert far.stats()["far"]["sessions_moved"] == 2 and len(opens(far)) == 2


def test_proxy_v2_headers_name_the_new_address_after_a_move(start_daemon, echo_backend, certs, tmp_path, relays):
    parser = ProxyV2Parser()
    far, near, relay, backend, local = start_tunnel(start_daemon, echo_backend, certs, tmp_path, relays, *CASES[1],
                                                    reply=parser, proxy_protocol="v2")
    client = udp_client()
    assert udp_roundtrip(client, local, [b"before"]) == [b"before"]
    ((old_port, new_port),) = relay.rebind()
    assert udp_roundtrip(client, local, [b"after"]) == [b"after"]
    assert not parser.errors, parser.errors
    sources = [(h["src"][1], h["payload"]) for h in parser.headers]
    assert sources == [(old_port, b"before"), (new_port, b"after")]
    assert len({addr[1] for addr, _ in backend.records}) == 1

