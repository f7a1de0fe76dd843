#!/bin/bash
# Where one round trip goes, for two daemon builds side by side.
#
#   scripts/profile-round-trip.sh OLD_DAEMON NEW_DAEMON [ROUNDS] [WINDOW]
#
# One session at WINDOW datagrams in flight (default 1: one round trip at a
# time; with more, the figures are per echo), 1200-byte payloads, against the bundled udp-echo
# on loopback (the release build's load generator and echo backend, from
# .build/release). In each round the two daemons run one after the other, the
# order alternating. For each: `perf stat` over 2 s of the load gives the
# daemon's CPU, context switches and data-path system calls per round trip;
# `perf record -g` over 2 s more, split by scripts/perf-by-category.py, gives
# where that CPU goes. OLD_BUSY_POLL / NEW_BUSY_POLL (e.g. 100us) set a
# daemon's `busy_poll`: one binary twice compares the setting. Needs perf
# (Debian: linux-perf) and root. Profiles stay in the work folder it prints.
set -euo pipefail
old=${1:?old daemon binary}; new=${2:?new daemon binary}; rounds=${3:-2}; window=${4:-1}
here=$(cd "$(dirname "$0")/.." && pwd)
bin=$here/.build/release
work=$(mktemp -d /tmp/profile-round-trip.XXXXXX)
free_port() { python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
echo_port=$(free_port); port=$(free_port)
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$work/key.pem" \
  -out "$work/cert.pem" -days 2 -subj /CN=localhost 2>/dev/null
# One configuration per daemon: the same but for its busy_poll.
for which in old new; do
  busy_poll=${which^^}_BUSY_POLL
  cat > "$work/daemon-$which.toml" <<EOT
[daemon]
workers = 2
busy_poll = "${!busy_poll:-0s}"
[[listener]]
name = "profile"
listen = "127.0.0.1:$port"
backend = "127.0.0.1:$echo_port"
certificate = "$work/cert.pem"
private_key = "$work/key.pem"
idle_timeout = "600s"
EOT
done
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
"$bin/udp-echo" --listen "127.0.0.1:$echo_port" --vector-reads 32 > "$work/echo.log" 2>&1 &
pids+=($!)
sleep 0.5
events=task-clock,context-switches
for call in epoll_wait recvmsg recvmmsg sendmsg sendmmsg; do events+=",syscalls:sys_enter_$call"; done
for round in $(seq 1 "$rounds"); do
  order=(old new); [ $((round % 2)) -eq 0 ] && order=(new old)
  for which in "${order[@]}"; do
    binary=$old; [ "$which" = new ] && binary=$new
    "$binary" --config "$work/daemon-$which.toml" > "$work/daemon-$which-$round.log" 2>&1 &
    daemon=$!; pids+=($daemon)
    for _ in $(seq 50); do grep -q "ready:" "$work/daemon-$which-$round.log" && break; sleep 0.1; done
    "$bin/dtls-proxy-bench" load --target "127.0.0.1:$port" --dtls --sessions 1 --window "$window" --seconds 7 \
      > "$work/load-$which-$round.txt" 2>&1 &
    load=$!
    sleep 1.5
    perf stat -x, -e "$events" -p "$daemon" -o "$work/stat-$which-$round.csv" -- sleep 2
    perf record -q -F 2999 -g -o "$work/perf-$which-$round.data" -p "$daemon" -- sleep 2 2>/dev/null
    wait "$load"
    line=$(tail -1 "$work/load-$which-$round.txt")
    rate=$(sed -E 's/.*: ([0-9]+) echoes.*/\1/' <<< "$line")
    echo "== round $round, $which ($binary): $line"
    python3 - "$work/stat-$which-$round.csv" "$rate" <<'PY'
import sys
path, rate = sys.argv[1], float(sys.argv[2])
for line in open(path):
    fields = line.strip().split(",")
    if len(fields) < 3 or not fields[0].replace(".", "").isdigit():
        continue
    value, event = float(fields[0]), fields[2]
    per_trip = value / (rate * 2.0)  # perf stat ran 2 s of the load
    if event == "task-clock":
        print(f"  daemon CPU per round trip: {per_trip * 1000:.2f} µs")
    else:
        print(f"  {event.replace('syscalls:sys_enter_', '')} per round trip: {per_trip:.2f}")
PY
    cpu=$(python3 -c "import sys; [print(round(float(l.split(',')[0]) * 1000 / (float(sys.argv[2]) * 2), 2)) for l in open(sys.argv[1]) if ',task-clock,' in l]" "$work/stat-$which-$round.csv" "$rate")
    python3 "$here/scripts/perf-by-category.py" "$work/perf-$which-$round.data" "$cpu" | sed 's/^/  /'
    kill "$daemon"; wait "$daemon" 2>/dev/null || true
  done
done
echo "profiles and logs in $work"
