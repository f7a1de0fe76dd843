#!/usr/bin/env python3
"""Split a `perf record -p PID` profile of dtls-proxyd (or the relay) into
where the time goes: kernel (scheduling, UDP, epoll), OpenSSL, the Swift
runtime, SwiftNIO, libc, the daemon's own code.

    perf-by-category.py perf.data [MICROSECONDS]

With MICROSECONDS (the target's CPU per round trip or per datagram, from
`perf stat -e task-clock`), each share is also given in µs. On a machine
without a PMU (virtual machines) perf samples on the cpu-clock timer, which
cannot fire while interrupts are off: that time lands on
finish_task_switch / _raw_spin_unlock_irqrestore, so the scheduling line
also carries wake-ups and loopback delivery done with interrupts off.
"""

import re
import subprocess
import sys
data = sys.argv[1]
out = subprocess.run(["perf", "report", "-i", data, "--no-children", "--sort", "dso,sym", "-g", "none", "--stdio", "-q"],
                     capture_output=True, text=True).stdout
cats = {}
def cat(dso, sym):
    if dso == "[kernel.kallsyms]":
        if re.search(r"finish_task_switch|_raw_spin_unlock_irq|__schedule|schedule|try_to_wake_up|pick_next|enqueue_task|dequeue|update_curr|switch_mm|__switch_to|psi_|select_task_rq", sym):
            return "kernel: scheduling, wake-ups, context switches"
        if re.search(r"epoll|ep_|poll", sym):
            return "kernel: epoll"
        return "kernel: UDP send/receive, syscall entry/exit"
    if dso.startswith("libcrypto"): return "OpenSSL libcrypto (AES-GCM, EVP/OSSL_PARAM)"
    if dso.startswith("libssl"): return "OpenSSL libssl (record layer)"
    if dso.startswith("libswiftCore"): return "Swift runtime (retain/release, exclusivity, generics)"
    if dso.startswith("libc"):
        if re.search(r"malloc|free|_int_|cfree|calloc|realloc|tcache", sym): return "libc malloc/free"
        if re.search(r"mem(cpy|move|set)", sym): return "libc memcpy/memset"
        if re.search(r"printf|strcmp|inet_ntop|str", sym): return "libc sprintf/strcmp (NIO inet_ntop, OSSL_PARAM_locate)"
        if re.search(r"sendmsg|recvmsg|recvmmsg|sendmmsg|epoll|syscall|send|recv", sym): return "libc syscall wrappers"
        return "libc other"
    if dso in ("dtls-proxyd", "dtls-proxy-bench"):
        if "NIO" in sym: return "SwiftNIO (channel, pipeline, selector, pending writes)"
        if "DTLSProxy" in sym: return "daemon code (Session, endpoint, router)"
        return "binary other"
    return "other: " + dso
for line in out.splitlines():
    m = re.match(r"\s*([\d.]+)%\s+(\S+)\s+\[.\]\s+(.*)", line)
    if not m: continue
    pct, dso, sym = float(m.group(1)), m.group(2), m.group(3).strip()
    c = cat(dso, sym); cats[c] = cats.get(c, 0) + pct
per = float(sys.argv[2]) if len(sys.argv) > 2 else None
for c, p in sorted(cats.items(), key=lambda x: -x[1]):
    print(f"{p:6.2f}%  " + (f"{per * p / 100:5.2f} µs  " if per else "") + c)
