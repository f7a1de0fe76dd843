"""Several instances: a session follows its client to another instance.

Two daemons (node_id 1 and 2) run the same listener and share a cluster
secret. A relay plays the balancer in front of them: the tunnel's session is
made on node 1; then the relay gives the tunnel a new source port and, as a
5-tuple balancer may, sends the new flow to node 2. Node 2 sees node 1's
node_id in the connection ID, forwards the datagram over the cluster port,
node 1's session answers, and node 2 delivers the answer from its own socket.
"""

from __future__ import annotations

import socket
import time

import pytest

from faultrelay import FaultRelay
from harness import connector_config, endpoint_port, free_tcp_port, free_udp_port, listener_config, metric, scrape, \
    udp_client, udp_roundtrip, write_secret

CIPHER = "ECDHE-ECDSA-AES128-GCM-SHA256"


def start_cluster(start_daemon, echo_backend, certs, tmp_path, secret=b"cluster secret of the test 0123456789"):
    backend = echo_backend()
    secret_file = write_secret(tmp_path / "cluster.secret", secret)
    ports = {1: free_udp_port(), 2: free_udp_port()}
    metrics = {1: free_tcp_port(), 2: free_tcp_port()}
    nodes = {}
    for node, other in ((1, 2), (2, 1)):
        listener = listener_config(backend, certs, name="svc", ciphers=CIPHER)
        cluster = {"listen": f"127.0.0.1:{ports[node]}", "secret_file": str(secret_file),
                   "peers": [{"node_id": other, "address": f"127.0.0.1:{ports[other]}"}]}
        daemon = {"node_id": node, "metrics_listen": f"127.0.0.1:{metrics[node]}"}
        nodes[node] = (start_daemon([listener], daemon=daemon, cluster=cluster), listener)
    return nodes, backend, ports, metrics


def tunnel_to(node_listener, start_daemon, certs, relays):
    relay = FaultRelay(("127.0.0.1", endpoint_port(node_listener["listen"])))
    relays.append(relay)
    connector = connector_config(f"127.0.0.1:{relay.port}", ciphers=CIPHER, connection_id=True,
                                 server_ca=str(certs["cert"]), server_name="localhost")
    near = start_daemon(connectors=[connector])
    return relay, near, endpoint_port(connector["listen"])


def opens(daemon) -> list[str]:
    return [line for line in daemon.log_lines() if "session open" in line]


def cluster_stats(daemon) -> dict[str, int]:
    start = daemon.mark()
    daemon.stats()
    line = next(l for l in daemon.log_lines(start) if " stats cluster " in l)
    return {k: int(v) for k, v in (kv.split("=") for kv in line.split(" stats cluster ", 1)[1].split())}


def test_a_session_follows_its_client_to_another_instance(start_daemon, echo_backend, certs, tmp_path, relays):
    nodes, backend, _, metrics = start_cluster(start_daemon, echo_backend, certs, tmp_path)
    (one, one_listener), (two, two_listener) = nodes[1], nodes[2]
    relay, near, local = tunnel_to(one_listener, start_daemon, certs, relays)
    client = udp_client()
    before = [b"before %d" % i for i in range(10)]
    assert udp_roundtrip(client, local, before, window=1) == before
    record = next(d for d in reversed(relay.from_clients) if d[0] == 25)
    assert record[11] == 1, "the CID names node 1"

    relay.rebind(target=("127.0.0.1", endpoint_port(two_listener["listen"])))
    after = [b"after %d" % i for i in range(10)]
    assert udp_roundtrip(client, local, after, window=1) == after

    # One handshake in all, on node 1; node 2 holds no session and forwarded every datagram.
    assert len(opens(one)) == 1 and len(opens(two)) == 0
    assert one.wait_for(r"session moved peer=127\.0\.0\.1:\d+ -> 127\.0\.0\.1:\d+ listener=svc .*via_node=2",
                        timeout=5)
    assert len({addr[1] for addr, _ in backend.records}) == 1, "the backend saw one source port"
    two_counts, one_counts = cluster_stats(two), cluster_stats(one)
    assert two_counts["forwarded"] >= 10 and two_counts["replies_received"] >= 10
    assert one_counts["forwards_received"] >= 10 and one_counts["replied"] >= 10
    assert one_counts["dropped_unauthenticated"] == 0 and two_counts["dropped_replayed"] == 0
    status, text = scrape(metrics[1])
    assert status == 200
    assert metric(text, "dtlsproxy_cluster_datagrams_total", direction="forwards_received") >= 10
    assert abs(metric(text, "dtlsproxy_cluster_peer_last_heard_seconds", node="2") - time.time()) < 60


def test_forged_cluster_messages_are_dropped_and_counted(start_daemon, echo_backend, certs, tmp_path,
                                                                      relays):
    nodes, backend, ports, _ = start_cluster(start_daemon, echo_backend, certs, tmp_path)
    (one, one_listener), (two, two_listener) = nodes[1], nodes[2]
    relay, near, local = tunnel_to(one_listener, start_daemon, certs, relays)
    client = udp_client()
    assert udp_roundtrip(client, local, [b"hello"]) == [b"hello"]
    relay.rebind(target=("127.0.0.1", endpoint_port(two_listener["listen"])))
    assert udp_roundtrip(client, local, [b"via two"]) == [b"via two"]

    # A message of the right layout whose tag was not made with the cluster's secret, and garbage.
    attacker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    forged = b"DPXC\x01\x01\x02\x00" + int(time.time() * 1000).to_bytes(8, "big") + (1).to_bytes(8, "big") \
        + b"\x03svc\x04\x7f\x00\x00\x01\x30\x39" + record_like() + bytes(16)
    attacker.sendto(forged, ("127.0.0.1", ports[1]))
    attacker.sendto(b"garbage", ("127.0.0.1", ports[1]))
    deadline = time.monotonic() + 5
    while cluster_stats(one)["dropped_unauthenticated"] < 2:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    # The tunnel is untouched.
    assert udp_roundtrip(client, local, [b"still"]) == [b"still"]
    assert len(opens(one)) == 1


def record_like() -> bytes:
    return bytes([25, 0xFE, 0xFD, 0, 1, 0, 0, 0, 0, 0, 9]) + bytes([1] + [0] * 7) + b"\x00\x10" + bytes(16)


def test_a_record_for_a_node_that_is_not_a_peer_is_dropped(start_daemon, echo_backend, certs, tmp_path, relays):
    nodes, backend, ports, _ = start_cluster(start_daemon, echo_backend, certs, tmp_path)
    (one, one_listener), _ = nodes[1], nodes[2]
    stranger = udp_client(timeout=0.5)
    # A tls12_cid record whose CID names node 9, which nobody runs.
    record = bytes([25, 0xFE, 0xFD, 0, 1, 0, 0, 0, 0, 0, 9]) + bytes([9] + [7] * 7) + b"\x00\x10" + bytes(16)
    stranger.sendto(record, ("127.0.0.1", endpoint_port(one_listener["listen"])))
    with pytest.raises(socket.timeout):
        stranger.recv(65536)
    deadline = time.monotonic() + 5
    while cluster_stats(one)["dropped_unknown_node"] < 1:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert one.stats()["svc"]["dropped_unknown_cid"] >= 1
