"""Configuration errors: exit code 78 and one stderr line naming file, key and cause."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import pytest

from harness import REPO, free_udp_port, run_daemon_once, write_config

EX_CONFIG = 78


def _listener(certs) -> dict:
    return {
        "name": "test",
        "listen": f"127.0.0.1:{free_udp_port()}",
        "backend": "127.0.0.1:9",
        "certificate": str(certs["cert"]),
        "private_key": str(certs["key"]),
    }


def _no_private_key(listener, certs, tmp):
    del listener["private_key"]


def _missing_certificate(listener, certs, tmp):
    listener["certificate"] = str(tmp / "does-not-exist.pem")


def _mismatched_key(listener, certs, tmp):
    listener["private_key"] = str(certs["other_key"])


def _unknown_key(listener, certs, tmp):
    listener["bogus"] = 1


def _bad_duration(listener, certs, tmp):
    listener["idle_timeout"] = "ten seconds"


CASES = [
    pytest.param(_no_private_key, "listener[0].private_key", "missing", id="no-private-key"),
    pytest.param(_missing_certificate, "listener[0].certificate", "not found", id="no-such-certificate"),
    pytest.param(_mismatched_key, "listener[0].private_key", "does not match", id="key-mismatch"),
    pytest.param(_unknown_key, "listener[0].bogus", "unknown key", id="unknown-key"),
    pytest.param(_bad_duration, "listener[0].idle_timeout", "invalid duration", id="bad-duration"),
]


def _one_line(stderr: str) -> str:
    lines = [l for l in stderr.splitlines() if l.strip()]
    assert len(lines) == 1, f"expected exactly one stderr line, got {len(lines)}:\n{stderr}"
    return lines[0]


@pytest.mark.parametrize("mutate,key,cause", CASES)
def test_config_error_exits_78_with_one_line(tmp_path, certs, mutate, key, cause):
    listener = _listener(certs)
    mutate(listener, certs, tmp_path)
    cfg = write_config(tmp_path / "dtls-proxy.toml", [listener])
    r = run_daemon_once(cfg)
    assert r.returncode == EX_CONFIG, (r.returncode, r.stderr)
    line = _one_line(r.stderr)
    assert str(cfg) in line, f"the line must name the file {cfg}: {line}"
    assert key in line, f"the line must name the key {key}: {line}"
    assert cause in line.lower(), f"the line must give the cause ({cause}): {line}"


@pytest.mark.parametrize("mutate,key,cause", CASES)
def test_check_config_rejects(tmp_path, certs, mutate, key, cause):
    listener = _listener(certs)
    mutate(listener, certs, tmp_path)
    cfg = write_config(tmp_path / "dtls-proxy.toml", [listener])
    r = run_daemon_once(cfg, "--check-config")
    assert r.returncode == EX_CONFIG, (r.returncode, r.stdout, r.stderr)
    assert key in r.stderr, r.stderr


def test_check_config_accepts_good_config(tmp_path, certs):
    cfg = write_config(tmp_path / "dtls-proxy.toml", [_listener(certs)])
    r = run_daemon_once(cfg, "--check-config")
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert f"configuration OK: {cfg}" in r.stdout + r.stderr


def test_check_config_binds_nothing(tmp_path, certs):
    """--check-config validates and exits; it must not need the port to be free."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as squatter:
        squatter.bind(("127.0.0.1", 0))
        listener = _listener(certs)
        listener["listen"] = f"127.0.0.1:{squatter.getsockname()[1]}"
        cfg = write_config(tmp_path / "dtls-proxy.toml", [listener])
        r = run_daemon_once(cfg, "--check-config")
    assert r.returncode == 0, (r.stdout, r.stderr)


def test_relative_paths_resolve_against_config_folder(tmp_path, certs):
    conf_dir = tmp_path / "etc"
    conf_dir.mkdir()
    shutil.copy(certs["cert"], conf_dir / "server.pem")
    shutil.copy(certs["key"], conf_dir / "server.key")
    listener = _listener(certs)
    listener.update(certificate="server.pem", private_key="server.key")
    cfg = write_config(conf_dir / "dtls-proxy.toml", [listener])
    r = run_daemon_once(cfg, "--check-config")  # run from another working directory
    assert r.returncode == 0, (r.stdout, r.stderr)


def test_shipped_example_config_is_valid(tmp_path, certs):
    """config/dtls-proxy.toml, with every key it documents, passes --check-config."""
    example = REPO / "config" / "dtls-proxy.toml"
    shutil.copy(example, tmp_path / "dtls-proxy.toml")
    shutil.copy(certs["cert"], tmp_path / "server.pem")
    shutil.copy(certs["key"], tmp_path / "server.key")
    r = run_daemon_once(tmp_path / "dtls-proxy.toml", "--check-config")
    assert r.returncode == 0, (r.stdout, r.stderr)


def test_missing_config_file_is_a_config_error(tmp_path):
    missing = tmp_path / "nope.toml"
    r = run_daemon_once(missing)
    assert r.returncode == EX_CONFIG, (r.returncode, r.stderr)
    line = _one_line(r.stderr)
    assert str(missing) in line, line


def test_duplicate_listener_names_rejected(tmp_path, certs):
    a, b = _listener(certs), _listener(certs)
    cfg = write_config(tmp_path / "dtls-proxy.toml", [a, b])
    r = run_daemon_once(cfg, "--check-config")
    assert r.returncode == EX_CONFIG, (r.returncode, r.stderr)
    line = _one_line(r.stderr)
    assert "name" in line and str(cfg) in line, line


def test_toml_syntax_error_names_file(tmp_path):
    cfg: Path = tmp_path / "dtls-proxy.toml"
    cfg.write_text("[[listener]\nname = \n")
    r = run_daemon_once(cfg)
    assert r.returncode == EX_CONFIG, (r.returncode, r.stderr)
    assert str(cfg) in _one_line(r.stderr)
