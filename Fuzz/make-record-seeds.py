#!/usr/bin/env python3
"""Writes the record seed corpus (Fuzz/corpus/records) from a real DTLS 1.2 client.

Listens on a local UDP port, lets `openssl s_client -dtls1_2` connect, answers its
first ClientHello with a HelloVerifyRequest and keeps the ClientHello that carries
the cookie; then does the same with `-mtu 256`, where the client fragments its
hello. A seed file is one or more records back to back, as the fuzz target reads
them. Run from the repository root: python3 Fuzz/make-record-seeds.py
"""
import socket
import subprocess
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent / "corpus" / "records"
COOKIE = bytes(range(0x20, 0x40))  # 32 bytes, like the daemon's cookies


def hello_verify_request(cookie: bytes, record_sequence: int) -> bytes:
    """The HelloVerifyRequest the daemon sends (see HelloVerifyRequest.swift)."""
    body = b"\xfe\xff" + bytes([len(cookie)]) + cookie
    handshake = bytes([3]) + len(body).to_bytes(3, "big") + b"\x00\x00" + b"\x00\x00\x00" + len(body).to_bytes(3, "big") + body
    return bytes([22, 0xFE, 0xFF, 0, 0]) + record_sequence.to_bytes(6, "big") + len(handshake).to_bytes(2, "big") + handshake


def hello_fragments(datagram: bytes):
    """(message_seq, fragment_offset, fragment_length, message_length, record bytes) of each ClientHello record."""
    offset = 0
    while offset + 13 <= len(datagram):
        length = int.from_bytes(datagram[offset + 11:offset + 13], "big")
        record = datagram[offset:offset + 13 + length]
        body = record[13:]
        if record[0] == 22 and len(body) >= 12 and body[0] == 1:
            yield (int.from_bytes(body[4:6], "big"), int.from_bytes(body[6:9], "big"),
                   int.from_bytes(body[9:12], "big"), int.from_bytes(body[1:4], "big"), record)
        offset += 13 + length


def capture(extra_args):
    """The records of the first ClientHello and of the one answering our HelloVerifyRequest."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(5)
    port = sock.getsockname()[1]
    client = subprocess.Popen(
        ["openssl", "s_client", "-dtls1_2", "-connect", f"127.0.0.1:{port}", *extra_args],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        hellos = {0: [], 1: []}
        answered = False
        while True:
            datagram, peer = sock.recvfrom(65535)
            for sequence, fragment_offset, fragment_length, message_length, record in hello_fragments(datagram):
                if sequence not in hellos:
                    continue
                if any(f[1] == fragment_offset for f in hellos[sequence]):
                    continue  # a retransmission
                hellos[sequence].append((sequence, fragment_offset, fragment_length, message_length, record))
                if sum(f[2] for f in hellos[sequence]) == message_length:
                    if sequence == 1:
                        return [f[4] for f in hellos[0]], [f[4] for f in hellos[1]]
                    if not answered:
                        first = hellos[0][0][4]
                        sock.sendto(hello_verify_request(COOKIE, int.from_bytes(first[5:11], "big")), peer)
                        answered = True
    finally:
        client.kill()
        client.wait()
        sock.close()


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    first, with_cookie = capture([])
    if len(first) != 1 or len(with_cookie) != 1:
        sys.exit("expected unfragmented hellos without -mtu")
    (OUT / "clienthello.bin").write_bytes(first[0])
    (OUT / "clienthello-cookie.bin").write_bytes(with_cookie[0])
    first, with_cookie = capture(["-mtu", "256"])
    if len(with_cookie) < 2:
        sys.exit("expected a fragmented hello with -mtu 256")
    (OUT / "clienthello-fragmented-first.bin").write_bytes(b"".join(first))
    (OUT / "clienthello-fragmented-cookie.bin").write_bytes(b"".join(with_cookie))
    (OUT / "hello-verify-request.bin").write_bytes(hello_verify_request(COOKIE, 1))
    # Records the router sees besides hellos: an epoch-1 application data record and a plaintext alert.
    (OUT / "application-data.bin").write_bytes(bytes([23, 0xFE, 0xFD, 0, 1]) + (7).to_bytes(6, "big") + (24).to_bytes(2, "big") + bytes(24))
    (OUT / "alert.bin").write_bytes(bytes([21, 0xFE, 0xFD, 0, 0]) + (2).to_bytes(6, "big") + b"\x00\x02\x02\x28")
    for path in sorted(OUT.iterdir()):
        print(f"{path.name}: {path.stat().st_size} bytes")


if __name__ == "__main__":
    main()
