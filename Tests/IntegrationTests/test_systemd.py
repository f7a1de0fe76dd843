"""systemd integration: sd_notify (READY, STATUS, WATCHDOG, RELOADING, STOPPING),
socket activation, the journal log format, the units and `make install`."""

from __future__ import annotations

import os
import re
import shutil
import signal
import statistics
import subprocess
import time
from pathlib import Path

import pytest

from harness import (
    report,
    DAEMON_BIN,
    REPO,
    S_CLIENT_DONE,
    Proc,
    echo_roundtrip,
    free_udp_port,
    s_client_argv,
    write_config,
)


def _activate(*args: str) -> list[str]:
    """systemd-socket-activate --datagram ARGS; it passes the daemon only the variables named
    with --setenv, so sanitizer settings of the run (make sanitize) are handed on explicitly."""
    import os
    passed = [f"--setenv={name}" for name in ("ASAN_OPTIONS", "LSAN_OPTIONS", "SWIFT_BACKTRACE")
              if name in os.environ]
    return ["systemd-socket-activate", "--datagram", *passed, *args]


def _monotonic_usec() -> int:
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


def test_notify_ready_status_watchdog_reload_stopping_in_order(proxied, notify):
    watchdog_usec = 1_000_000  # a heartbeat is due every 0.5 s
    px = proxied(env={"NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": str(watchdog_usec)})
    ready = notify.wait_for("READY=1", timeout=10)
    assert ready == 0, f"READY=1 is the first message: {notify.messages}"
    assert re.search(r"^STATUS=\d+ sessions?, [\d.]+ handshakes/s, \d+ drops?$",
                     notify.messages[ready][1], re.M), notify.messages[ready]
    time.sleep(4.5)

    msgs = notify.messages
    statuses = [m for _, m in msgs[ready + 1:] if m.startswith("STATUS=")]
    assert len(statuses) >= 2, f"STATUS= refreshed every 2 s: {msgs}"
    beats = [t for t, m in msgs if m == "WATCHDOG=1"]
    assert len(beats) >= 7, f"WATCHDOG=1 every 0.5 s for 4.5 s: {len(beats)} beats"
    gaps = [b - a for a, b in zip(beats, beats[1:])]
    median = statistics.median(gaps)
    report(f"WATCHDOG_USEC={watchdog_usec}: {len(beats)} heartbeats, median gap {median:.3f}s, "
          f"max {max(gaps):.3f}s")
    assert 0.4 <= median <= 0.6, gaps
    assert max(gaps) < 1.0, f"a gap reached WATCHDOG_USEC: {gaps}"

    before = len(notify.messages)
    sent = _monotonic_usec()
    px.daemon.signal(signal.SIGHUP)
    reloading = notify.wait_for("RELOADING=1", start=before, timeout=10)
    fields = dict(l.split("=", 1) for l in notify.messages[reloading][1].split("\n") if "=" in l)
    assert "MONOTONIC_USEC" in fields, notify.messages[reloading]
    stamp = int(fields["MONOTONIC_USEC"])
    assert sent <= stamp <= _monotonic_usec(), (sent, stamp)
    notify.wait_for("READY=1", start=reloading + 1, timeout=10)
    px.daemon.wait_for(r"reload complete", timeout=5)

    before = len(notify.messages)
    px.daemon.signal(signal.SIGTERM)
    notify.wait_for("STOPPING=1", start=before, timeout=10)
    assert px.daemon.wait(10) == 0, px.daemon.text[-2000:]


def test_failed_reload_is_shown_in_status(proxied, notify, certs):
    px = proxied(env={"NOTIFY_SOCKET": notify.path})
    notify.wait_for("READY=1", timeout=10)
    text = px.daemon.config.read_text()
    px.daemon.config.write_text(text.replace(str(certs["key"]), str(certs["other_key"])))
    before = len(notify.messages)
    px.daemon.signal(signal.SIGHUP)
    done = notify.wait_for("READY=1", start=notify.wait_for("RELOADING=1", start=before), timeout=10)
    status = notify.messages[done][1]
    assert "last reload failed" in status and "private_key" in status, status
    # The next refresh still says so, until a reload succeeds.
    later = notify.wait_for("STATUS=", start=done + 1, timeout=5)
    assert "last reload failed" in notify.messages[later][1]
    px.daemon.config.write_text(text)
    before = len(notify.messages)
    px.daemon.signal(signal.SIGHUP)
    done = notify.wait_for("READY=1", start=notify.wait_for("RELOADING=1", start=before), timeout=10)
    assert "failed" not in notify.messages[done][1], notify.messages[done]


