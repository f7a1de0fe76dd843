#!/usr/bin/env python3
"""Heap per idle session by owner (OpenSSL, SwiftNIO, the daemon), from a
heaptrack recording of dtls-proxyd killed (SIGKILL) while it holds COUNT idle
sessions: heaptrack then reports every live allocation as leaked, which is
a snapshot of the heap at that moment.

    heaptrack_print -f ht.zst -F leaked.folded --flamegraph-cost-type leaked
    heap-by-owner.py leaked.folded COUNT

Run it on a recording with no session too and subtract: that is the baseline.
"""
import collections
import re
import sys
OPENSSL = re.compile(r"^(CRYPTO_|OPENSSL_|BUF_|EVP_|X509|ASN1|ossl_|SSL_|BN_|EC_|DH_)")
cats = collections.Counter()
for line in open(sys.argv[1]):
    stack, _, n = line.rstrip().rpartition(" ")
    n = int(n)
    frames = [f.split(" (")[0] for f in stack.strip(";").split(";")]
    names = [f for f in frames if not f.startswith("0x")]
    leafmost = names[-1] if names else ""
    if any(OPENSSL.match(f) for f in names[-3:]) or "BUF_MEM_grow" in stack:
        if "BUF_MEM_grow" in stack: c = "OpenSSL: handshake message buffer (init_buf: 16 KiB grown to 21 848 B, kept after the handshake for DTLS)"
        elif "SSL_SESSION_new" in stack: c = "OpenSSL: SSL_SESSION"
        elif "EVP_CipherInit_ex" in stack: c = "OpenSSL: AES-GCM cipher contexts (read + write)"
        elif "SSL_new" in stack: c = "OpenSSL: SSL object and DTLS state (SSL_new)"
        elif "DTLSProxy" in stack: c = "OpenSSL: other per-connection state"
        else: c = "other (process-wide)"
    else:
        c = "other (process-wide)"
        for f in reversed(frames):
            if "NIOPosix" in f or "NIOCore" in f:
                if "ByteBufferV8_Storage" in stack and re.search(r"recvBufferPool|singleReadFromSocket|NIOPooledRecv|PooledRecvBufferAllocator", stack):
                    c = "NIO: backend channel's pooled receive buffer"
                else:
                    c = "NIO: backend DatagramChannel (channel, socket, pipeline, pending-writes ring, promises)"
                break
            if "DTLSProxy" in f:
                c = "daemon: Session, DTLSEndpoint, BackendLink, timers, session-table entries"
                break
    cats[c] += n
total = sum(cats.values())
per = float(sys.argv[2])
for c, n in cats.most_common():
    print(f"{n/per:9.0f} B  {n/per/1024:6.2f} KiB  {c}")
print(f"{total/per:9.0f} B  {total/per/1024:6.2f} KiB  total heap alive / {per:.0f}")
