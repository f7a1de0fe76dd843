"""reload_on_change: a certificate renamed over, or a Kubernetes-style ``..data``
swap, reloads the daemon as SIGHUP does and new handshakes see the new
certificate; a broken replacement is a failed reload and the old certificate
keeps serving; with the key false (or turned off by a reload) nothing reloads."""

from __future__ import annotations

import os
import re
import shutil
import signal
import time
from pathlib import Path

from harness import (
    S_CLIENT_DONE,
    fingerprint,
    free_tcp_port,
    free_udp_port,
    make_certificate,
    metric,
    s_client_argv,
    scrape,
    write_config,
)

WATCHING = r"reload_on_change: watching \d+ file\(s\) in (\d+) of \1 director"
RELOAD_STARTS = "info reload: reading "


def _listener(port, backend, cert, key):
    return {"name": "coaps", "listen": f"127.0.0.1:{port}", "backend": f"127.0.0.1:{backend.port}",
            "certificate": str(cert), "private_key": str(key)}


def _served(peer, port) -> tuple[str, str]:
    """(fingerprint, subject line) of the certificate a new handshake on ``port`` gets."""
    client = peer(s_client_argv("127.0.0.1", port))
    client.wait_for(S_CLIENT_DONE, timeout=15)
    subject = re.search(rb"^subject=(.*)$", client.output, re.M)
    assert subject, client.text[-2000:]
    client.kill()
    return fingerprint(client.output), subject.group(1).decode()


def _replace(path: Path, source: Path):
    """What an editor or `install` does: a new file beside the old one, renamed over it."""
    staged = path.with_name(path.name + ".tmp")
    shutil.copyfile(source, staged)
    os.chmod(staged, source.stat().st_mode & 0o777)
    os.replace(staged, path)


def _settled_reloads(daemon, mark, seconds=1.5) -> int:
    """How many reloads started since ``mark``, once no more come for ``seconds``."""
    time.sleep(seconds)
    return daemon.output[mark:].decode("utf-8", "replace").count(RELOAD_STARTS)


def _watching_daemon(start_daemon, echo_backend, tmp_path):
    """A daemon with `reload_on_change` serving a certificate (CN "first") from `tmp_path/tls`,
    watching its files; returns it, its port and metrics port, and the certificate and key."""
    tls = tmp_path / "tls"
    tls.mkdir()
    cert, key = make_certificate(tls, "server", cn="first")
    port, metrics = free_udp_port(), free_tcp_port()
    daemon = start_daemon([_listener(port, echo_backend(), cert, key)],
                          daemon={"reload_on_change": True, "metrics_listen": f"127.0.0.1:{metrics}"})
    daemon.wait_for(WATCHING, timeout=5)
    return daemon, port, metrics, cert, key


def test_a_certificate_and_key_renamed_over_reload_once_and_new_handshakes_get_them(
        start_daemon, echo_backend, peer, tmp_path):
    daemon, port, metrics, cert, key = _watching_daemon(start_daemon, echo_backend, tmp_path)
    new_cert, new_key = make_certificate(tmp_path, "renewed", cn="renewed")
    assert _served(peer, port)[1].endswith("CN = first")

    mark = daemon.mark()
    _replace(key, new_key)
    _replace(cert, new_cert)
    daemon.wait_for(r"reload_on_change: changed: .*server\.(pem|key).*; reloading", timeout=10, start=mark)
    daemon.wait_for(r"reload complete: 1 listener\(s\): 1 kept, 0 added, 0 removed", timeout=10, start=mark)
    assert _settled_reloads(daemon, mark) == 1, "one update, one reload"
    fp, subject = _served(peer, port)
    assert fp == fingerprint(new_cert.read_bytes()) and subject.endswith("CN = renewed")
    _, body = scrape(metrics)
    assert metric(body, "dtlsproxy_reloads_total", result="success") == 1


