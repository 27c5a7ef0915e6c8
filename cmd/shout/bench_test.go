package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"strings"
	"testing"

	"shout/internal/shouttest"
)

// TestBenchSilentServerFails: against a server that never answers, a run
// shorter than --timeout exits 1 and its last line says why.
func TestBenchSilentServerFails(t *testing.T) {
	addr := shouttest.StreamServer(t, func(c net.Conn) { io.Copy(io.Discard, c) })
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"bench", addr, "--conns", "2", "--duration", "100ms",
		"--warmup", "0", "--timeout", "300ms"}, strings.NewReader(""), &stdout, &stderr)
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if last := lines[len(lines)-1]; code != 1 || last != "  not all right: no reply came back, 2 lost" {
		t.Errorf("status %d, last line %q; want 1, %q\nstdout:\n%s\nstderr:\n%s",
			code, last, "  not all right: no reply came back, 2 lost", stdout.String(), stderr.String())
	}
}
