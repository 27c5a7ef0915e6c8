#!/bin/bash
# sample.sh PID ADMIN LABEL OUTCSV [gc DUMPDIR]
# One CSV line for the server process. With "gc": force a GC first through
# /debug/pprof/heap?gc=1 (needs --admin-pprof) and save a goroutine dump.
pid=$1 admin=$2 label=$3 out=$4 gc=$5 dumpdir=$6
exec 9>"$out.lock"; flock 9
[ -d /proc/$pid ] || { echo "$(date +%T),gone,$label" >> "$out"; exit 1; }
if [ "$gc" = gc ]; then
  curl -s -m 10 "http://$admin/debug/pprof/heap?gc=1" -o /dev/null
  sleep 0.3
fi
fds=$(ls /proc/$pid/fd | wc -l)
rss=$(awk '/^VmRSS/{print $2}' /proc/$pid/status)
thr=$(awk '/^Threads/{print $2}' /proc/$pid/status)
m=$(curl -s -m 10 "http://$admin/metrics")
g() { echo "$m" | awk -v k="$1" '$1==k{printf "%.0f", $2; f=1} END{if(!f) printf "NA"}'; }
s() { echo "$m" | awk -v p="$1" 'index($1,p)==1{t+=$2} END{printf "%.0f", t}'; }
hdr="time,label,rss_kb,fds,threads,goroutines,heap_inuse,heap_alloc,heap_objects,open_tcp,open_unix,accepted,closed,rejected,hs_fail,dgram_answered,dgram_dropped,log_dropped,rx_bytes"
[ -s "$out" ] || echo "$hdr" > "$out"
echo "$(date +%T),$label,$rss,$fds,$thr,$(g go_goroutines),$(g go_memstats_heap_inuse_bytes),$(g go_memstats_heap_alloc_bytes),$(g go_memstats_heap_objects),$(g 'shout_connections_open{transport="tcp"}'),$(g 'shout_connections_open{transport="unix"}'),$(s shout_connections_accepted_total),$(s shout_connections_closed_total),$(s shout_connections_rejected_total),$(s shout_handshake_failures_total),$(g shout_datagrams_answered_total),$(s shout_datagrams_dropped_total),$(g shout_log_records_dropped_total),$(s shout_received_bytes_total)" >> "$out"
if [ "$gc" = gc ] && [ -n "$dumpdir" ]; then
  curl -s -m 10 "http://$admin/debug/pprof/goroutine?debug=1" -o "$dumpdir/goroutines-$label.txt"
fi
if [ "$gc" = gc ] && [ -n "$dumpdir" ]; then
  curl -s -m 10 "http://$admin/debug/pprof/heap" -o "$dumpdir/heap-$label.pb.gz"
fi
