"""`busy_poll`: with the spin on, real DTLS peers (openssl s_client, gnutls-cli)
and a connector tunnel carry their datagrams as without it, and a daemon whose
traffic has stopped stops spinning: the spin is bounded, an idle daemon burns
no core."""

from __future__ import annotations

import signal
import time

from harness import (
    GNUTLS_DONE,
    S_CLIENT_DONE,
    echo_roundtrip,
    endpoint_port,
    gnutls_argv,
    listener_config,
    s_client_argv,
    udp_client,
    udp_roundtrip,
    write_config,
)


def _trickle_cpu(daemon, client, lines: int = 50) -> float:
    """The daemon's CPU over `lines` echoes 20 ms apart: a trickle, where every
    reply is followed by a quiet spell that a spin would fill."""
    before = daemon.cpu_seconds()
    for i in range(lines):
        echo_roundtrip(client, b"trickle %02d\n" % i)
        time.sleep(0.02)
    return daemon.cpu_seconds() - before


def test_openssl_and_gnutls_peers_echo_through_a_spinning_daemon_which_idles_after(proxied, peer):
    px = proxied(daemon={"busy_poll": "1ms"})
    openssl = peer(s_client_argv(px.host, px.port))
    openssl.wait_for(S_CLIENT_DONE, timeout=15)
    gnutls = peer(gnutls_argv(px.host, px.port))
    gnutls.wait_for(GNUTLS_DONE, timeout=15)
    for i in range(20):
        echo_roundtrip(openssl, b"s_client line %02d\n" % i)
        echo_roundtrip(gnutls, b"gnutls line %02d\n" % i)
    payloads = [p for _, p in px.backend.records]
    assert [p for p in payloads if p.startswith(b"s_client")] == [b"s_client line %02d\n" % i for i in range(20)]
    assert [p for p in payloads if p.startswith(b"gnutls")] == [b"gnutls line %02d\n" % i for i in range(20)]

    # Both sessions stay open but quiet: a spin lasts at most 1 ms after the
    # last datagram, so the daemon's CPU over the next 2 s is what an idle
    # daemon uses (its 1 s timers), far below a spinning core's 2 s.
    time.sleep(0.5)
    before = px.daemon.cpu_seconds()
    time.sleep(2.0)
    used = px.daemon.cpu_seconds() - before
    assert used < 0.2, f"an idle daemon with busy_poll used {used:.2f} s of CPU in 2 s"
    echo_roundtrip(openssl, b"after the quiet spell\n")


def test_a_tunnel_whose_connector_spins_carries_every_datagram(tunnel):
    tun = tunnel(prefix=b"echo:", near_daemon={"busy_poll": "200us"})
    client = udp_client()
    payloads = [b"datagram %03d " % i + bytes([i % 256]) * (i % 900) for i in range(300)]
    replies = udp_roundtrip(client, tun.port, payloads)
    client.close()
    assert sorted(replies) == sorted(b"echo:" + p for p in payloads)


def test_a_reload_turns_busy_poll_on_for_the_running_loops(start_daemon, echo_backend, certs, peer):
    backend = echo_backend()
    listener = listener_config(backend, certs)
    daemon = start_daemon([listener])
    client = peer(s_client_argv("127.0.0.1", endpoint_port(listener["listen"])))
    client.wait_for(S_CLIENT_DONE, timeout=15)
    off = _trickle_cpu(daemon, client)

    write_config(daemon.config, [listener], daemon={"busy_poll": "10ms"})
    mark = daemon.mark()
    daemon.signal(signal.SIGHUP)
    daemon.wait_for(rb"reload: busy_poll is now 10ms", timeout=10, start=mark)
    daemon.wait_for(rb"reload complete", timeout=10, start=mark)
    # Each reply is now followed by a spin of up to 10 ms: 50 of them are
    # about 0.5 s of CPU, where the same trickle before cost a few ms.
    on = _trickle_cpu(daemon, client)
    assert off < 0.15, f"without busy_poll the trickle cost {off:.3f} s of CPU"
    assert on > 0.25 and on > 3 * off, f"after the reload the trickle cost {on:.3f} s of CPU, before {off:.3f} s"
