"""Client mode: [[connector]] blocks, and two daemons forming a DTLS tunnel.

A plain UDP client talks to a connector instance, which opens one DTLS client
session per local peer to a listener instance (or to an independent DTLS
server: openssl s_server), which hands the plaintext to a UDP backend.
"""

from __future__ import annotations

import signal
import socket
import time

from harness import (
    connector_config,
    endpoint_port,
    free_tcp_port,
    free_udp_port,
    listener_config,
    metric,
    parse_kv,
    report,
    scrape,
    udp_client,
    udp_roundtrip,
    write_config,
    write_secret,
)

PSK_IDENTITY = "tunnel-1"
PSK_HEX = "000102030405060708090a0b0c0d0e0f"


def _connector_stats(daemon) -> dict[str, int]:
    return daemon.stats(kind="connector")["tun"]


# --------------------------------------------------------------------------- tunnel

def test_tunnel_carries_1000_datagrams_and_verifies_the_server(tunnel):
    tun = tunnel(prefix=b"echo:")
    backend, listener, far, near = tun.backend, tun.listener, tun.far, tun.near

    client = udp_client()
    payloads = [f"datagram {i:04d} ".encode() + bytes([i % 256]) * (i % 700) for i in range(1000)]
    started = time.monotonic()
    replies = udp_roundtrip(client, tun.port, payloads)
    elapsed = time.monotonic() - started
    client.close()
    assert sorted(replies) == sorted(b"echo:" + p for p in payloads)
    report(f"tunnel (connector -> DTLS -> listener -> echo, debug build): 1000 datagrams round trip "
           f"in {elapsed:.2f}s ({1000 / elapsed:.0f}/s), first includes the handshake")

    records = backend.wait_for_count(1000)
    assert len(records) == 1000
    assert len({addr for addr, _ in records}) == 1, "one local peer is one session, one backend source port"
    opened = parse_kv(near.wait_for(rb"session open [^\n]*connector=tun[^\n]*", timeout=5).group(0))
    assert opened["server_identity"] == "localhost" and opened["version"] == "DTLSv1.2"
    assert opened["server"] == listener["listen"]
    far.wait_for(rb"session open [^\n]*listener=far", timeout=5)


def test_wrong_server_name_fails_the_handshake_and_nothing_reaches_the_backend(tunnel):
    tun = tunnel(server_name="wrong.test")
    backend, far, near = tun.backend, tun.far, tun.near

    client = udp_client()
    client.sendto(b"must not arrive", ("127.0.0.1", tun.port))
    near.wait_for(rb"connector tun: server \S+ failed verification \(server_name wrong\.test\): "
                  rb"certificate verify failed: hostname mismatch", timeout=10)
    near.wait_for(rb"session close [^\n]*connector=tun[^\n]*reason=handshake_failed "
                  rb"detail=\"certificate verify failed: hostname mismatch\"", timeout=5)
    # The failure pauses new handshakes (0.5 s, doubling): other local peers
    # right after it are dropped and counted, not sent to the server.
    near.wait_for(rb"connector tun: handshake with \S+ failed; no new session for 500 ms", timeout=5)
    burst = [udp_client() for _ in range(5)]
    for sock in burst:
        sock.sendto(b"during the pause", ("127.0.0.1", tun.port))
    time.sleep(0.1)
    stats = _connector_stats(near)
    for sock in burst:
        sock.close()
    assert stats["dropped_backoff"] == 5 and stats["sessions_created"] == 1, stats
    # The connector's fatal alert ends the listener's half of the handshake.
    far.wait_for(rb"session close [^\n]*reason=alert detail=\"peer sent fatal alert: bad certificate\"", timeout=5)
    client.settimeout(0.5)
    try:
        reply = client.recv(100)
    except socket.timeout:
        reply = None
    client.close()
    assert reply is None
    assert backend.records == []
    assert near.alive() and far.alive()


def test_an_ip_server_is_checked_against_the_certificate_ip(tunnel):
    """No server_name and an IP `server`: the certificate's iPAddress SAN is checked (the test one has 127.0.0.1)."""
    tun = tunnel(server_name=None)
    client = udp_client()
    assert udp_roundtrip(client, tun.port, [b"by address"]) == [b"by address"]
    client.close()


