#!/usr/bin/env python3
"""Writes the RFC 9146 seeds of Fuzz/corpus/records (cid-*.bin) for fuzz-records.

Each seed is a datagram of `tls12_cid` records (content type 25) sealed with the
fixed keys of FuzzRecords.swift (key all 0x42, IV all 0x24, CID "fuzz-cid"),
one file per suite, plus ordinary epoch-1 records for a side without a CID.
Sealed here by a Python AEAD implementation, independently of the Swift code and
of OpenSSL's record layer; a unit test (FuzzSeedRecordTests) checks that they open.
Run from the repository root: python3 Fuzz/make-cid-seeds.py
"""
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESCCM, AESGCM, ChaCha20Poly1305

OUT = Path(__file__).resolve().parent / "corpus" / "records"
CID = b"fuzz-cid"
VERSION = b"\xfe\xfd"
EPOCH = 1

# name: (key length, fixed IV length, explicit nonce, AEAD maker)
SUITES = {
    "aes128gcm": (16, 4, True, lambda key: AESGCM(key)),
    "aes256gcm": (32, 4, True, lambda key: AESGCM(key)),
    "chacha20": (32, 12, False, lambda key: ChaCha20Poly1305(key)),
    "aes128ccm": (16, 4, True, lambda key: AESCCM(key, tag_length=16)),
    "aes128ccm8": (16, 4, True, lambda key: AESCCM(key, tag_length=8)),
}


def seal(suite: str, content_type: int, seq: int, plaintext: bytes, padding: int, cid: bytes) -> bytes:
    key_length, iv_length, explicit, make = SUITES[suite]
    aead = make(bytes([0x42]) * key_length)
    iv = bytes([0x24]) * iv_length
    epoch_seq = (EPOCH << 48 | seq).to_bytes(8, "big")
    if explicit:
        nonce, explicit_nonce = iv + epoch_seq, epoch_seq
    else:
        nonce, explicit_nonce = bytes(a ^ b for a, b in zip(iv, bytes(4) + epoch_seq)), b""
    if cid:
        inner = plaintext + bytes([content_type]) + bytes(padding)
        aad = b"\xff" * 8 + bytes([25, len(cid), 25]) + VERSION + epoch_seq + cid + len(inner).to_bytes(2, "big")
        sealed = explicit_nonce + aead.encrypt(nonce, inner, aad)
        return bytes([25]) + VERSION + epoch_seq + cid + len(sealed).to_bytes(2, "big") + sealed
    aad = epoch_seq + bytes([content_type]) + VERSION + len(plaintext).to_bytes(2, "big")
    sealed = explicit_nonce + aead.encrypt(nonce, plaintext, aad)
    return bytes([content_type]) + VERSION + epoch_seq + len(sealed).to_bytes(2, "big") + sealed


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for suite in SUITES:
        with_cid = seal(suite, 23, 1, b"GET /fuzz\r\n", 3, CID) + seal(suite, 21, 2, b"\x01\x00", 0, CID)
        (OUT / f"cid-{suite}.bin").write_bytes(with_cid)
        ordinary = seal(suite, 23, 1, b"GET /fuzz\r\n", 0, b"") + seal(suite, 23, 2, b"", 0, b"")
        (OUT / f"cid-ordinary-{suite}.bin").write_bytes(ordinary)


if __name__ == "__main__":
    main()
