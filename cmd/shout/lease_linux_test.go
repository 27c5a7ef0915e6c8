package main

import (
	"errors"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// leased copies the file from to a test's folder and takes a write lease
// on the copy, as a Samba or NFS server does on a file it shares,
// skipping where the system grants none. Nothing lets go of it before the
// test ends.
func leased(t *testing.T, from string) string {
	t.Helper()
	path := copied(t, from)
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

// Ctrl-C while shout serve waits for another program to let go of its
// lease on --cert stops it then, saying so: it waited 10 s, then exited
// 2 as if Ctrl-C had never come. The kernel tells the holder (this test)
// with SIGIO once shout's open has broken the lease: shout waits then.
// (Not parallel: another test's lease would send SIGIO too.)
func TestServeSignalWhileWaitingForLease(t *testing.T) {
	p := newPKI(t)
	told := make(chan os.Signal, 1)
	signal.Notify(told, syscall.SIGIO)
	defer signal.Stop(told)
	cert := leased(t, p.serverCert)
	ready := make(chan struct{})
	go func() {
		<-told
		close(ready)
	}()
	code, out := serveExit(t, ready, syscall.SIGINT, "tls://127.0.0.1:0", "--cert", cert, "--key", p.serverKey)
	want := "shout: interrupt: stopped while starting: --cert " + cert + ": another program holds a lease on it and has not let go yet\n"
	if code != 130 || !strings.HasSuffix(out, want) {
		t.Errorf("status %d, output:\n%s\nwant status 130 and the last line %q", code, out, want)
	}
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
