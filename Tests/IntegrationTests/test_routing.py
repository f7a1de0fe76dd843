"""Routes within one listener (SNI, PSK identity, client certificate) and backend pools.

Peers: openssl s_client (-servername, -bind for fixed source ports), gnutls-cli
(--sni-hostname, PSK identities, client certificates). Each backend tags its
replies, so a client can tell which backend answered it.
"""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import pytest

from harness import (
    GNUTLS_DONE,
    S_CLIENT_DONE,
    echo_roundtrip,
    fixed_client_port,
    free_tcp_port,
    free_udp_port,
    metric,
    scrape,
    gnutls_argv,
    report,
    s_client_argv,
    write_secret,
)

GNUTLS_PSK = ("--priority", "NORMAL:-KX-ALL:+PSK")


@pytest.fixture(scope="module")
def name_certs(tmp_path_factory) -> dict[str, tuple[Path, Path]]:
    """Self-signed ECDSA certificates for a.test and b.test: name -> (certificate, key)."""
    d = tmp_path_factory.mktemp("sni")
    out = {}
    for name in ("a.test", "b.test"):
        cert, key = d / f"{name}.pem", d / f"{name}.key"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                        "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", f"/CN={name}",
                        "-addext", f"subjectAltName=DNS:{name}"], check=True, capture_output=True, timeout=30)
        key.chmod(0o600)
        out[name] = (cert, key)
    return out


def _listener(port: int, certs: dict, **keys) -> dict:
    listener = {"name": "routed", "listen": f"127.0.0.1:{port}",
                "certificate": str(certs["cert"]), "private_key": str(certs["key"])}
    listener.update(keys)
    return listener


def _tagged_reply(client, line: bytes, timeout: float = 10.0) -> bytes:
    """Send one line and return the tag (``A``, ``B``, ...) of the backend that echoed it."""
    start = client.mark()
    client.send(line + b"\n")
    m = client.wait_for(rb"([A-Z]+):" + re.escape(line), timeout=timeout, start=start)
    return m.group(1)


def test_sni_routes_to_their_backends_with_their_certificates(start_daemon, echo_backend, peer, certs, name_certs):
    a, b, default = echo_backend(prefix=b"A:"), echo_backend(prefix=b"B:"), echo_backend(prefix=b"D:")
    port = free_udp_port()
    daemon = start_daemon([_listener(port, certs, backend=f"127.0.0.1:{default.port}", routes=[
        {"name": "svc-a", "server_name": "a.test", "backend": f"127.0.0.1:{a.port}",
         "certificate": str(name_certs["a.test"][0]), "private_key": str(name_certs["a.test"][1])},
        {"name": "svc-b", "server_name": "*.b.test", "backend": f"127.0.0.1:{b.port}"},
        {"name": "svc-b-apex", "server_name": "b.test", "backend": f"127.0.0.1:{b.port}",
         "certificate": str(name_certs["b.test"][0]), "private_key": str(name_certs["b.test"][1])},
    ])])
    served = {}
    for name, tag in (("a.test", b"A"), ("b.test", b"B"), ("x.b.test", b"B"), ("unknown.test", b"D")):
        c = peer(s_client_argv("127.0.0.1", port, "-servername", name, "-ign_eof"))
        c.wait_for(S_CLIENT_DONE, timeout=15)
        subject = c.wait_for(rb"subject=([^\n]*)", timeout=5).group(1)
        served[name] = subject.decode()
        assert _tagged_reply(c, f"hello {name}".encode()) == tag, name
        c.kill()
    assert "a.test" in served["a.test"] and "b.test" in served["b.test"], served
    assert "localhost" in served["x.b.test"], "a route without a certificate is served the listener's"
    assert "localhost" in served["unknown.test"], served
    assert daemon.wait_count(" session open ", 4)  # the log is written by a thread
    opened = daemon.log_lines()
    assert any('server_name=a.test ' in l and "route=svc-a" in l for l in opened), opened
    assert any('server_name=unknown.test ' in l and "route=default" in l for l in opened), opened
    # Each backend saw only its own clients.
    assert [p for _, p in a.records] == [b"hello a.test\n"]
    assert sorted(p for _, p in b.records) == [b"hello b.test\n", b"hello x.b.test\n"]
    assert [p for _, p in default.records] == [b"hello unknown.test\n"]


