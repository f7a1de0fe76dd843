"""`busy_poll`: with the spin on, real DTLS peers (openssl s_client, gnutls-cli)
and a connector tunnel carry their datagrams as without it, and a daemon whose
traffic has stopped stops spinning: the spin is bounded, an idle daemon burns
no core."""

from __future__ import annotations

import time

from harness import (
    GNUTLS_DONE,
    S_CLIENT_DONE,
    echo_roundtrip,
    gnutls_argv,
    s_client_argv,
    udp_client,
    udp_roundtrip,
)


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
