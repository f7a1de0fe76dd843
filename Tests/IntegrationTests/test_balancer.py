"""Three instances behind the balancer a Kubernetes Service gives, in network namespaces.

The test builds kube-proxy's own layout: a "node" namespace with a bridge to
three instance namespaces (pod addresses 10.244.0.11-13), a service address
10.96.0.10:5684 that exists only in netfilter, and the nat chains kube-proxy
writes (KUBE-SERVICES, KUBE-SVC-…, KUBE-SEP-…) with the `statistic` match
spreading new flows and conntrack pinning each 5-tuple to its instance. The
connector and a relay that can give the tunnel new source ports run in the
node namespace and reach the service address only. Every namespace is the
test's own and is removed at the end; nothing outside them is touched.
"""

from __future__ import annotations

import ctypes
import os
import socket
import subprocess
import threading
import time
import uuid

import pytest

from faultrelay import FaultRelay
from harness import DAEMON_BIN, UDP_ECHO_BIN, Daemon, Proc, report, write_config, write_secret

CLONE_NEWNET = 0x40000000
VIP = "10.96.0.10"
PODS = ["10.244.0.11", "10.244.0.12", "10.244.0.13"]
CIPHER = "ECDHE-ECDSA-AES128-GCM-SHA256"
# Enough sessions that an instance gets none with a chance of 3 × (2/3)^36, about 1e-6.
SPREAD_SESSIONS = 36
_libc = ctypes.CDLL("libc.so.6", use_errno=True)

def sh(*argv: str):
    subprocess.run(argv, check=True, capture_output=True, timeout=30)


def in_netns(name: str, body):
    """Runs `body` on a thread moved into the namespace `name`: sockets it makes (and
    threads it starts) live there, and may be used from any thread afterwards."""
    outcome: dict = {}

    def run():
        fd = os.open(f"/var/run/netns/{name}", os.O_RDONLY)
        try:
            if _libc.setns(fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), f"setns {name}")
        finally:
            os.close(fd)
        try:
            outcome["value"] = body()
        except BaseException as error:  # handed to the caller
            outcome["error"] = error

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(60)
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


class NetnsDaemon(Daemon):
    """dtls-proxyd inside a namespace (`ip netns exec` execs it: the pid is the daemon's)."""

    def __init__(self, netns: str, config):
        self.config = config
        Proc.__init__(self, ["ip", "netns", "exec", netns, str(DAEMON_BIN), "--config", str(config)],
                      stderr_apart=True)


