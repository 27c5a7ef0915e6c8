package shouttest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// Headless runs chromium (from Tool(t, "chromium", "chromium")) without a
// screen, on a fresh profile, with the arguments given (--dump-dom,
// --screenshot=FILE, and the page's URL), for at most a minute, and
// returns its standard output.
func Headless(t testing.TB, chromium string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	profile, err := os.MkdirTemp("", "shouttest-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	// Not t.TempDir: chromium's helpers can still be writing there when
	// it exits, and a cleanup that fails would fail the test.
	defer os.RemoveAll(profile)
	cmd := exec.CommandContext(ctx, chromium, append([]string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--no-first-run", "--disable-extensions", "--disable-background-networking",
		"--disable-sync", "--hide-scrollbars", "--force-device-scale-factor=1",
		"--user-data-dir=" + profile,
	}, args...)...)
	// Files, not pipes: chromium's helper processes inherit its output and
	// can keep a pipe open for seconds after chromium itself has exited.
	stdout, err := os.Create(filepath.Join(profile, "stdout"))
	if err != nil {
		t.Fatal(err)
	}
	defer stdout.Close()
	stderr, err := os.Create(filepath.Join(profile, "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer stderr.Close()
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Run(); err != nil {
		errOut, _ := os.ReadFile(stderr.Name())
		t.Fatalf("chromium %v: %v\n%s", args, err, tail(errOut))
	}
	out, err := os.ReadFile(stdout.Name())
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// tail is the end of a command's output, enough to say what went wrong.
func tail(out []byte) []byte {
	if len(out) > 2000 {
		return out[len(out)-2000:]
	}
	return out
}
