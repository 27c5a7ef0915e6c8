#!/usr/bin/env bash
# syscalls.sh NAME 'SERVER COMMAND with {port}' 'LOAD ARGS'
#
# Counts the system calls a server makes, by kind, over 3 s of the peers'
# load (perf stat on its tracepoints; needs perf, from Debian's
# linux-perf), with the server on CPU 0 and the load on CPU 1, and prints
# the load's result line, the server's CPU ticks and the counts.
#
#   internal/tools/measure/syscalls.sh shout '/tmp/shout serve 127.0.0.1:{port}' '-proto tcp -c 50 -size 64 -depth 32'
set -euo pipefail
name=$1 cmd=$2 largs=$3
source "$(dirname "$0")/start.sh"
start_server "$name" "$cmd"
ev=raw_syscalls:sys_enter
for s in epoll_wait epoll_pwait epoll_pwait2 read write futex nanosleep accept4 close setsockopt epoll_ctl \
  recvmmsg sendmmsg recvfrom sendto getsockname ioctl sched_yield tgkill madvise mmap; do
  ev+=",syscalls:sys_enter_$s"
done
perf stat -x, -e "$ev" -p $spid -o "/tmp/measure-$name.perf" -- sleep 3 &
ppid=$!
a=$(awk '{print $14 + $15}' /proc/$spid/stat)
out=$(taskset -c 1 "$bin/load" -addr "127.0.0.1:$port" $largs -d 3s -warmup 0s 2>&1)
out=${out%%$'\n'*} # the human line, not the JSON
b=$(awk '{print $14 + $15}' /proc/$spid/stat)
wait $ppid
echo "== $name: $out cpu_ticks=$((b - a))"
grep -v '^#' "/tmp/measure-$name.perf" | awk -F, '$1 > 0 {printf "  %s=%s", $3, $1} END {print ""}' | sed 's/syscalls:sys_enter_//g'
