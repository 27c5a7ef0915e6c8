package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// leased copies the file from to a test's folder and takes a write lease
// on the copy, as a Samba or NFS server does on a file it shares,
// skipping where the system grants none. Nothing lets go of it before the
// test ends.
func leased(t *testing.T, from string) string {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), filepath.Base(from))
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	holder, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { holder.Close() }) // (closing lets go)
	if _, err := unix.FcntlInt(holder.Fd(), unix.F_SETLEASE, unix.F_WRLCK); err != nil {
		t.Skip("no file leases here:", err)
	}
	return path
}

// A PEM file whose lease another program keeps is a failure, status 1,
// not a usage error (2): the file is right, and may be let go of.
// (It waits 10 s.)
func TestServeLeasedPEMIsNoUsageError(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	key := leased(t, p.serverKey)
	out, err := exec.Command("shout", "serve", "tls://127.0.0.1:0", "--cert", p.serverCert, "--key", key).CombinedOutput()
	var ee *exec.ExitError
	want := "shout: --key " + key + ": another program holds a lease on it"
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(string(out), want) {
		t.Errorf("%v, output:\n%s\nwant status 1 and %q", err, out, want)
	}
}