def test_psk_connector_to_psk_listener(start_daemon, tmp_path, echo_backend):
    backend = echo_backend()
    psk = write_secret(tmp_path / "psk.txt", f"other:ffff\n{PSK_IDENTITY}:{PSK_HEX}\n")
    listener = listener_config(backend, name="far", psk_file=str(psk))
    far = start_daemon([listener])
    connector = connector_config(listener["listen"], psk_identity=PSK_IDENTITY, psk_file=str(psk))
    near = start_daemon(connectors=[connector])
    port = endpoint_port(connector["listen"])
    client = udp_client()
    assert udp_roundtrip(client, port, [b"psk one", b"psk two"]) == [b"psk one", b"psk two"]
    # An empty datagram cannot be a record of its own: dropped and counted, the session goes on.
    client.sendto(b"", ("127.0.0.1", port))
    assert udp_roundtrip(client, port, [b"psk three"]) == [b"psk three"]
    client.close()
    assert _connector_stats(near)["dropped_empty"] == 1
    opened = parse_kv(near.wait_for(rb"session open [^\n]*connector=tun[^\n]*", timeout=5).group(0))
    assert opened["psk_identity"] == PSK_IDENTITY and "PSK" in opened["cipher"]
    far.wait_for(rb"session open [^\n]*psk_identity=" + PSK_IDENTITY.encode(), timeout=5)


def test_client_certificate_presented_to_a_listener_that_requires_one(start_daemon, certs, pki, echo_backend):
    backend = echo_backend()
    listener = listener_config(backend, certs, name="far", client_ca=str(pki["ca"]), client_auth="require")
    far = start_daemon([listener])
    with_cert = connector_config(listener["listen"], name="with-cert", server_ca=str(certs["cert"]),
                                 server_name="localhost", certificate=str(pki["dev1"][0]),
                                 private_key=str(pki["dev1"][1]))
    without = connector_config(listener["listen"], name="without-cert", server_ca=str(certs["cert"]),
                               server_name="localhost")
    near = start_daemon(connectors=[with_cert, without])

    client = udp_client()
    assert udp_roundtrip(client, endpoint_port(with_cert["listen"]), [b"from dev1"]) == [b"from dev1"]
    far.wait_for(rb"session open [^\n]*listener=far[^\n]* identity=dev1", timeout=5)
    client.sendto(b"refused", ("127.0.0.1", endpoint_port(without["listen"])))
    far.wait_for(rb"session close [^\n]*reason=handshake_failed detail=\"peer did not return a certificate\"", timeout=10)
    near.wait_for(rb"session close [^\n]*connector=without-cert[^\n]*reason=alert", timeout=10)
    client.close()
    assert [data for _, data in backend.records] == [b"from dev1"]


# --------------------------------------------------------------------------- other peers

def test_libcoap_through_the_tunnel(start_daemon, peer, certs):
    coap_port = free_udp_port()
    peer(["coap-server-notls", "-A", "127.0.0.1", "-p", str(coap_port)])
    time.sleep(0.3)
    listener = listener_config(coap_port, certs, name="coaps")
    far = start_daemon([listener])
    connector = connector_config(listener["listen"], name="coap", server_ca=str(certs["cert"]), server_name="localhost")
    near = start_daemon(connectors=[connector])
    client = peer(["coap-client-notls", "-B", "5",
                   f"coap://127.0.0.1:{endpoint_port(connector['listen'])}/.well-known/core"])
    assert client.wait(timeout=10) == 0, client.text
    client.wait_for(rb'</time>;if="clock"', timeout=2)
    near.wait_for(rb"session open [^\n]*connector=coap", timeout=5)
    far.wait_for(rb"session open [^\n]*listener=coaps", timeout=5)


def _s_server_and_connector(start_daemon, peer, certs):
    """``openssl s_server -dtls1_2`` on a free port, and a connector instance verifying it:
    (the server's process, the connector's local port, the connector instance)."""
    port = free_udp_port()
    server = peer(["openssl", "s_server", "-dtls1_2", "-accept", f"127.0.0.1:{port}", "-cert", str(certs["cert"]),
                   "-key", str(certs["key"]), "-quiet"])
    time.sleep(0.5)
    connector = connector_config(f"127.0.0.1:{port}", server_ca=str(certs["cert"]), server_name="localhost")
    near = start_daemon(connectors=[connector])
    return server, endpoint_port(connector["listen"]), near


def test_openssl_s_server_as_the_far_end(start_daemon, peer, certs):
    """An independent DTLS server: what the local peer sends reaches it, what it sends comes back."""
    server, local_port, near = _s_server_and_connector(start_daemon, peer, certs)
    client = udp_client()
    client.sendto(b"hello s_server\n", ("127.0.0.1", local_port))
    server.wait_for(rb"hello s_server", timeout=10)
    near.wait_for(rb"session open [^\n]*connector=tun[^\n]*server_identity=localhost", timeout=5)
    server.send(b"hello local peer\n")
    assert client.recv(100) == b"hello local peer\n"
    client.close()


