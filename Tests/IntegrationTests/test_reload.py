"""Live reload (SIGHUP): live sessions untouched, new handshakes on the new
configuration, listeners added and removed, a broken file changes nothing;
and the graceful stop within shutdown_timeout."""

from __future__ import annotations

import signal
import time

from harness import (
    report,
    S_CLIENT_DONE,
    SERVER_CLOSE_NOTIFY,
    echo_roundtrip,
    fingerprint,
    free_udp_port,
    make_certificate,
    s_client_argv,
    write_config,
)


def _listener(name, port, backend, cert, key, **extra):
    return {"name": name, "listen": f"127.0.0.1:{port}", "backend": f"127.0.0.1:{backend.port}",
            "certificate": str(cert), "private_key": str(key), **extra}


def _reload(daemon, expect: str = r"reload complete", timeout: float = 10.0):
    mark = daemon.mark()
    daemon.signal(signal.SIGHUP)
    return daemon.wait_for(expect, timeout=timeout, start=mark)


def test_reload_keeps_live_sessions_and_new_clients_get_the_new_certificate_and_backend(
        start_daemon, echo_backend, peer, certs, tmp_path):
    old_backend, new_backend = echo_backend(), echo_backend(prefix=b"new:")
    new_cert, new_key = make_certificate(tmp_path, "renewed")
    port = free_udp_port()
    daemon = start_daemon([_listener("coaps", port, old_backend, certs["cert"], certs["key"])])

    before = peer(s_client_argv("127.0.0.1", port))
    before.wait_for(S_CLIENT_DONE, timeout=15)
    echo_roundtrip(before, b"before reload\n")
    assert fingerprint(before.output) == fingerprint(certs["cert"].read_bytes())

    write_config(daemon.config, [_listener("coaps", port, new_backend, new_cert, new_key,
                                           idle_timeout="60s")])
    started = time.monotonic()
    _reload(daemon, r"reload complete: 1 listener\(s\): 1 kept, 0 added, 0 removed")
    report(f"SIGHUP to 'reload complete' (new certificate, key and backend, 1 live session): "
           f"{(time.monotonic() - started) * 1000:.1f} ms")

    # The live session still works, on its old backend.
    echo_roundtrip(before, b"after reload, old session\n")
    assert any(d == b"after reload, old session\n" for _, d in old_backend.records)
    assert not new_backend.records

    after = peer(s_client_argv("127.0.0.1", port))
    after.wait_for(S_CLIENT_DONE, timeout=15)
    assert fingerprint(after.output) == fingerprint(new_cert.read_bytes()), "new handshakes use the new certificate"
    start = after.mark()
    after.send(b"after reload, new session\n")
    after.wait_for(rb"new:after reload, new session", timeout=10, start=start)
    assert "session close" not in daemon.text, "no session was closed by the reload"


def test_a_broken_file_on_reload_changes_nothing(start_daemon, echo_backend, peer, certs, tmp_path):
    backend = echo_backend()
    port = free_udp_port()
    daemon = start_daemon([_listener("coaps", port, backend, certs["cert"], certs["key"])])
    live = peer(s_client_argv("127.0.0.1", port))
    live.wait_for(S_CLIENT_DONE, timeout=15)
    echo_roundtrip(live, b"before\n")
    good = daemon.config.read_text()

    other_cert, _ = make_certificate(tmp_path, "other")
    broken = [
        # a key that does not match its certificate: found only when the DTLS context is built
        (_listener("coaps", port, backend, other_cert, certs["key"]), r"listener\[0\]\.private_key: .*does not match"),
        # a new listener whose port is taken: found only when binding
        None,
        # not TOML at all
        ("[[listener]\nname=", r"TOML syntax error"),
    ]
    import socket
    squatter = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    squatter.bind(("127.0.0.1", 0))
    taken = squatter.getsockname()[1]
    broken[1] = ([_listener("coaps", port, backend, certs["cert"], certs["key"]),
                  _listener("extra", taken, backend, certs["cert"], certs["key"])],
                 rf'listener "extra": cannot bind 127\.0\.0\.1:{taken}: Address already in use')
    try:
        for content, error in broken:
            if isinstance(content, str):
                daemon.config.write_text(content)
            else:
                write_config(daemon.config, content if isinstance(content, list) else [content])
            _reload(daemon, r"reload failed; the running configuration stays: .*" + error)
            echo_roundtrip(live, b"still here\n")
            fresh = peer(s_client_argv("127.0.0.1", port))
            fresh.wait_for(S_CLIENT_DONE, timeout=15)
            assert fingerprint(fresh.output) == fingerprint(certs["cert"].read_bytes())
            echo_roundtrip(fresh, b"new client, old config\n")
            fresh.kill()
    finally:
        squatter.close()
    assert daemon.alive()
    assert "session close" not in daemon.text, "a failed reload closes no session"
    daemon.config.write_text(good)
    _reload(daemon, r"reload complete")