def test_gnutls_sni_is_routed_and_verifies_the_routes_certificate(start_daemon, echo_backend, peer, certs, name_certs):
    a, default = echo_backend(prefix=b"A:"), echo_backend(prefix=b"D:")
    port = free_udp_port()
    start_daemon([_listener(port, certs, backend=f"127.0.0.1:{default.port}", routes=[
        {"server_name": "a.test", "backend": f"127.0.0.1:{a.port}",
         "certificate": str(name_certs["a.test"][0]), "private_key": str(name_certs["a.test"][1])}])])
    # Verified, not --insecure: gnutls-cli checks the chain against a.test's certificate and the name.
    c = peer(["gnutls-cli", "--udp", "-p", str(port), "--x509cafile", str(name_certs["a.test"][0]),
              "--sni-hostname", "a.test", "--verify-hostname", "a.test", "127.0.0.1"])
    c.wait_for(GNUTLS_DONE, timeout=15)
    assert _tagged_reply(c, b"verified a") == b"A"


def test_psk_identities_land_on_their_backends(start_daemon, echo_backend, peer, certs, tmp_path):
    one, two = echo_backend(prefix=b"ONE:"), echo_backend(prefix=b"TWO:")
    psk = write_secret(tmp_path / "psk.txt", "device-1:" + "11" * 16 + "\ndevice-2:" + "22" * 16 + "\ndevice-3:" + "33" * 16 + "\n")
    port = free_udp_port()
    daemon = start_daemon([_listener(port, certs, certificate="", private_key="", psk_file=str(psk), routes=[
        {"psk_identity": "device-1", "backend": f"127.0.0.1:{one.port}"},
        {"psk_identity": ["device-2"], "backend": f"127.0.0.1:{two.port}"}])])
    for identity, key, tag in (("device-1", "11" * 16, b"ONE"), ("device-2", "22" * 16, b"TWO")):
        c = peer(gnutls_argv("127.0.0.1", port, "--pskusername", identity, "--pskkey", key, *GNUTLS_PSK))
        c.wait_for(GNUTLS_DONE, timeout=15)
        assert _tagged_reply(c, identity.encode()) == tag
    assert [p for _, p in one.records] == [b"device-1\n"]
    assert [p for _, p in two.records] == [b"device-2\n"]
    # device-3 has a key but no route, and the listener no default backend: refused.
    c = peer(gnutls_argv("127.0.0.1", port, "--pskusername", "device-3", "--pskkey", "33" * 16, *GNUTLS_PSK))
    c.wait_for(rb"Received alert \[49\]", timeout=15)  # access_denied
    assert not re.search(GNUTLS_DONE, c.output)
    line = daemon.wait_for(rb"session close [^\n]*reason=access_denied[^\n]*", timeout=10).group(0)
    assert b"psk_identity=device-3" in line, line


def test_client_certificates_route_by_identity_and_strangers_are_refused(start_daemon, echo_backend, peer, certs, pki):
    one, sensors = echo_backend(prefix=b"DEV:"), echo_backend(prefix=b"SENSOR:")
    port = free_udp_port()
    daemon = start_daemon([_listener(port, certs, client_ca=str(pki["ca"]), routes=[
        {"client_identity": "dev1", "backend": f"127.0.0.1:{one.port}"},
        {"name": "sensors", "client_identity": "spiffe://example.org/sensor/*", "backend": f"127.0.0.1:{sensors.port}"}])])
    for who, tag in (("dev1", b"DEV"), ("sensor", b"SENSOR")):
        cert, key = pki[who]
        c = peer(gnutls_argv("127.0.0.1", port, "--x509certfile", str(cert), "--x509keyfile", str(key)))
        c.wait_for(GNUTLS_DONE, timeout=15)
        assert _tagged_reply(c, who.encode()) == tag
    # dev2 is verified by the CA but no route takes it, and there is no default: access_denied.
    cert, key = pki["dev2"]
    c = peer(s_client_argv("127.0.0.1", port, "-cert", str(cert), "-key", str(key), "-ign_eof"))
    c.wait_for(rb"alert access denied|access_denied|ssl/tls alert access denied", timeout=15)
    line = daemon.wait_for(rb"session close [^\n]*reason=access_denied[^\n]*", timeout=10).group(0)
    assert b"refused by route: no route matches" in line and b"dev2" in line, line


