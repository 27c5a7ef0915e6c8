#!/bin/bash
# The soak of BENCHMARKS.md ("A soak of both engines"): shout serve on TCP,
# UDP, TLS and Unix with its default limits, 20 minutes an engine, under
# rounds of shout bench runs, hostile clients (hostile.py) and idle
# spells, sampled every 30 s and at each idle point (samples.csv,
# idle.csv). Loopback only. Results go to $SOAK_OUT (default /tmp/soak),
# about 0.5 GB of server log an engine.
#
#   internal/tools/soak/run.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export SOAK_OUT=${SOAK_OUT:-/tmp/soak}
mkdir -p "$SOAK_OUT"
(cd "$here/../../.." && go build -o "$SOAK_OUT/shout" ./cmd/shout)
"$here/driver.sh" loop 21000 1200
"$here/driver.sh" goroutine 22000 1200