def test_an_idle_session_parks_its_server_socket_and_still_hears_the_server(start_daemon, peer, certs):
    """After a second of quiet the session's socket to the server is parked; the
    server (openssl s_server) speaking first still reaches the local peer, and
    the local peer's next datagram still reaches the server, from the same port."""
    server, local_port, near = _s_server_and_connector(start_daemon, peer, certs)
    client = udp_client()
    client.sendto(b"first from the local peer\n", ("127.0.0.1", local_port))
    server.wait_for(rb"first from the local peer", timeout=10)
    sockets_open = near.socket_count()

    def wait_parked(n: int) -> None:
        deadline = time.monotonic() + 10
        while _connector_stats(near)["parked_server_sockets"] != n and time.monotonic() < deadline:
            time.sleep(0.3)
        assert _connector_stats(near)["parked_server_sockets"] == n

    wait_parked(1)
    assert near.socket_count() == sockets_open, "a parked socket is still open"
    server.send(b"the server speaks first\n")
    assert client.recv(100) == b"the server speaks first\n"
    wait_parked(1)
    start = server.mark()
    client.sendto(b"second from the local peer\n", ("127.0.0.1", local_port))
    server.wait_for(rb"second from the local peer", timeout=10, start=start)
    client.close()
    stats = _connector_stats(near)
    assert stats["sessions_created"] == 1 and stats["server_errors"] == 0, stats


def test_gnutls_serv_echo_with_psk_as_the_far_end(start_daemon, peer, tmp_path):
    port = free_udp_port()
    psk = write_secret(tmp_path / "psk.txt", f"{PSK_IDENTITY}:{PSK_HEX}\n")
    server = peer(["gnutls-serv", "--udp", "--echo", "-p", str(port), "--pskpasswd", str(psk),
                   "--priority", "NORMAL:-KX-ALL:+PSK"])
    server.wait_for(rb"listening on", timeout=10)
    connector = connector_config(f"127.0.0.1:{port}", psk_identity=PSK_IDENTITY, psk_file=str(psk))
    start_daemon(connectors=[connector])
    client = udp_client()
    assert udp_roundtrip(client, endpoint_port(connector["listen"]), [b"via gnutls"]) == [b"via gnutls"]
    client.close()


# --------------------------------------------------------------------------- life

def test_idle_close_and_shutdown_release_everything(tunnel):
    metrics_port = free_tcp_port()
    tun = tunnel(idle_timeout="1s", near_daemon={"metrics_listen": f"127.0.0.1:{metrics_port}"})
    far, near = tun.far, tun.near
    baseline_sockets = near.socket_count()

    clients = [udp_client() for _ in range(3)]
    for i, c in enumerate(clients):
        assert udp_roundtrip(c, tun.port, [b"peer %d" % i]) == [b"peer %d" % i]
    assert _connector_stats(near)["active_sessions"] == 3
    assert near.socket_count() == baseline_sockets + 3, "one server socket per local peer"
    _, text = scrape(metrics_port)
    assert metric(text, "dtlsproxy_connector_sessions_active", connector="tun") == 3

    assert near.wait_count("reason=idle", 3)
    assert far.wait_count("reason=close_notify", 3), "the listener got each close_notify"
    stats = _connector_stats(near)
    assert stats["active_sessions"] == 0 and stats["sessions_created"] == 3 and stats["handshakes_completed"] == 3
    # The scrape's connection closes asynchronously too; wait (bounded) for the count to settle.
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and near.socket_count() != baseline_sockets:
        time.sleep(0.1)
    assert near.socket_count() == baseline_sockets
    _, text = scrape(metrics_port)
    assert metric(text, "dtlsproxy_connector_sessions_active", connector="tun") == 0
    assert metric(text, "dtlsproxy_connector_sessions_closed_total", connector="tun", reason="idle") == 3
    assert metric(text, "dtlsproxy_connector_datagrams_total", connector="tun", direction="in") == 3

    # A peer that speaks again gets a new session; a stop closes it with close_notify.
    assert udp_roundtrip(clients[0], tun.port, [b"again"]) == [b"again"]
    for c in clients:
        c.close()
    assert near.stop(timeout=10) == 0
    assert "reason=shutdown" in near.text
    assert "stats connector=tun active_sessions=0" in near.text
    assert far.wait_count("reason=close_notify", 4)


