#!/bin/bash
# driver.sh ENGINE BASEPORT SOAK_SECONDS (run.sh runs it for both engines)
# Starts one shout serve (ENGINE: loop -> --engine auto, since tls:// cannot be
# served by the loops; goroutine -> --engine goroutine), samples it every 30 s,
# and runs rounds of mixed load + hostile clients + idle until SOAK_SECONDS.
set -u
eng=$1 base=$2 soak=$3
S=$(cd "$(dirname "$0")" && pwd)
OUT=${SOAK_OUT:-/tmp/soak}; SHOUT=${SHOUT:-$OUT/shout}
D=$OUT/$eng; mkdir -p $D/bench $D/hostile $D/dumps
TCP=$base UDP=$base TLS=$((base+443)) ADM=127.0.0.1:$((base+10))
SOCK=$D/s.sock
case $eng in loop) ef=auto;; goroutine) ef=goroutine;; esac
log() { echo "$(date +%T) $*" | tee -a $D/driver.log; }
setphase() { echo "$1" > $D/phase; log "phase $1"; }

setphase start
timeout -s TERM -k 20 $((soak+300)) $SHOUT serve --engine $ef \
  tcp://127.0.0.1:$TCP udp://127.0.0.1:$UDP tls://127.0.0.1:$TLS unix://$SOCK \
  --tls-self-signed --admin $ADM --admin-pprof 2> $D/server.log &
tpid=$!
sleep 1
spid=$(pgrep -P $tpid -x shout)
log "server timeout-pid=$tpid shout-pid=$spid engine=$ef"
echo $spid > $D/server.pid
for i in $(seq 50); do curl -s -m1 http://$ADM/readyz >/dev/null && break; sleep 0.2; done

# 30-second monitor
( while kill -0 $spid 2>/dev/null; do $S/sample.sh $spid $ADM "$(cat $D/phase)" $D/samples.csv; sleep 30; done ) &
mpid=$!

idle_sample() { $S/sample.sh $spid $ADM "$1" $D/idle.csv gc $D/dumps; log "idle sample $1: $(tail -1 $D/idle.csv)"; }

sleep 5; idle_sample r0-start

B="$SHOUT bench --json"
bench() { # name args...
  local name=$1; shift
  setphase "r$r-$name"
  timeout -s INT -k 10 120 $B "$@" > $D/bench/r$r-$name.out 2> $D/bench/r$r-$name.err
  local rc=$?
  log "bench r$r-$name rc=$rc $(grep -h 'every reply checked\|not all right' $D/bench/r$r-$name.out | head -1)"
}

ipid=; t0=$(date +%s); r=0; idles=(10 20 30)
while [ $(( $(date +%s) - t0 )) -lt $((soak-150)) ]; do
  r=$((r+1))
  timeout -k 5 90 python3 $S/hostile.py mix 127.0.0.1 $TCP $TLS $UDP > $D/hostile/r$r-mix.json 2>&1 &
  hpid=$!
  if [ $r = 1 ] && [ -z "${NOIDLERS:-}" ]; then  # silent conns, left to the idle timeout (5m): they outlive this round
    timeout -k 5 460 python3 $S/hostile.py idlers 127.0.0.1 $TCP 20 440 > $D/hostile/r$r-idlers.json 2>&1 &
    ipid=$!
    log "idlers started (20 silent conns, expect closed by idle timeout 5m-6m15s)"
  fi
  bench tcp-d32   127.0.0.1:$TCP --conns 50 --depth 32 --duration 20s
  bench churn     127.0.0.1:$TCP --churn --duration 20s
  bench udp       udp://127.0.0.1:$UDP --conns 16 --depth 8 --duration 20s
  bench tls-churn tls://127.0.0.1:$TLS --insecure --churn --conns 16 --duration 10s
  bench rate      127.0.0.1:$TCP --rate 20000 --duration 10s
  bench unix      unix://$SOCK --conns 20 --depth 8 --duration 5s
  bench tls-d4    tls://127.0.0.1:$TLS --insecure --conns 20 --depth 4 --duration 5s
  setphase "r$r-wait-hostile"
  wait $hpid; log "hostile mix r$r rc=$? $(cat $D/hostile/r$r-mix.json | tail -1)"
  if [ $((r % 3)) = 2 ]; then   # defaults: per-address limit 1000
    setphase "r$r-limit-per-ip"
    timeout -k 5 60 python3 $S/hostile.py limits 127.0.0.1 $TCP 1200 1 1 > $D/hostile/r$r-limits-ip.json 2>&1
    log "limits per-ip r$r $(tail -1 $D/hostile/r$r-limits-ip.json)"
  elif [ $((r % 3)) = 0 ]; then # defaults: max-conns 10000 (10300 over 127.0.0.101-111: <1000 each)
    setphase "r$r-limit-max-conns"
    timeout -k 5 90 python3 $S/hostile.py limits 127.0.0.1 $TCP 10300 11 101 > $D/hostile/r$r-limits-max.json 2>&1
    log "limits max-conns r$r $(tail -1 $D/hostile/r$r-limits-max.json)"
  fi
  it=${idles[$(( (r-1) % 3 ))]}
  setphase "r$r-idle${it}s"
  sleep $it
  idle_sample "r$r-idle"
done
setphase final-idle
sleep 30
idle_sample final
# wait for the idlers if still running (bounded by their own timeout)
[ -n "$ipid" ] && { wait $ipid; log "idlers: $(tail -1 $D/hostile/r1-idlers.json)"; }
setphase stop
log "SIGTERM to shout $spid"
kill -TERM $spid
wait $tpid; log "server exit status $?"
kill $mpid 2>/dev/null
log done