def test_a_kubernetes_data_swap_reloads(start_daemon, echo_backend, peer, tmp_path):
    """The kubelet's layout: tls.crt -> ..data/tls.crt, ..data -> ..<timestamp>; an update
    writes a new timestamped folder, renames a new link onto ..data, removes the old folder."""
    volume = tmp_path / "secret"
    first = volume / "..2024_01_01_00_00_00.1"
    first.mkdir(parents=True)
    make_certificate(first, "tls", cn="first")
    os.symlink(first.name, volume / "..data")
    for name in ("tls.pem", "tls.key"):
        os.symlink(f"..data/{name}", volume / name)
    port = free_udp_port()
    daemon = start_daemon([_listener(port, echo_backend(), volume / "tls.pem", volume / "tls.key")],
                          daemon={"reload_on_change": True})
    daemon.wait_for(WATCHING, timeout=5)
    assert _served(peer, port)[1].endswith("CN = first")

    for generation, cn in ((2, "second"), (3, "third")):
        mark = daemon.mark()
        folder = volume / f"..2024_01_01_00_00_00.{generation}"
        folder.mkdir()
        cert, _ = make_certificate(folder, "tls", cn=cn)
        old = os.readlink(volume / "..data")
        os.symlink(folder.name, volume / "..data_tmp")
        os.replace(volume / "..data_tmp", volume / "..data")
        shutil.rmtree(volume / old)
        daemon.wait_for(r"reload_on_change: changed: .*/secret/\.\.data", timeout=10, start=mark)
        daemon.wait_for(r"reload complete", timeout=10, start=mark)
        daemon.wait_for(WATCHING, timeout=5, start=mark)
        assert _settled_reloads(daemon, mark) == 1, "one swap, one reload"
        assert b"reload failed" not in daemon.output[mark:]
        fp, subject = _served(peer, port)
        assert fp == fingerprint(cert.read_bytes()) and subject.endswith(f"CN = {cn}")


def test_a_broken_replacement_is_a_failed_reload_and_the_old_certificate_serves(
        start_daemon, echo_backend, peer, tmp_path):
    daemon, port, metrics, cert, key = _watching_daemon(start_daemon, echo_backend, tmp_path)
    other_cert, _ = make_certificate(tmp_path, "other", cn="other")
    good = fingerprint(cert.read_bytes())

    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    cases = [
        (garbage, r"listener\[0\]\.certificate: cannot load certificate chain .*server\.pem"),
        (other_cert, r"listener\[0\]\.private_key: .*does not match"),  # valid, but not the key's
    ]
    for failures, (replacement, error) in enumerate(cases, start=1):
        mark = daemon.mark()
        _replace(cert, replacement)
        daemon.wait_for(r"reload failed; the running configuration stays: .*" + error, timeout=10, start=mark)
        fp, subject = _served(peer, port)
        assert fp == good and subject.endswith("CN = first"), "the old certificate keeps serving"
        _, body = scrape(metrics)
        assert metric(body, "dtlsproxy_reloads_total", result="failure") == failures
        assert metric(body, "dtlsproxy_config_last_reload_successful") == 0
    assert daemon.alive()


def test_off_by_default_and_turned_on_and_off_by_reload(start_daemon, echo_backend, peer, tmp_path):
    tls = tmp_path / "tls"
    tls.mkdir()
    cert, key = make_certificate(tls, "server", cn="first")
    port = free_udp_port()
    backend = echo_backend()
    daemon = start_daemon([_listener(port, backend, cert, key)])
    good = fingerprint(cert.read_bytes())

    # Off: a broken certificate renamed over is not noticed, and nothing is watched.
    broken = tmp_path / "broken.pem"
    broken.write_text("not a certificate\n")
    saved = tmp_path / "saved.pem"
    shutil.copyfile(cert, saved)
    mark = daemon.mark()
    _replace(cert, broken)
    assert _settled_reloads(daemon, mark) == 0
    assert "reload_on_change" not in daemon.text
    assert _served(peer, port)[0] == good
    _replace(cert, saved)

    # On by reload: from now on a change reloads.
    mark = daemon.mark()
    write_config(daemon.config, [_listener(port, backend, cert, key)], daemon={"reload_on_change": True})
    daemon.signal(signal.SIGHUP)
    daemon.wait_for(r"reload complete", timeout=10, start=mark)
    daemon.wait_for(WATCHING, timeout=5, start=mark)
    mark = daemon.mark()
    renewed_cert, renewed_key = make_certificate(tmp_path, "renewed", cn="renewed")
    _replace(key, renewed_key)
    _replace(cert, renewed_cert)
    daemon.wait_for(r"reload complete", timeout=10, start=mark)
    assert _served(peer, port)[1].endswith("CN = renewed")

    # Off by a change of the configuration file itself: that change is the last one seen.
    mark = daemon.mark()
    write_config(daemon.config, [_listener(port, backend, cert, key)], daemon={"reload_on_change": False})
    daemon.wait_for(r"reload complete", timeout=10, start=mark)
    daemon.wait_for(r"reload_on_change: off; files are no longer watched", timeout=5, start=mark)
    mark = daemon.mark()
    _replace(cert, broken)
    assert _settled_reloads(daemon, mark) == 0, "no longer watched"
    assert _served(peer, port)[1].endswith("CN = renewed")