def test_reload_adds_and_removes_listeners(start_daemon, echo_backend, peer, certs):
    backend = echo_backend()
    pa, pb, pc = free_udp_port(), free_udp_port(), free_udp_port()
    a = _listener("a", pa, backend, certs["cert"], certs["key"])
    b = _listener("b", pb, backend, certs["cert"], certs["key"])
    c = _listener("c", pc, backend, certs["cert"], certs["key"])
    daemon = start_daemon([a, b])
    on_a = peer(s_client_argv("127.0.0.1", pa))
    on_b = peer(s_client_argv("127.0.0.1", pb, "-msg"))
    for client in (on_a, on_b):
        client.wait_for(S_CLIENT_DONE, timeout=15)
        echo_roundtrip(client, b"hello\n")
    fds_before = daemon.fd_count()

    mark = on_b.mark()
    write_config(daemon.config, [a, c])
    _reload(daemon, r"reload complete: 2 listener\(s\): 1 kept, 1 added, 1 removed")
    on_b.wait_for(SERVER_CLOSE_NOTIFY, timeout=10, start=mark)
    daemon.wait_for(r"session close peer=127\.0\.0\.1:\d+ listener=b .*reason=reload", timeout=5)
    echo_roundtrip(on_a, b"a is untouched\n")
    on_c = peer(s_client_argv("127.0.0.1", pc))
    on_c.wait_for(S_CLIENT_DONE, timeout=15)
    echo_roundtrip(on_c, b"c is new\n")

    # b's sockets and its session's backend socket are gone: the port is free again.
    import socket
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", pb))
    # c holds what b held (same number of event loops, one session each).
    assert daemon.fd_count() == fds_before, (fds_before, daemon.fd_count())
    stats = daemon.stats()
    assert set(stats) == {"a", "c"}, stats


def test_sigterm_sends_close_notify_and_exits_0_within_shutdown_timeout(proxied, peer):
    px = proxied(daemon={"shutdown_timeout": "2s"})
    clients = [peer(s_client_argv(px.host, px.port, "-msg")) for _ in range(3)]
    for client in clients:
        client.wait_for(S_CLIENT_DONE, timeout=15)
        echo_roundtrip(client, b"before stop\n")
    marks = [c.mark() for c in clients]
    started = time.monotonic()
    px.daemon.signal(signal.SIGTERM)
    rc = px.daemon.wait(timeout=10)
    elapsed = time.monotonic() - started
    report(f"SIGTERM to exit with 3 sessions: {elapsed:.3f}s (shutdown_timeout 2s)")
    assert rc == 0, px.daemon.text[-2000:]
    assert elapsed < 2.0, elapsed
    for client, mark in zip(clients, marks):
        client.wait_for(SERVER_CLOSE_NOTIFY, timeout=5, start=mark)
    closes = [l for l in px.daemon.log_lines() if " session close " in l]
    assert len(closes) == 3 and all("reason=shutdown" in l for l in closes), closes
