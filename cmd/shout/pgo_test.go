package main

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
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

// pgo.sh without the load client it drives the server with stops before
// it builds or serves anything, and says why: it wrote a profile of an
// idle server, which looks like any other, and exited 0.
func TestPGOScriptWantsLoadClient(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("pgo.sh runs on Linux (taskset, ss)")
	}
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	out := filepath.Join(t.TempDir(), "shout.pgo")
	cmd := exec.CommandContext(ctx, bash, filepath.Join("internal", "tools", "measure", "pgo.sh"), "1", out)
	cmd.Dir = filepath.Join("..", "..") // the checkout's root, as pgo.sh asks
	cmd.Env = append(os.Environ(), "PEERS_BIN="+t.TempDir())
	said, err := cmd.CombinedOutput()
	if err == nil {
		t.Errorf("pgo.sh with no load client succeeded:\n%s", said)
	}
	if !strings.Contains(string(said), "no load client") {
		t.Errorf("pgo.sh with no load client said:\n%s", said)
	}
	if _, err := os.Stat(out); err == nil {
		t.Errorf("pgo.sh with no load client wrote a profile")
	}
}
