package certs_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"shout/internal/certs"
)

// leased writes data to a file and takes a write lease on it, as a file
// server that shares it does (Samba's oplocks, the NFS server's
// delegations), skipping where the system grants none. It returns the
// file that holds the lease, which the test's end lets go of.
func leased(t *testing.T, data []byte) (path string, holder *os.File) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "cert.pem")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	holder, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := unix.FcntlInt(holder.Fd(), unix.F_SETLEASE, unix.F_WRLCK); err != nil {
		holder.Close()
		t.Skip("no file leases here:", err)
	}
	t.Cleanup(func() { holder.Close() }) // (closing lets go)
	return path, holder
}

// A file whose lease holder lets go when told, as Samba does once its
// client has given up its oplock, is read: opened without waiting (for a
// named pipe's sake) it failed at once, "resource temporarily
// unavailable", where cat waits.
func TestReadPEMLeasedFile(t *testing.T) {
	certPEM, _ := pair(t)
	told := make(chan os.Signal, 1)
	signal.Notify(told, syscall.SIGIO) // how the kernel tells the holder
	defer signal.Stop(told)
	path, holder := leased(t, certPEM)
	letGo, read := make(chan error, 1), make(chan struct{})
	go func() {
		select {
		case <-told:
			_, err := unix.FcntlInt(holder.Fd(), unix.F_SETLEASE, unix.F_UNLCK)
			letGo <- err
		case <-read:
			letGo <- nil
		}
	}()
	b, err := readPEM(t, path, func() {})
	close(read)
	if err := <-letGo; err != nil {
		t.Fatal("letting go of the lease:", err)
	}
	if err != nil || !bytes.Equal(b, certPEM) {
		t.Errorf("got %d bytes, %v; want the certificate's %d", len(b), err, len(certPEM))
	}
}

// A file whose lease holder never lets go ends ReadPEM after pemWait,
// saying why.
func TestReadPEMLeasedFileHeld(t *testing.T) {
	defer certs.SetPEMWait(100 * time.Millisecond)()
	certPEM, _ := pair(t)
	path, _ := leased(t, certPEM)
	_, err := readPEM(t, path, func() {})
	if want := "--cert " + path + ": another program holds a lease on it"; err == nil || !strings.HasPrefix(err.Error(), want) || !errors.Is(err, certs.ErrNotReady) {
		t.Errorf("got %v, want ErrNotReady beginning %q", err, want)
	}
}

// The wait for a lease's holder ends when ReadPEMContext's context
// does, saying so. The kernel tells the holder (SIGIO) once ReadPEM's
// open has broken the lease: it waits then. pemWait is made longer than
// bound: the wait given up after it read as the context's end too, and
// a wait that ignored the context passed.
func TestReadPEMContextEndsLeaseWait(t *testing.T) {
	defer certs.SetPEMWait(4 * bound)()
	certPEM, _ := pair(t)
	told := make(chan os.Signal, 1)
	signal.Notify(told, syscall.SIGIO)
	defer signal.Stop(told)
	path, holder := leased(t, certPEM)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-told
		cancel()
	}()
	// Letting go ends the wait (a test that failed).
	_, err := readPEMContext(t, ctx, path, func() { holder.Close() })
	if want := "--cert " + path + ": another program holds a lease on it and has not let go yet"; err == nil || err.Error() != want || !errors.Is(err, context.Canceled) || errors.Is(err, certs.ErrNotReady) {
		t.Errorf("got %v, want context.Canceled saying %q", err, want)
	}
}

// A wait for a lease's holder is said once, naming the lease: a start
// waiting so was silent for its 10 s. The holder lets go once told.
func TestReadPEMLeaseWaitNotice(t *testing.T) {
	certPEM, _ := pair(t)
	path, holder := leased(t, certPEM)
	said := make(chan string, 4)
	ctx := certs.WithWaitNotice(context.Background(), 0, func(msg string, _ time.Duration) { said <- msg })
	first := make(chan string, 1)
	go func() {
		s := nextNotice(said)
		unix.FcntlInt(holder.Fd(), unix.F_SETLEASE, unix.F_UNLCK)
		first <- s // (after: the test's end closes holder)
	}()
	b, err := readPEMContext(t, ctx, path, func() { holder.Close() })
	if err != nil || !bytes.Equal(b, certPEM) {
		t.Errorf("got %d bytes, %v; want the certificate's %d", len(b), err, len(certPEM))
	}
	if s, want := <-first, "waiting for --cert "+path+": another program holds a lease on it"; s != want {
		t.Errorf("said %q, want %q", s, want)
	}
}