def test_socket_activation_serves_a_dtls_client(tmp_path, certs, echo_backend, procs, peer):
    backend = echo_backend()
    port = free_udp_port()
    unused = free_udp_port()
    config = write_config(tmp_path / "dtls-proxy.toml", [{
        "name": "coaps", "listen": f"127.0.0.1:{unused}",  # the passed socket wins
        "backend": f"127.0.0.1:{backend.port}",
        "certificate": str(certs["cert"]), "private_key": str(certs["key"]),
    }])
    activator = Proc(_activate("-l", f"127.0.0.1:{port}", "--fdname=coaps", str(DAEMON_BIN), "--config", str(config)))
    procs.append(activator)
    activator.wait_for(rf"Listening on 127\.0\.0\.1:{port}", timeout=10)
    # systemd-socket-activate execs the daemon on the first datagram; the
    # ClientHello that triggers it waits in the socket and is answered.
    client = peer(s_client_argv("127.0.0.1", port))
    client.wait_for(S_CLIENT_DONE, timeout=20)
    echo_roundtrip(client, b"through a socket systemd bound\n")
    activator.wait_for(rf"listener coaps serving the socket systemd passed, 127\.0\.0\.1:{port}", timeout=5)
    with pytest.raises(OSError):  # the daemon did not bind the configured address
        import socket
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", unused))
            raise OSError("configured address was free, as expected")
    activator.signal(signal.SIGTERM)
    assert activator.wait(10) == 0, activator.text[-2000:]
    assert "reason=shutdown" in activator.text


def test_socket_activation_with_an_unknown_name_exits_78(tmp_path, certs, procs):
    port = free_udp_port()
    config = write_config(tmp_path / "dtls-proxy.toml", [{
        "name": "coaps", "listen": f"127.0.0.1:{free_udp_port()}", "backend": "127.0.0.1:9",
        "certificate": str(certs["cert"]), "private_key": str(certs["key"]),
    }])
    activator = Proc(_activate("-l", f"127.0.0.1:{port}", "--fdname=stray", str(DAEMON_BIN), "--config", str(config)))
    procs.append(activator)
    activator.wait_for(rf"Listening on 127\.0\.0\.1:{port}", timeout=10)
    import socket
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(b"wake up", ("127.0.0.1", port))
    assert activator.wait(15) == 78, activator.text
    assert re.search(r'socket "stray".*matches no \[\[listener\]\] name \(listeners: "coaps"\)',
                     activator.text), activator.text


def test_journal_lines_have_priority_and_log_level_changes_on_reload(proxied, peer):
    px = proxied(env={"JOURNAL_STREAM": "8:12345"})
    lines = px.daemon.log_lines()
    assert lines and all(re.match(r"^<[0-7]>", l) for l in lines), lines
    assert not any(re.search(r"\d{4}-\d\d-\d\dT", l) for l in lines), "no timestamp under the journal"
    assert any(l.startswith("<6>ready:") for l in lines), lines

    client = peer(s_client_argv(px.host, px.port))
    client.wait_for(S_CLIENT_DONE, timeout=15)
    assert "handshake start" not in px.daemon.text, "debug lines are off at info"

    mark = px.daemon.mark()
    px.daemon.config.write_text(px.daemon.config.read_text().replace('log_level = "info"', 'log_level = "debug"'))
    px.daemon.signal(signal.SIGHUP)
    px.daemon.wait_for(r"^<6>reload complete", timeout=10, start=mark)
    second = peer(s_client_argv(px.host, px.port))
    second.wait_for(S_CLIENT_DONE, timeout=15)
    px.daemon.wait_for(r"^<7>handshake start peer=127\.0\.0\.1:\d+ listener=test", timeout=5, start=mark)


