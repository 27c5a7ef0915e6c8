#!/usr/bin/env bash
# pgo.sh [SECONDS] [OUT] writes a CPU profile of shout serve for Go's
# profile-guided optimisation to OUT (/tmp/shout.pgo by default), for
# go build -pgo=OUT. Tried in stop 42 and not kept (BENCHMARKS.md,
# "Profile-guided optimisation, tried"); kept, it would be
# cmd/shout/default.pgo, which every go build and go install of shout
# uses (-pgo=auto), the container image's build too.
#
# It runs shout serve (default logging, no connection limits) on CPU 0 in
# cmd/shout's test binary (TestServeForProfile: the one way to run serve's
# own code with a CPU profile on), built without a profile, and drives it
# with the peers' load client on CPU 1 through the workloads of issue 12's
# targets, SECONDS each (15 by default): TCP 64 B at 1 and 32 in flight,
# UDP 64 B, and connection churn. Traffic stays on 127.0.0.1. Build the
# load client first: ../shared/peers/rounds.py does, into $PEERS_BIN
# (default /tmp/peers-bin). Run it from the checkout's root.
set -euo pipefail
secs=${1:-15} out=${2:-/tmp/shout.pgo}
bin=${PEERS_BIN:-/tmp/peers-bin}
# Without the load client every workload fails (taskset says so), and
# what is left is a profile of an idle server that looks like any other.
if [[ ! -x $bin/load ]]; then
  echo "pgo.sh: no load client at $bin/load: build it with ../shared/peers/rounds.py, or set PEERS_BIN" >&2
  exit 1
fi
tmp=$(mktemp -d)
trap 'kill ${spid:-} 2>/dev/null || true; rm -rf "$tmp"' EXIT
go test -c -pgo=off -o "$tmp/shout.test" ./cmd/shout
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
SHOUT_PGO_ADDR=127.0.0.1:$port taskset -c 0 "$tmp/shout.test" -test.run '^TestServeForProfile$' \
  -test.cpuprofile "$tmp/cpu.pprof" -test.count 1 >/dev/null 2>"$tmp/serve.log" &
spid=$!
for _ in $(seq 100); do ss -ltnH "sport = :$port" | grep -q . && break; sleep 0.05; done
for w in "-proto tcp -c 50 -size 64 -depth 1" "-proto tcp -c 50 -size 64 -depth 32" \
  "-proto udp -c 16 -size 64 -depth 8" "-churn -c 8 -size 64"; do
  taskset -c 1 "$bin/load" -addr "127.0.0.1:$port" $w -d "${secs}s" -warmup 1s | grep -o '"msgs_per_s":[0-9.]*' || true
done
kill -TERM $spid
wait $spid || { tail "$tmp/serve.log"; exit 1; }
# Compacted by pprof: the same samples, gzipped, without what a profile
# made by the runtime repeats.
go tool pprof -proto "$tmp/cpu.pprof" >"$out" 2>/dev/null
ls -l "$out"
