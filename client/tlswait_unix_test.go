//go:build unix

package client_test

import (
	"context"
	"errors"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"shout/client"
	"shout/internal/certs"
	"shout/internal/shouttest"
)

// ConfigContext's ctx ends a wait to read CA (a named pipe nobody writes
// to yet), and its notice says the wait, naming the setting and the
// file. Nothing tested the end: a read given a ctx that never ends
// (context.WithoutCancel) waited its 10 s and failed no test.
func TestConfigContextEndsTheCAWait(t *testing.T) {
	if runtime.GOOS == "darwin" {
		t.Skip("macOS: Go's poller cannot wait on a pipe, and a named pipe with no writer is an error at once: no wait to end")
	}
	pipe := filepath.Join(t.TempDir(), "ca.pem")
	shouttest.NamedPipe(t, pipe)
	waiting := make(chan string, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ctx = certs.WithWaitNotice(ctx, 0, func(msg string, _ time.Duration) { waiting <- msg })
	done := make(chan error, 1)
	go func() {
		_, err := client.TLSOptions{CA: pipe}.ConfigContext(ctx)
		done <- err
	}()
	select {
	case msg := <-waiting:
		if want := "waiting for TLSOptions.CA " + pipe + ": "; !strings.HasPrefix(msg, want) {
			t.Errorf("notice %q; want it to begin %q", msg, want)
		}
	case err := <-done:
		t.Fatalf("ConfigContext returned %v before it waited", err)
	case <-time.After(bound):
		t.Fatalf("no notice of the wait within %v", bound)
	}
	cancel()
	var err error
	select {
	case err = <-done:
	case <-time.After(2 * bound): // the read gives up after 10 s
		t.Fatalf("ConfigContext still waiting %v after ctx ended", 2*bound)
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("ConfigContext: %v; want the wait ended by ctx (context.Canceled)", err)
	}
}