@pytest.fixture
def service(tmp_path, certs, procs):
    """Builds the namespaces, the bridge and kube-proxy's chains; starts three instances."""
    tag = uuid.uuid4().hex[:6]
    node, pods = f"dpx{tag}n", [f"dpx{tag}p{i}" for i in (1, 2, 3)]
    created: list[str] = []
    try:
        for ns in [node, *pods]:
            sh("ip", "netns", "add", ns)
            created.append(ns)
            sh("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
        n = ("ip", "netns", "exec", node)
        sh(*n, "ip", "link", "add", "br0", "type", "bridge")
        sh(*n, "ip", "addr", "add", "10.244.0.1/24", "dev", "br0")
        sh(*n, "ip", "link", "set", "br0", "up")
        sh(*n, "ip", "route", "add", "10.96.0.0/16", "dev", "br0")
        for index, (ns, pod) in enumerate(zip(pods, PODS), 1):
            sh(*n, "ip", "link", "add", f"veth{index}", "type", "veth", "peer", "name", "eth0", "netns", ns)
            sh(*n, "ip", "link", "set", f"veth{index}", "master", "br0", "up")
            p = ("ip", "netns", "exec", ns)
            sh(*p, "ip", "addr", "add", f"{pod}/24", "dev", "eth0")
            sh(*p, "ip", "link", "set", "eth0", "up")
            sh(*p, "ip", "route", "add", "default", "via", "10.244.0.1")
        # kube-proxy's iptables layout for a UDP Service with three endpoints.
        ipt = (*n, "iptables", "-t", "nat")
        sh(*ipt, "-N", "KUBE-SERVICES")
        sh(*ipt, "-A", "OUTPUT", "-j", "KUBE-SERVICES")
        sh(*ipt, "-N", "KUBE-SVC-DTLS")
        sh(*ipt, "-A", "KUBE-SERVICES", "-d", f"{VIP}/32", "-p", "udp", "--dport", "5684", "-j", "KUBE-SVC-DTLS")
        for index, pod in enumerate(PODS, 1):
            sh(*ipt, "-N", f"KUBE-SEP-{index}")
            sh(*ipt, "-A", f"KUBE-SEP-{index}", "-p", "udp", "-j", "DNAT", "--to-destination", f"{pod}:5684")
        sh(*ipt, "-A", "KUBE-SVC-DTLS", "-m", "statistic", "--mode", "random", "--probability", "0.33333", "-j",
           "KUBE-SEP-1")
        sh(*ipt, "-A", "KUBE-SVC-DTLS", "-m", "statistic", "--mode", "random", "--probability", "0.50000", "-j",
           "KUBE-SEP-2")
        sh(*ipt, "-A", "KUBE-SVC-DTLS", "-j", "KUBE-SEP-3")

        secret = write_secret(tmp_path / "cluster.secret", b"the cluster's shared secret, 32+ bytes")
        tickets = write_secret(tmp_path / "ticket.key", os.urandom(48))
        instances = []
        for index, (ns, pod) in enumerate(zip(pods, PODS), 1):
            echo = Proc(["ip", "netns", "exec", ns, str(UDP_ECHO_BIN), "--listen", "127.0.0.1:5683"])
            procs.append(echo)
            peers = [{"node_id": other, "address": f"{PODS[other - 1]}:7400"} for other in (1, 2, 3) if other != index]
            listener = {"name": "svc", "listen": f"{pod}:5684", "backend": "127.0.0.1:5683",
                        "certificate": str(certs["cert"]), "private_key": str(certs["key"]), "ciphers": CIPHER,
                        "ticket_key_file": str(tickets)}
            daemon_keys = {"node_id": index, "health_listen": f"{pod}:8080", "drain_timeout": "3s"}
            config = write_config(tmp_path / f"pod{index}.toml", [listener], daemon=daemon_keys,
                                  cluster={"listen": f"{pod}:7400", "secret_file": str(secret), "peers": peers})
            daemon = NetnsDaemon(ns, config)
            procs.append(daemon)
            instances.append(daemon)
        for daemon in instances:
            daemon.wait_ready()
        yield node, instances, ipt
    finally:
        for p in reversed(procs):
            p.kill()
        for ns in created:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)


def opens(daemon) -> int:
    return sum("session open" in line for line in daemon.log_lines())


def opens_per_instance(instances, total: int) -> list[int]:
    """Each instance's session open lines, once `total` have been logged (the log is written by a thread)."""
    deadline = time.monotonic() + 5
    while True:
        counts = [opens(d) for d in instances]
        if sum(counts) >= total or time.monotonic() > deadline:
            return counts
        time.sleep(0.05)


def start_tunnel(node, tmp_path, certs, procs, clients: int, relay: FaultRelay | None = None):
    """The connector in the node namespace (through `relay` when given) and `clients` local peers."""
    server = f"127.0.0.1:{relay.port}" if relay else f"{VIP}:5684"
    connector = {"name": "tun", "listen": "127.0.0.1:6700", "server": server, "server_ca": str(certs["cert"]),
                 "server_name": "localhost", "ciphers": CIPHER, "connection_id": True}
    near = NetnsDaemon(node, write_config(tmp_path / "near.toml", connectors=[connector]))
    procs.append(near)
    near.wait_ready()

    def make():
        made = []
        for _ in range(clients):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("127.0.0.1", 0))
            s.settimeout(5)
            made.append(s)
        return made
    return near, in_netns(node, make)


def echo_all(clients, tag: bytes):
    for index, s in enumerate(clients):
        payload = b"%s %d" % (tag, index)
        s.sendto(payload, ("127.0.0.1", 6700))
        assert s.recv(65536) == payload, f"client {index}"


def http_status(node: str, address: str, path: str) -> int:
    def get():
        with socket.create_connection((address, 8080), timeout=5) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
            return int(s.recv(4096).split(b" ", 2)[1])
    return in_netns(node, get)