def _pool_client(peer, port: int, bind_port: int | None = None):
    extra = ["-ign_eof"] + (["-bind", f"127.0.0.1:{bind_port}"] if bind_port else [])
    c = peer(s_client_argv("127.0.0.1", port, *extra))
    c.wait_for(S_CLIENT_DONE, timeout=30)
    return c


def _reply_with_retries(client, line: bytes, tries: int = 5) -> bytes:
    """UDP: a datagram that drew ICMP port unreachable is gone; the client sends again."""
    for attempt in range(tries):
        try:
            return _tagged_reply(client, line + b"-%d" % attempt, timeout=2)
        except AssertionError:
            continue
    raise AssertionError(f"no reply to {line!r} after {tries} tries")


def test_hash_pool_spreads_keeps_affinity_and_survives_a_backend_stopping(start_daemon, echo_backend, peer, certs):
    a, b = echo_backend(prefix=b"A:"), echo_backend(prefix=b"B:")
    port = free_udp_port()
    metrics_port = free_tcp_port()
    daemon = start_daemon([_listener(port, certs, backends=[f"127.0.0.1:{a.port}", f"127.0.0.1:{b.port}"],
                                     balance="hash", backend_backoff="30s")],
                          daemon={"metrics_listen": f"127.0.0.1:{metrics_port}"})
    bind_ports: list[int] = []
    while len(bind_ports) < 40:  # distinct ports, each free when picked
        if (candidate := fixed_client_port()) not in bind_ports:
            bind_ports.append(candidate)
    clients = [_pool_client(peer, port, p) for p in bind_ports]
    placement = [_tagged_reply(c, b"c%d" % i) for i, c in enumerate(clients)]
    on_a, on_b = placement.count(b"A"), placement.count(b"B")
    assert on_a > 0 and on_b > 0, placement
    report(f"pool hash: 40 clients -> A {on_a}, B {on_b}")

    # Reconnecting from the same source port lands on the same backend.
    for i in (0, 1, 2, 3):
        clients[i].kill()
        again = _pool_client(peer, port, bind_ports[i])
        assert _tagged_reply(again, b"again%d" % i) == placement[i], i
        clients[i] = again

    # Quiet for a second, every session's backend socket is parked, so what
    # follows also shows a parked socket woken by its client's datagram drawing
    # ICMP and moving on.
    deadline = time.monotonic() + 10
    parked = 0.0
    while time.monotonic() < deadline:
        parked = metric(scrape(metrics_port)[1], "dtlsproxy_backend_sockets_parked", listener="routed")
        if parked == len(clients):
            break
        time.sleep(0.2)
    assert parked == len(clients)

    # Backend B stops: its clients' next datagram draws ICMP port unreachable, B is
    # marked down, and they move to A; new clients all land on A.
    b.stop()
    moved = [i for i, tag in enumerate(placement) if tag == b"B"]
    for i in moved:
        assert _reply_with_retries(clients[i], b"moved%d" % i) == b"A", i
    daemon.wait_for(rb"backend 127\.0\.0\.1:\d+ refused a datagram \(ICMP port unreachable\)", timeout=5)
    daemon.wait_for(rb"session moved [^\n]*from=127\.0\.0\.1:%d to=127\.0\.0\.1:%d" % (b.port, a.port), timeout=5)
    fresh = [_pool_client(peer, port) for _ in range(10)]
    assert [_tagged_reply(c, b"fresh%d" % i) for i, c in enumerate(fresh)] == [b"A"] * 10
    stats = daemon.stats()["routed"]
    assert stats["backends_marked_down"] >= 1 and stats["sessions_moved"] == len(moved), stats
    _, text = scrape(metrics_port)
    assert metric(text, "dtlsproxy_backend_up", listener="routed", route="default", backend=f"127.0.0.1:{a.port}") == 1
    assert metric(text, "dtlsproxy_backend_up", listener="routed", route="default", backend=f"127.0.0.1:{b.port}") == 0
    assert metric(text, "dtlsproxy_sessions_moved_total", listener="routed") == len(moved)
    report(f"pool failover: {len(moved)} sessions moved to the remaining backend, 10/10 new clients on it")


