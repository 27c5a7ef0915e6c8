#!/usr/bin/env bash
# cpu.sh NAME 'SERVER COMMAND with {port}' 'LOAD ARGS' [DURATION]
#
# Runs one server on CPU 0 and the peers' load client on CPU 1 (one
# unmeasured second, then DURATION, 3s by default), and prints the
# messages (connections, for -churn) the load counted, the server's user
# and system CPU ticks over the measured part (utime and stime, 1/100 s),
# its efficiency (messages per CPU-second) and its context switches.
# Build the load client first: ../shared/peers/rounds.py does, into
# $PEERS_BIN (default /tmp/peers-bin). Traffic stays on 127.0.0.1.
#
#   internal/tools/measure/cpu.sh shout '/tmp/shout serve 127.0.0.1:{port}' '-churn -c 8 -size 64'
set -euo pipefail
name=$1 cmd=$2 largs=$3 dur=${4:-3s}
bin=${PEERS_BIN:-/tmp/peers-bin}
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
taskset -c 0 bash -c "exec ${cmd//\{port\}/$port}" >/dev/null 2>"/tmp/measure-$name.log" &
spid=$!
trap 'kill $spid 2>/dev/null || true' EXIT
for _ in $(seq 100); do ss -ltnH "sport = :$port" | grep -q . && break; sleep 0.05; done
sleep 0.3
ctxsw() { awk '/ctxt/ {s += $2} END {print s}' /proc/"$spid"/task/*/status; }
taskset -c 1 "$bin/load" -addr "127.0.0.1:$port" $largs -d 1s -warmup 0s >/dev/null 2>&1
read -r u1 s1 < <(awk '{print $14, $15}' /proc/$spid/stat)
c1=$(ctxsw)
out=$(taskset -c 1 "$bin/load" -addr "127.0.0.1:$port" $largs -d "$dur" -warmup 0s 2>&1 | grep -o '"msgs":[0-9]*')
read -r u2 s2 < <(awk '{print $14, $15}' /proc/$spid/stat)
c2=$(ctxsw)
m=${out#*:}
echo "$name msgs=$m user=$((u2 - u1)) sys=$((s2 - s1)) eff=$((m * 100 / (u2 - u1 + s2 - s1 + 1))) ctxsw=$((c2 - c1))"