def test_sessions_spread_over_instances_and_follow_their_clients_across_them(service, tmp_path, certs, procs):
    node, instances, _ = service
    relay = in_netns(node, lambda: FaultRelay((VIP, 5684)))
    try:
        near, clients = start_tunnel(node, tmp_path, certs, procs, SPREAD_SESSIONS, relay)
        echo_all(clients, b"before")
        per_instance = opens_per_instance(instances, SPREAD_SESSIONS)
        assert sum(per_instance) == SPREAD_SESSIONS, per_instance
        assert all(count > 0 for count in per_instance), f"handshakes did not spread: {per_instance}"

        # Every tunnel flow gets a new source port: conntrack sees new 5-tuples and the
        # statistic match sends about two thirds of them to another instance.
        in_netns(node, relay.rebind)
        echo_all(clients, b"after")
        assert [opens(d) for d in instances] == per_instance, "no new handshake anywhere"
        forwarded = 0
        for daemon in instances:
            start = daemon.mark()
            daemon.stats()
            line = next(l for l in daemon.log_lines(start) if " stats cluster " in l)
            forwarded += int(line.split(" forwarded=", 1)[1].split()[0])
        assert forwarded > 0, "no flow landed on another instance"
        deadline = time.monotonic() + 5
        while (moved := sum(sum("session moved peer=" in l for l in d.log_lines()) for d in instances)) < SPREAD_SESSIONS:
            assert time.monotonic() < deadline, moved
            time.sleep(0.05)
        assert moved == SPREAD_SESSIONS
        report(f"behind kube-proxy's DNAT layout: {SPREAD_SESSIONS} handshakes spread {per_instance} over 3 instances; after a "
               f"source-port change of every flow, {forwarded} datagrams crossed to their session's instance, "
               "no new handshake")
    finally:
        relay.stop()


def test_a_draining_instance_loses_no_echo_and_its_clients_resume_on_the_others(service, tmp_path, certs, procs):
    node, instances, ipt = service
    near, clients = start_tunnel(node, tmp_path, certs, procs, 12)
    echo_all(clients, b"warm")
    counts = opens_per_instance(instances, 12)
    victim = max(range(3), key=lambda i: counts[i])
    assert counts[victim] > 0
    assert all(http_status(node, pod, "/readyz") == 200 for pod in PODS)

    instances[victim].signal(15)
    instances[victim].wait_for(r"draining: /readyz answers 503", timeout=5)
    assert http_status(node, PODS[victim], "/readyz") == 503
    assert http_status(node, PODS[victim], "/healthz") == 200
    # What kube-proxy does once the endpoint is not ready: its rule goes, new flows go elsewhere.
    sh(*ipt, "-F", "KUBE-SVC-DTLS")
    others = [i for i in range(3) if i != victim]
    sh(*ipt, "-A", "KUBE-SVC-DTLS", "-m", "statistic", "--mode", "random", "--probability", "0.50000", "-j",
       f"KUBE-SEP-{others[0] + 1}")
    sh(*ipt, "-A", "KUBE-SVC-DTLS", "-j", f"KUBE-SEP-{others[1] + 1}")
    # During the drain, established sessions on it keep echoing: nothing is lost.
    deadline = time.monotonic() + 2
    rounds = 0
    while time.monotonic() < deadline:
        echo_all(clients, b"drain %d" % rounds)
        rounds += 1
    assert instances[victim].wait(timeout=15) == 0
    assert sum("reason=shutdown" in l for l in instances[victim].log_lines()) == counts[victim]
    # Its clients' sessions got close_notify; their next datagrams make new sessions on
    # the others, resumed from the shared ticket key.
    time.sleep(0.5)
    echo_all(clients, b"after")
    deadline = time.monotonic() + 5
    while (resumed := sum(sum("session open" in l and "resumed=yes" in l for l in instances[i].log_lines())
                          for i in others)) < counts[victim]:
        assert time.monotonic() < deadline, (resumed, counts)
        time.sleep(0.05)
    report(f"SIGTERM with a 3 s drain: {rounds} echo rounds of 12 sessions during the drain, none lost; "
           f"{counts[victim]} sessions of the drained instance resumed on the others")

