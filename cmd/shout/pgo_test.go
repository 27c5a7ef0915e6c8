package main

import (
	"context"
	"io"
	"os"
	"strings"
	"testing"
)

// TestServeForProfile is how internal/tools/measure/pgo.sh profiles shout
// serve for default.pgo, not a check: it serves on $SHOUT_PGO_ADDR as
// `shout serve ADDR --max-conns 0 --max-conns-per-ip 0` does (default
// logging, to stderr) until SIGTERM, and the test binary's
// -test.cpuprofile writes the profile when it returns. A test, because
// only a test binary of this package runs serve's own code with a
// profile on. Skipped without the variable.
func TestServeForProfile(t *testing.T) {
	addr := os.Getenv("SHOUT_PGO_ADDR")
	if addr == "" {
		t.Skip("SHOUT_PGO_ADDR not set: only internal/tools/measure/pgo.sh runs this")
	}
	args := []string{"serve", addr, "--max-conns", "0", "--max-conns-per-ip", "0"}
	if code := run(context.Background(), args, strings.NewReader(""), io.Discard, os.Stderr); code != 0 {
		t.Fatalf("shout %s: exit %d", strings.Join(args, " "), code)
	}
}