def test_reload_adds_removes_and_refuses_bad_connectors(tunnel, certs, tmp_path):
    tun = tunnel()
    connector, near = tun.connector, tun.near
    client = udp_client()
    assert udp_roundtrip(client, tun.port, [b"before"]) == [b"before"]

    # A bad connector: the reload fails and the running one keeps serving its live session.
    bad = dict(connector, name="bad", listen=f"127.0.0.1:{free_udp_port()}", server_ca=str(tmp_path / "missing.pem"))
    write_config(near.config, connectors=[connector, bad])
    mark = near.mark()
    near.signal(signal.SIGHUP)
    near.wait_for(rb"reload failed; the running configuration stays: \S+: connector\[1\]\.server_ca: file not found",
                  timeout=10, start=mark)
    assert udp_roundtrip(client, tun.port, [b"still"]) == [b"still"]

    # Replace it by another connector: the old one's session closes (reason reload) and its port is free.
    other = connector_config(tun.listener["listen"], name="other", server_ca=str(certs["cert"]), server_name="localhost")
    write_config(near.config, connectors=[other])
    mark = near.mark()
    near.signal(signal.SIGHUP)
    near.wait_for(rb"reload complete: 0 listener\(s\)[^\n]*1 connector\(s\): 0 kept, 1 added, 1 removed",
                  timeout=10, start=mark)
    near.wait_for(rb"session close [^\n]*connector=tun[^\n]*reason=reload", timeout=5, start=mark)
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.0.0.1", tun.port))
    probe.close()
    assert udp_roundtrip(client, endpoint_port(other["listen"]), [b"after"]) == [b"after"]
    client.close()


def test_unreachable_server_is_counted_and_the_handshake_times_out(start_daemon, certs):
    """Nothing listens on the server port: ICMP port unreachable is counted, the daemon goes on."""
    connector = connector_config(f"127.0.0.1:{free_udp_port()}", server_ca=str(certs["cert"]),
                                 handshake_timeout="1500ms")
    near = start_daemon(connectors=[connector])
    client = udp_client()
    client.sendto(b"into the void", ("127.0.0.1", endpoint_port(connector["listen"])))
    near.wait_for(rb"connector tun: server \S+ error for peer \S+: [^\n]*(refused|Connection)", timeout=5)
    near.wait_for(rb"session close [^\n]*connector=tun[^\n]*reason=handshake_timeout", timeout=5)
    stats = _connector_stats(near)
    assert stats["server_errors"] >= 1 and stats["handshakes_failed"] == 1 and stats["active_sessions"] == 0
    assert near.alive()
    client.close()


def test_systemd_status_counts_connector_sessions(start_daemon, certs, echo_backend, notify):
    """One daemon holding both ends of a tunnel: STATUS= counts the listener's
    session and the connector's, and both handshakes."""
    backend = echo_backend()
    listener = listener_config(backend, certs, name="far")
    connector = connector_config(listener["listen"], server_ca=str(certs["cert"]), server_name="localhost")
    start_daemon([listener], connectors=[connector], env={"NOTIFY_SOCKET": notify.path}, name="both.toml")
    client = udp_client()
    assert udp_roundtrip(client, endpoint_port(connector["listen"]), [b"status"]) == [b"status"]
    client.close()
    # STATUS= is refreshed every 2 s; the next one after the echo must count both sessions.
    index = notify.wait_for("STATUS=", start=len(notify.messages), timeout=10)
    status = [l for l in notify.messages[index][1].split("\n") if l.startswith("STATUS=")][0]
    assert status.startswith("STATUS=2 sessions, "), status


def test_new_local_peers_resume_the_servers_session(tunnel):
    """The second local peer's session resumes the first one's ticket: both
    the connector and the listener log resumed=yes, and the echo still works."""
    tun = tunnel()
    far, near = tun.far, tun.near
    for i in range(3):
        client = udp_client()
        assert udp_roundtrip(client, tun.port, [b"peer %d" % i]) == [b"peer %d" % i]
        client.close()
    # Each end logs its session open when its handshake completes; the line can
    # reach the test's reader of the log after the echo has come back.
    assert near.wait_count("session open", 3) and far.wait_count("session open", 3)
    opens = [l for l in near.log_lines() if "session open" in l]
    assert "resumed=yes" not in opens[0], opens
    assert all("resumed=yes" in l and "server_identity=localhost" in l for l in opens[1:]), opens
    far_opens = [l for l in far.log_lines() if "session open" in l]
    assert sum("resumed=yes" in l for l in far_opens) == 2, far_opens


def test_session_tickets_off_means_full_handshakes(tunnel):
    tun = tunnel(session_tickets=False)
    far, near = tun.far, tun.near
    for i in range(2):
        client = udp_client()
        assert udp_roundtrip(client, tun.port, [b"full %d" % i]) == [b"full %d" % i]
        client.close()
    assert not any("resumed=yes" in l for l in near.log_lines() + far.log_lines())
