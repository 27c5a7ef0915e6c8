package shouttest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// Chromium returns the path of Debian's chromium, installing it with
// apt-get (as CI, a fresh Debian machine running as root, can) when it is
// missing. When it cannot be had the test is skipped with a message that
// names chromium.
func Chromium(t testing.TB) string {
	t.Helper()
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	// Test binaries of several packages run at once: one installs, the
	// others wait for it, then find it.
	unlock, err := lockFile(filepath.Join(os.TempDir(), "shouttest-chromium.lock"))
	if err != nil {
		t.Skipf("SKIP: chromium is not installed, and installing it needs a lock: %v", err)
	}
	defer unlock()
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	if _, err := exec.LookPath("apt-get"); err != nil {
		t.Skip("SKIP: chromium is not installed and there is no apt-get to install it with")
	}
	t.Log("installing chromium with apt-get")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	for _, args := range [][]string{{"update", "-qq"}, {"install", "-y", "-qq", "chromium"}} {
		cmd := exec.CommandContext(ctx, "apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Skipf("SKIP: chromium is not installed and apt-get %s failed: %v\n%s", args[0], err, tail(out))
		}
	}
	p, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("SKIP: apt-get installed chromium, but it is not on $PATH")
	}
	return p
}

// Headless runs chromium without a screen on a fresh profile with the
// arguments given (--dump-dom, --screenshot=FILE, and the page's URL),
// for at most a minute, and returns its standard output.
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