def test_round_robin_alternates(start_daemon, echo_backend, peer, certs):
    a, b = echo_backend(prefix=b"A:"), echo_backend(prefix=b"B:")
    port = free_udp_port()
    start_daemon([_listener(port, certs, backends=[f"127.0.0.1:{a.port}", f"127.0.0.1:{b.port}"], balance="round_robin")])
    tags = []
    for i in range(4):
        c = _pool_client(peer, port)
        tags.append(_tagged_reply(c, b"rr%d" % i))
    assert tags in ([b"A", b"B", b"A", b"B"], [b"B", b"A", b"B", b"A"]), tags


def test_check_config_loads_route_certificates_and_names_the_route(tmp_path, certs, name_certs):
    from harness import run_daemon_once, write_config
    route = {"server_name": "a.test", "backend": "127.0.0.1:6001",
             "certificate": str(name_certs["a.test"][0]), "private_key": str(name_certs["b.test"][1])}
    cfg = write_config(tmp_path / "dtls-proxy.toml", [_listener(free_udp_port(), certs, backend="127.0.0.1:5683", routes=[route])])
    r = run_daemon_once(cfg, "--check-config")
    assert r.returncode == 78, (r.returncode, r.stdout, r.stderr)
    assert f"{cfg}: listener[0].route[0].private_key:" in r.stderr and "does not match the certificate" in r.stderr, r.stderr
    route["private_key"] = str(name_certs["a.test"][1])
    cfg = write_config(tmp_path / "dtls-proxy.toml", [_listener(free_udp_port(), certs, backend="127.0.0.1:5683", routes=[route])])
    r = run_daemon_once(cfg, "--check-config")
    assert r.returncode == 0, (r.stdout, r.stderr)


def test_reload_changes_routes_for_new_sessions_only(start_daemon, echo_backend, peer, certs):
    import signal
    first, second = echo_backend(prefix=b"FIRST:"), echo_backend(prefix=b"SECOND:")
    port = free_udp_port()
    listener = _listener(port, certs, routes=[{"server_name": "a.test", "backend": f"127.0.0.1:{first.port}"}])
    metrics_port = free_tcp_port()
    daemon = start_daemon([listener], daemon={"metrics_listen": f"127.0.0.1:{metrics_port}"})
    assert metric(scrape(metrics_port)[1], "dtlsproxy_backend_up", listener="routed", route="route0",
                  backend=f"127.0.0.1:{first.port}") == 1
    live = peer(s_client_argv("127.0.0.1", port, "-servername", "a.test", "-ign_eof"))
    live.wait_for(S_CLIENT_DONE, timeout=15)
    assert _tagged_reply(live, b"before") == b"FIRST"
    from harness import write_config
    listener["routes"] = [{"server_name": "a.test", "backend": f"127.0.0.1:{second.port}"}]
    write_config(daemon.config, [listener], {"metrics_listen": f"127.0.0.1:{metrics_port}"})
    mark = daemon.mark()
    daemon.signal(signal.SIGHUP)
    daemon.wait_for(rb"reload complete", timeout=10, start=mark)
    assert _tagged_reply(live, b"live") == b"FIRST", "a live session keeps the route it was given"
    fresh = peer(s_client_argv("127.0.0.1", port, "-servername", "a.test", "-ign_eof"))
    fresh.wait_for(S_CLIENT_DONE, timeout=15)
    assert _tagged_reply(fresh, b"fresh") == b"SECOND"
    text = scrape(metrics_port)[1]
    assert metric(text, "dtlsproxy_backend_up", listener="routed", route="route0", backend=f"127.0.0.1:{second.port}") == 1
    assert f'backend="127.0.0.1:{first.port}"' not in text, "a backend the reload removed has no series left"
