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
source "$(dirname "$0")/start.sh"
start_server "$name" "$cmd"
ctxsw() { awk '/ctxt/ {s += $2} END {print s}' /proc/"$spid"/task/*/status; }
read -r u1 s1 < <(awk '{print $14, $15}' /proc/$spid/stat)
c1=$(ctxsw)
out=$(taskset -c 1 "$bin/load" -addr "127.0.0.1:$port" $largs -d "$dur" -warmup 0s 2>&1 | grep -o '"msgs":[0-9]*')
read -r u2 s2 < <(awk '{print $14, $15}' /proc/$spid/stat)
c2=$(ctxsw)
m=${out#*:}
echo "$name msgs=$m user=$((u2 - u1)) sys=$((s2 - s1)) eff=$((m * 100 / (u2 - u1 + s2 - s1 + 1))) ctxsw=$((c2 - c1))"