def _install(tmp_path: Path, **variables: str) -> subprocess.CompletedProcess:
    args = [f"{k}={v}" for k, v in variables.items()]
    return subprocess.run(["make", "-s", "-C", str(REPO), "install-files",
                           f"INSTALL_BIN={DAEMON_BIN}", *args],
                          capture_output=True, text=True, timeout=60)


def test_units_verify_clean_and_rate_at_most_1_5(tmp_path):
    # Installed with PREFIX pointing here, so that ExecStart= names an existing binary.
    prefix = tmp_path / "prefix"
    r = _install(tmp_path, PREFIX=str(prefix), SYSCONFDIR=str(tmp_path / "etc"))
    assert r.returncode == 0, r.stderr
    units = prefix / "lib/systemd/system"
    service, socket_unit = units / "dtls-proxyd.service", units / "dtls-proxyd.socket"
    assert f"ExecStart={prefix}/bin/dtls-proxyd --config {tmp_path}/etc/dtls-proxy/dtls-proxy.toml" \
        in service.read_text()
    v = subprocess.run(["systemd-analyze", "verify", str(service), str(socket_unit)],
                       capture_output=True, text=True, timeout=60)
    assert v.returncode == 0 and v.stdout.strip() == "" and v.stderr.strip() == "", (v.stdout, v.stderr)

    s = subprocess.run(["systemd-analyze", "security", "--offline=yes",
                        str(REPO / "systemd" / "dtls-proxyd.service")],
                       capture_output=True, text=True, timeout=60)
    m = re.search(r"Overall exposure level for dtls-proxyd\.service: (\d+\.\d+)", s.stdout)
    assert m, s.stdout + s.stderr
    report(f"systemd-analyze security --offline=yes systemd/dtls-proxyd.service: {m.group(1)}")
    assert float(m.group(1)) <= 1.5, s.stdout
    guide = (REPO / "docs" / "systemd.md").read_text()
    assert f"rates the unit at {m.group(1)}" in guide, "docs/systemd.md states the current figure"

    unit = (REPO / "systemd" / "dtls-proxyd.service").read_text()
    for directive in ("Type=notify", "WatchdogSec=", "ExecReload=/bin/kill -HUP $MAINPID",
                      "Restart=on-failure", "RestartPreventExitStatus=78", "LimitNOFILE=",
                      "LoadCredential=server.key:", "DynamicUser=yes", "NoNewPrivileges=yes",
                      "CapabilityBoundingSet=\n", "SystemCallFilter=@system-service"):
        assert directive in unit, directive
    sock = socket_unit.read_text()
    assert "ListenDatagram=" in sock and "FileDescriptorName=coaps" in sock


def test_make_install_honours_destdir_and_the_installed_config_reads_the_key_as_a_credential(tmp_path, certs):
    dest = tmp_path / "dest"
    r = _install(tmp_path, DESTDIR=str(dest), PREFIX="/usr")
    assert r.returncode == 0, r.stderr
    for path in ("usr/bin/dtls-proxyd", "usr/lib/systemd/system/dtls-proxyd.service",
                 "usr/lib/systemd/system/dtls-proxyd.socket", "usr/share/doc/dtls-proxyd/README.md", "usr/share/doc/dtls-proxyd/docs/systemd.md",
                 "usr/share/doc/dtls-proxyd/dtls-proxy.toml.example", "etc/dtls-proxy/dtls-proxy.toml"):
        assert (dest / path).is_file(), path
    assert os.access(dest / "usr/bin/dtls-proxyd", os.X_OK)
    service = (dest / "usr/lib/systemd/system/dtls-proxyd.service").read_text()
    assert "ExecStart=/usr/bin/dtls-proxyd --config /etc/dtls-proxy/dtls-proxy.toml" in service
    assert "Documentation=file:///usr/share/doc/dtls-proxyd/README.md" in service
    config = dest / "etc/dtls-proxy/dtls-proxy.toml"
    assert 'private_key = "credential:server.key"' in config.read_text()

    # What systemd would set up: the certificate next to the file, the key as a credential.
    shutil.copy(certs["cert"], config.parent / "server.pem")
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    shutil.copy(certs["key"], credentials / "server.key")
    env = {k: v for k, v in os.environ.items() if k != "CREDENTIALS_DIRECTORY"}
    check = [str(dest / "usr/bin/dtls-proxyd"), "--check-config", "--config", str(config)]
    ok = subprocess.run(check, capture_output=True, text=True, timeout=20,
                        env={**env, "CREDENTIALS_DIRECTORY": str(credentials)})
    assert ok.returncode == 0, ok.stderr
    missing = subprocess.run(check, capture_output=True, text=True, timeout=20, env=env)
    assert missing.returncode == 78, missing.stderr
    assert "listener[0].private_key" in missing.stderr and "CREDENTIALS_DIRECTORY is not set" in missing.stderr

    # A second install keeps the operator's configuration.
    config.write_text(config.read_text() + "# edited\n")
    assert _install(tmp_path, DESTDIR=str(dest), PREFIX="/usr").returncode == 0
    assert config.read_text().endswith("# edited\n")


