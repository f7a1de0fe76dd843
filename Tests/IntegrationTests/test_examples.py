"""Every example configuration in config/ passes --check-config.

Each example is copied into a fresh folder together with the files it names
(relative paths resolve against the configuration's folder): certificates and
keys from the test PKI, CA bundles, PSK files holding the identities the
example's connectors use, secrets of the right length. Then the real daemon
validates it, loading every credential into its SSL_CTX.
"""

from __future__ import annotations

import os
import shutil
import tomllib
from pathlib import Path

import pytest

from harness import REPO, run_daemon_once, toml_tables, write_secret

EXAMPLES = sorted((REPO / "config").glob("*.toml"))
# Keys whose values are files, and what to put there.
CA_KEYS = ("client_ca", "server_ca")
SECRET_KEYS = {"cookie_secret_file": 32, "ticket_key_file": 48}


def _provide_files(document: dict, folder: Path, certs, pki):
    identities = [t["psk_identity"] for t in toml_tables(document) if isinstance(t.get("psk_identity"), str)]
    for table in toml_tables(document):
        is_connector = "server" in table
        # A connector presents a client certificate; a listener its server certificate.
        pair = (pki["dev1"] if is_connector else (certs["cert"], certs["key"]))
        for key, value in table.items():
            if not isinstance(value, str) or not value or value.startswith("credential:"):
                continue
            target = Path(value) if os.path.isabs(value) else folder / value
            if target.exists():
                continue
            if key == "certificate":
                shutil.copy(pair[0], target)
            elif key == "private_key":
                write_secret(target, Path(pair[1]).read_bytes())
            elif key in CA_KEYS:
                # The test CA issued dev1; the self-signed server certificate is its own CA.
                target.write_bytes(Path(pki["ca"]).read_bytes() + Path(certs["cert"]).read_bytes())
            elif key == "psk_file":
                lines = "".join(f"{identity}:00112233445566778899aabbccddeeff\n" for identity in identities or ["example"])
                write_secret(target, lines)
            elif key in SECRET_KEYS:
                write_secret(target, os.urandom(SECRET_KEYS[key]))


def test_there_are_examples_for_client_mode_and_routing():
    names = {p.name for p in EXAMPLES}
    assert {"dtls-proxy.toml", "tunnel-client.toml", "tunnel-server.toml", "coap-psk.toml",
            "coap-psk-connector.toml", "sni-routing.toml"} <= names, names


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_example_config_passes_check_config(example: Path, tmp_path, certs, pki):
    shutil.copy(example, tmp_path / example.name)
    _provide_files(tomllib.loads(example.read_text()), tmp_path, certs, pki)
    r = run_daemon_once(tmp_path / example.name, "--check-config")
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert f"configuration OK: {tmp_path / example.name}" in r.stdout
