# start.sh, sourced by cpu.sh and syscalls.sh: start_server NAME 'COMMAND
# with {port}' runs the server on CPU 0 on a free loopback port, waits for
# it to listen, kills it when the script exits, and warms it with one
# second of the load (LOAD ARGS in $largs). It sets port, spid and bin.
start_server() {
  bin=${PEERS_BIN:-/tmp/peers-bin}
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  taskset -c 0 bash -c "exec ${2//\{port\}/$port}" >/dev/null 2>"/tmp/measure-$1.log" &
  spid=$!
  trap 'kill $spid 2>/dev/null || true' EXIT
  for _ in $(seq 100); do ss -ltnH "sport = :$port" | grep -q . && break; sleep 0.05; done
  sleep 0.3
  taskset -c 1 "$bin/load" -addr "127.0.0.1:$port" $largs -d 1s -warmup 0s >/dev/null 2>&1
}