def test_socket_activation_two_sockets_one_name_survive_reloads(tmp_path, certs, echo_backend, procs, peer):
    from harness import fingerprint, make_certificate
    backend = echo_backend()
    p1, p2, p3 = free_udp_port(), free_udp_port(), free_udp_port()
    coaps = {"name": "coaps", "listen": "127.0.0.1:1", "backend": f"127.0.0.1:{backend.port}",
             "certificate": str(certs["cert"]), "private_key": str(certs["key"])}
    config = write_config(tmp_path / "dtls-proxy.toml", [coaps])
    activator = Proc(_activate("-l", f"127.0.0.1:{p1}", "-l", f"127.0.0.1:{p2}", "--fdname=coaps:coaps",
                               str(DAEMON_BIN), "--config", str(config)))
    procs.append(activator)
    activator.wait_for(rf"Listening on 127\.0\.0\.1:{p2}", timeout=10)
    first = peer(s_client_argv("127.0.0.1", p1))
    first.wait_for(S_CLIENT_DONE, timeout=20)
    echo_roundtrip(first, b"on the first passed socket\n")
    second = peer(s_client_argv("127.0.0.1", p2))
    second.wait_for(S_CLIENT_DONE, timeout=20)
    echo_roundtrip(second, b"on the second passed socket\n")

    new_cert, new_key = make_certificate(tmp_path, "renewed")
    plain = {"name": "plain", "listen": f"127.0.0.1:{p3}", "backend": f"127.0.0.1:{backend.port}",
             "certificate": str(certs["cert"]), "private_key": str(certs["key"])}
    write_config(config, [{**coaps, "certificate": str(new_cert), "private_key": str(new_key)}, plain])
    mark = activator.mark()
    activator.signal(signal.SIGHUP)
    activator.wait_for(r"reload complete: 2 listener\(s\): 1 kept, 1 added, 0 removed", timeout=10, start=mark)
    echo_roundtrip(first, b"still on the passed socket\n")
    renewed = peer(s_client_argv("127.0.0.1", p2))
    renewed.wait_for(S_CLIENT_DONE, timeout=20)
    assert fingerprint(renewed.output) == fingerprint(new_cert.read_bytes())
    bound = peer(s_client_argv("127.0.0.1", p3))
    bound.wait_for(S_CLIENT_DONE, timeout=20)
    echo_roundtrip(bound, b"a listener that binds its own socket\n")

    # Dropping the listener of a passed socket would leave that socket unread: refused.
    write_config(config, [plain])
    mark = activator.mark()
    activator.signal(signal.SIGHUP)
    activator.wait_for(r'reload failed; the running configuration stays: .*socket "coaps".*matches no \[\[listener\]\]',
                       timeout=10, start=mark)
    echo_roundtrip(first, b"nothing changed\n")
    activator.signal(signal.SIGTERM)
    assert activator.wait(10) == 0, activator.text[-2000:]
