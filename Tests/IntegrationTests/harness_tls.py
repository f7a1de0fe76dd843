"""DTLS records and the test PKI of the integration harness: crafted ClientHellos,
HelloVerifyRequest parsing, CAs, certificates and key files.

``harness`` re-exports all of it; tests import from there.
"""

from __future__ import annotations

import os
import re
import struct
import subprocess
from pathlib import Path


# --------------------------------------------------------------------------- DTLS records

def _u16(n: int) -> bytes:
    return struct.pack("!H", n)


def _u24(n: int) -> bytes:
    return struct.pack("!I", n)[1:]


def _ext(ext_type: int, body: bytes) -> bytes:
    return _u16(ext_type) + _u16(len(body)) + body


def client_hello(cookie: bytes = b"", random: bytes | None = None, seq: int = 0) -> bytes:
    """A DTLS 1.2 ClientHello in one epoch-0 record; ``seq`` is message_seq and record seq.

    The first ClientHello has seq 0; the one repeating it with a cookie has seq 1.

    ECDHE AEAD suites, supported_groups, ec_point_formats,
    signature_algorithms, extended_master_secret and renegotiation_info.
    """
    random = random if random is not None else os.urandom(32)
    suites = [0xC02B, 0xC02C, 0xC02F, 0xC030, 0xCCA9, 0xCCA8]
    groups = [0x0017, 0x001D, 0x0018]           # secp256r1, x25519, secp384r1
    sigalgs = [0x0403, 0x0503, 0x0804, 0x0401]
    exts = (_ext(0x000A, _u16(2 * len(groups)) + b"".join(_u16(g) for g in groups))
            + _ext(0x000B, b"\x01\x00")
            + _ext(0x000D, _u16(2 * len(sigalgs)) + b"".join(_u16(s) for s in sigalgs))
            + _ext(0x0017, b"")
            + _ext(0xFF01, b"\x00"))
    body = (b"\xfe\xfd" + random + b"\x00" + bytes([len(cookie)]) + cookie
            + _u16(2 * len(suites)) + b"".join(_u16(s) for s in suites)
            + b"\x01\x00" + _u16(len(exts)) + exts)
    handshake = b"\x01" + _u24(len(body)) + _u16(seq) + _u24(0) + _u24(len(body)) + body
    return b"\x16\xfe\xff" + _u16(0) + seq.to_bytes(6, "big") + _u16(len(handshake)) + handshake


def parse_hello_verify(datagram: bytes) -> tuple[int, int, bytes]:
    """(record content type, handshake type, cookie) of a HelloVerifyRequest datagram.

    Raises ValueError when the datagram is too short to be one.
    """
    if len(datagram) < 13 + 12 + 3:
        raise ValueError(f"datagram too short for a HelloVerifyRequest: {datagram.hex()}")
    length = struct.unpack("!H", datagram[11:13])[0]
    handshake = datagram[13:13 + length]
    body = handshake[12:]
    cookie_len = body[2]
    cookie = body[3:3 + cookie_len]
    if len(cookie) != cookie_len:
        raise ValueError(f"truncated cookie: {datagram.hex()}")
    return datagram[0], handshake[0], cookie


# --------------------------------------------------------------------------- test PKI

def _openssl(*args: str):
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=30)


def make_ca(directory: Path, name: str) -> tuple[Path, Path]:
    """A self-signed ECDSA P-256 CA: (certificate, key) as ``NAME.pem`` / ``NAME.key``."""
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", f"/CN={name}",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    os.chmod(key, 0o600)
    return cert, key


def _issue(directory: Path, ca: tuple[Path, Path], name: str, cn: str, extensions: str) -> tuple[Path, Path]:
    """A certificate for ``cn`` with ``extensions`` (extfile lines) signed by ``ca``, and its
    new ECDSA P-256 key: (``NAME.pem``, ``NAME.key``)."""
    cert, key, csr = directory / f"{name}.pem", directory / f"{name}.key", directory / f"{name}.csr"
    ext = directory / f"{name}.ext"
    ext.write_text(extensions)
    _openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={cn}")
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca[0]), "-CAkey", str(ca[1]),
             "-set_serial", str(int.from_bytes(os.urandom(8), "big")), "-days", "2",
             "-out", str(cert), "-extfile", str(ext))
    os.chmod(key, 0o600)
    return cert, key


def issue_client_cert(directory: Path, ca: tuple[Path, Path], name: str, cn: str,
                      san: str | None = None) -> tuple[Path, Path]:
    """A client certificate (clientAuth) for ``cn`` issued by ``ca``, optional SAN
    (e.g. ``"URI:spiffe://example.org/x,DNS:a.example.org"``): (certificate, key)."""
    return _issue(directory, ca, name, cn,
                  "extendedKeyUsage=clientAuth\n" + (f"subjectAltName={san}\n" if san else ""))


def issue_intermediate_ca(directory: Path, ca: tuple[Path, Path], name: str) -> tuple[Path, Path]:
    """A CA certificate signed by ``ca`` (one level down): (certificate, key)."""
    return _issue(directory, ca, name, name,
                  "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n")


def write_secret(path: Path, text: str | bytes) -> Path:
    """Write a key-like file readable by its owner only (the daemon refuses looser modes)."""
    data = text.encode() if isinstance(text, str) else text
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(path, 0o600)
    return path


def make_certificate(directory: Path, stem: str, cn: str = "localhost") -> tuple[Path, Path]:
    """A self-signed ECDSA P-256 certificate and key, ``stem.pem`` and ``stem.key``."""
    cert, key = directory / f"{stem}.pem", directory / f"{stem}.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", f"/CN={cn}",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True, timeout=30)
    return cert, key


def fingerprint(pem: bytes | str) -> str:
    """SHA-256 fingerprint of the first PEM certificate in ``pem``."""
    if isinstance(pem, str):
        pem = pem.encode()
    m = re.search(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", pem, re.S)
    assert m, f"no certificate in {pem[:300]!r}"
    r = subprocess.run(["openssl", "x509", "-noout", "-fingerprint", "-sha256"], input=m.group(0),
                       capture_output=True, check=True, timeout=10)
    return r.stdout.decode().strip().split("=", 1)[1]
