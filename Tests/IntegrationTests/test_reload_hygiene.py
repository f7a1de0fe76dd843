"""Reloads that repeat nothing and keep nothing: the open-file-limit warning is
logged at start and when a reload changes its figures, not on every reload, and
a thousand reloads leave the daemon's resident memory where it was.

The configuration parser keeps every document it parses unless the loader
releases it; a daemon reloaded by a configuration-management loop every few
seconds would otherwise grow without bound.
"""

from __future__ import annotations

import resource
import signal

from harness import free_udp_port, report, write_config

LIMIT_WARNING = "open-file limit"


def _listener(port, backend, certs, **extra):
    return {"name": "coaps", "listen": f"127.0.0.1:{port}", "backend": f"127.0.0.1:{backend.port}",
            "certificate": str(certs["cert"]), "private_key": str(certs["key"]), **extra}


def _reload(daemon, timeout: float = 10.0):
    mark = daemon.mark()
    daemon.signal(signal.SIGHUP)
    daemon.wait_for(r"reload complete", timeout=timeout, start=mark)


def _warnings(daemon) -> int:
    return sum(LIMIT_WARNING in line for line in daemon.log_lines())


def test_open_file_limit_warning_is_not_repeated_by_reloads(start_daemon, echo_backend, certs):
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    assert hard < 100_000, "the test needs a hard open-file limit below max_sessions' default"
    backend, port = echo_backend(), free_udp_port()
    daemon = start_daemon([_listener(port, backend, certs)])   # max_sessions defaults to 100 000
    assert _warnings(daemon) == 1
    for _ in range(20):
        _reload(daemon)
    assert _warnings(daemon) == 1, [l for l in daemon.log_lines() if LIMIT_WARNING in l]
    # A reload that changes what the configuration may need says so once.
    write_config(daemon.config, [_listener(port, backend, certs, max_sessions=hard + 500)])
    _reload(daemon)
    _reload(daemon)
    assert _warnings(daemon) == 2
    # Within the limit: nothing more.
    write_config(daemon.config, [_listener(port, backend, certs, max_sessions=100)])
    _reload(daemon)
    assert _warnings(daemon) == 2


def test_a_thousand_reloads_keep_resident_memory_flat(start_daemon, echo_backend, certs, tmp_path):
    backend, port = echo_backend(), free_udp_port()
    psk = tmp_path / "psk.txt"
    psk.write_text("device-1:" + "11" * 16 + "\n")
    psk.chmod(0o600)
    # A configuration with nested tables and arrays, as operators write them.
    listener = _listener(port, backend, certs, psk_file=str(psk), max_sessions=1000, routes=[
        {"name": f"r{i}", "server_name": f"svc{i}.example", "backends": [f"127.0.0.1:{backend.port}"]}
        for i in range(8)])
    daemon = start_daemon([listener])
    for _ in range(100):       # the allocator's arenas and caches settle
        _reload(daemon)
    before = daemon.rss_kib()
    for _ in range(1000):
        _reload(daemon)
    after = daemon.rss_kib()
    report(f"1000 reloads: RSS {before} -> {after} KiB ({(after - before) / 1000:.2f} KiB per reload)")
    assert after - before < 1024, f"RSS grew {after - before} KiB over 1000 reloads"
