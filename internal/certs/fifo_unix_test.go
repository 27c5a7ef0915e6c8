//go:build unix

package certs_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"shout/internal/certs"
	"shout/internal/shouttest"
)

// bound is how long a test waits for ReadPEM before calling it stuck.
const bound = 10 * time.Second

// readPEM runs certs.ReadPEM on path, failing the test if it is still
// blocked after bound; unblock is called then (and at the end), to let it
// return.
func readPEM(t *testing.T, path string, unblock func()) ([]byte, error) {
	t.Helper()
	return readPEMContext(t, nil, path, unblock)
}

// readPEMContext is readPEM with certs.ReadPEMContext and ctx (nil:
// certs.ReadPEM).
func readPEMContext(t *testing.T, ctx context.Context, path string, unblock func()) ([]byte, error) {
	t.Helper()
	type result struct {
		b   []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		var b []byte
		var err error
		if ctx == nil {
			b, err = certs.ReadPEM("--cert", path)
		} else {
			b, err = certs.ReadPEMContext(ctx, "--cert", path)
		}
		done <- result{b, err}
	}()
	select {
	case r := <-done:
		return r.b, r.err
	case <-time.After(bound):
		unblock()
		<-done
		t.Fatalf("ReadPEM(%s) still blocked after %v", path, bound)
		return nil, nil
	}
}

// fifo makes a named pipe in a test's folder.
func fifo(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "cert.pem")
	shouttest.NamedPipe(t, p)
	return p
}

// writeEnd opens p for writing, as the writer of --cert <(cmd) has it
// open before shout reads: through a read end of its own that opens
// without waiting and reads nothing (closed at the end; with no reader
// at all a write would fail).
func writeEnd(t *testing.T, p string) *os.File {
	t.Helper()
	r, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	w, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

// feed opens the named pipe p to write, if it has a reader, and writes a
// byte before closing it: whatever ReadPEM waits for (an open, a writer,
// a byte, the end), that lets it return.
func feed(p string) {
	if w, err := os.OpenFile(p, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
		w.Write([]byte{'\n'})
		w.Close()
	}
}

// A named pipe that nobody writes to ends ReadPEM with a clear error
// after pemWait: --cert FIFO (or /dev/stdin on one) waited for a writer
// for ever, at start and on each SIGHUP.
func TestReadPEMFIFONoWriter(t *testing.T) {
	if runtime.GOOS == "darwin" || runtime.GOOS == "ios" {
		t.Skip("Go's poller cannot wait on a pipe here: no writer is an error at once")
	}
	defer certs.SetPEMWait(100 * time.Millisecond)()
	p := fifo(t)
	_, err := readPEM(t, p, func() { feed(p) })
	if err == nil || !strings.Contains(err.Error(), "--cert "+p+": nothing written to it within 100ms") || !strings.Contains(err.Error(), "nobody writing to it") || !errors.Is(err, certs.ErrNotReady) {
		t.Fatalf("got %v, want ErrNotReady saying nothing was written within 100ms, nobody writing to it", err)
	}
}

// A named pipe whose writer comes after shout has opened it (a FIFO fed
// by a program started with shout) is waited for, and read.
func TestReadPEMFIFOLateWriter(t *testing.T) {
	p := fifo(t)
	want := []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
	go func() {
		// Opening to write returns once ReadPEM has opened to read.
		w, err := os.OpenFile(p, os.O_WRONLY, 0)
		if err != nil {
			t.Error(err)
			return
		}
		w.Write(want)
		w.Close()
	}()
	got, err := readPEM(t, p, func() {
		if r, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NONBLOCK, 0); err == nil {
			r.Close() // lets the writer's open return
		}
	})
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("got %q, %v; want %q", got, err, want)
	}
}

// A pipe whose writer keeps it open and writes nothing ends ReadPEM
// after pemWait, saying so (where the poller can wait on a pipe), rather than holding the start (or the
// reload) for as long as the writer lives.
func TestReadPEMFIFOSilentWriter(t *testing.T) {
	if runtime.GOOS == "darwin" || runtime.GOOS == "ios" {
		t.Skip("Go's poller cannot wait on a pipe here: ReadPEM waits for its writer")
	}
	defer certs.SetPEMWait(100 * time.Millisecond)()
	p := fifo(t)
	w := writeEnd(t, p)
	if _, err := w.Write([]byte("-----BEGIN CERTIFICATE-----\n")); err != nil {
		t.Fatal(err)
	}
	_, err := readPEM(t, p, func() { w.Close() })
	if err == nil || !strings.Contains(err.Error(), "--cert "+p+": ") || !strings.Contains(err.Error(), "not written and closed within 100ms") || !errors.Is(err, certs.ErrNotReady) {
		t.Fatalf("got %v, want ErrNotReady saying nothing ended the pipe within 100ms", err)
	}
}

// A pipe with a writer is read to its end, as --cert <(cmd) gives it,
// however its writes are split: a named pipe, and /dev/fd/N of an
// anonymous one (bash's <(cmd) itself).
func TestReadPEMPipeWithWriter(t *testing.T) {
	want := bytes.Repeat([]byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"), 2000) // past a pipe's 64 KiB
	for _, tc := range []struct {
		name string
		open func(t *testing.T) (path string, w *os.File)
	}{
		{"named pipe", func(t *testing.T) (string, *os.File) {
			p := fifo(t)
			return p, writeEnd(t, p)
		}},
		{"process substitution", func(t *testing.T) (string, *os.File) {
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { r.Close(); w.Close() })
			p := fmt.Sprintf("/dev/fd/%d", r.Fd())
			if _, err := os.Stat(p); err != nil {
				t.Skip("no /dev/fd here:", err)
			}
			return p, w
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, w := tc.open(t)
			if _, err := w.Write(want[:100]); err != nil {
				t.Fatal(err)
			}
			go func() {
				w.Write(want[100:]) // as ReadPEM reads it
				w.Close()
			}()
			got, err := readPEM(t, p, func() { w.Close() })
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("got %d bytes, %v; want the %d written", len(got), err, len(want))
			}
		})
	}
}

// A SIGHUP's reload of a certificate file that has become a named pipe
// with no writer keeps the certificate in use and says why, after
// pemWait, rather than blocking the reloads for good.
func TestReloadFIFONoWriter(t *testing.T) {
	defer certs.SetPEMWait(100 * time.Millisecond)()
	certPEM, keyPEM := pair(t)
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(cert, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := certs.Load(context.Background(), cert, key)
	if err != nil {
		t.Fatal(err)
	}
	before := s.Fingerprint()
	if err := os.Remove(cert); err != nil {
		t.Fatal(err)
	}
	shouttest.NamedPipe(t, cert)
	done := make(chan error, 1)
	go func() { done <- s.Reload(context.Background()) }()
	select {
	case err = <-done:
	case <-time.After(bound):
		feed(cert)
		<-done
		t.Fatalf("Reload still blocked on a named pipe after %v", bound)
	}
	if err == nil || !strings.Contains(err.Error(), "nobody writing to it") || s.Fingerprint() != before {
		t.Fatalf("Reload: %v, and the certificate changed: %v; want an error saying nobody writes to it, and the same certificate", err, s.Fingerprint() != before)
	}
}

// A pipe whose writer closed it having written nothing is an error at
// once, saying so: --cert <(cmd) whose cmd failed, an empty pipe on
// stdin, a named pipe whose writer came and went, and a SIGHUP's reload
// of a <(cmd) already read all waited pemWait (10 s) for a writer that
// could not come, then blamed "a pipe with nobody writing to it".
func TestReadPEMPipeWriterWroteNothing(t *testing.T) {
	defer certs.SetPEMWait(bound / 2)()
	for _, tc := range []struct {
		name string
		path func(t *testing.T) string // a pipe whose writer, if any, will close it unwritten
	}{
		{"process substitution", func(t *testing.T) string {
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { r.Close() })
			w.Close()
			p := fmt.Sprintf("/dev/fd/%d", r.Fd())
			if _, err := os.Stat(p); err != nil {
				t.Skip("no /dev/fd here:", err)
			}
			return p
		}},
		{"named pipe, its writer after the open", func(t *testing.T) string {
			p := fifo(t)
			go func() {
				// Opening to write returns once ReadPEM has opened to read.
				if w, err := os.OpenFile(p, os.O_WRONLY, 0); err == nil {
					w.Close()
				}
			}()
			return p
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.path(t)
			_, err := readPEM(t, p, func() { feed(p) })
			if err == nil || !strings.Contains(err.Error(), "--cert "+p+": an empty pipe") {
				t.Fatalf("got %v; want it to say at once that the pipe is empty", err)
			}
		})
	}
}

// A pipe is read no further than MaxPEM, however much its writer has to
// write, and without waiting for the writer to finish. (pemWait is made
// long, and the test's own wait longer: 8 MiB through a pipe, 64 KiB at
// a time, took more than 5 s on a loaded CI machine. A read that waited
// for the writer, who never finishes, fails once pemWait has passed.)
func TestReadPEMPipeLargerThanMaxPEM(t *testing.T) {
	defer certs.SetPEMWait(time.Minute)()
	p := fifo(t)
	w := writeEnd(t, p)
	t.Cleanup(func() { w.Close() })
	go w.Write(make([]byte, certs.MaxPEM+64<<10)) // (a write left blocked ends with w's close)
	done := make(chan error, 1)
	go func() {
		_, err := certs.ReadPEM("--cert", p)
		done <- err
	}()
	var err error
	select {
	case err = <-done:
	case <-time.After(2 * time.Minute):
		w.Close()
		<-done
		t.Fatalf("ReadPEM(%s) still blocked after 2m", p)
	}
	if err == nil || !strings.Contains(err.Error(), "--cert "+p+": larger than 8 MiB") {
		t.Fatalf("got %v; want it to say the pipe holds more than 8 MiB", err)
	}
}

// A pipe's wait ends when ReadPEMContext's context does, saying what it
// waited for (Ctrl-C on shout serve's start): it lasted pemWait whatever
// the caller wanted. pemWait is made longer than bound: a wait that only
// its deadline ends would otherwise pass as one the context ended.
func TestReadPEMContextEndsPipeWait(t *testing.T) {
	if runtime.GOOS == "darwin" || runtime.GOOS == "ios" {
		t.Skip("Go's poller cannot wait on a pipe here")
	}
	defer certs.SetPEMWait(4 * bound)()
	for _, tc := range []struct {
		name, written string
	}{
		{"nothing written", ""},
		{"not finished", "-----BEGIN CERTIFICATE-----\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := fifo(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			writer := make(chan *os.File, 1)
			go func() {
				// Opening to write returns once ReadPEMContext has opened
				// to read; it waits then for the rest.
				w, err := os.OpenFile(p, os.O_WRONLY, 0)
				if err != nil {
					t.Error(err)
				} else {
					w.Write([]byte(tc.written))
				}
				writer <- w
				cancel()
			}()
			// Closing the writer ends the read (a test that failed).
			closeWriter := sync.OnceFunc(func() {
				// An open still waiting for a reader returns when one comes.
				if r, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NONBLOCK, 0); err == nil {
					defer r.Close()
				}
				if w := <-writer; w != nil {
					w.Close()
				}
			})
			defer closeWriter()
			_, err := readPEMContext(t, ctx, p, closeWriter)
			want := "--cert " + p + ": not written to its end yet"
			if err == nil || err.Error() != want || !errors.Is(err, context.Canceled) || errors.Is(err, certs.ErrNotReady) {
				t.Errorf("got %v; want context.Canceled saying %q", err, want)
			}
		})
	}
}

// notices is a context whose wait notice comes at once, each notice sent
// to the channel returned (which holds a few more than a test expects).
func notices() (context.Context, <-chan string) {
	said := make(chan string, 4)
	ctx := certs.WithWaitNotice(context.Background(), 0, func(msg string, timeout time.Duration) {
		said <- fmt.Sprintf("%s (%v)", msg, timeout)
	})
	return ctx, said
}

// nextNotice is the next notice said, "nothing" if none is within bound.
func nextNotice(said <-chan string) string {
	select {
	case s := <-said:
		return s
	case <-time.After(bound):
		return "nothing"
	}
}

// A read that waits on a pipe is said once, with what it waits for and
// how long it will: a start waiting so was silent for its 10 s. Said
// once for the file, however its wait changes (nothing written, then
// some): a notice for each wakeup would fill the log.
func TestReadPEMFIFOWaitNotice(t *testing.T) {
	if runtime.GOOS == "darwin" || runtime.GOOS == "ios" {
		t.Skip("Go's poller cannot wait on a pipe here: the read blocks, and cannot tell what it waits for")
	}
	p := fifo(t)
	w := writeEnd(t, p)
	ctx, said := notices()
	want := []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
	first := make(chan string, 1)
	go func() {
		defer w.Close()
		first <- nextNotice(said)
		w.Write(want[:10]) // the rest is waited for
		w.Write(want[10:])
	}()
	got, err := readPEMContext(t, ctx, p, func() { w.Close() })
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("got %q, %v; want %q", got, err, want)
	}
	if s, want := <-first, "waiting for --cert "+p+": a pipe with nothing written yet (10s)"; s != want {
		t.Errorf("said %q, want %q", s, want)
	}
	select {
	case s := <-said:
		t.Errorf("said again: %q", s)
	default:
	}
}

// A read that does not wait says nothing: a regular file is read at once.
func TestReadPEMNoWaitNoNotice(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cert.pem")
	if err := os.WriteFile(path, []byte("-----BEGIN CERTIFICATE-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, said := notices()
	if _, err := readPEMContext(t, ctx, path, func() {}); err != nil {
		t.Fatal(err)
	}
	select {
	case s := <-said:
		t.Errorf("said %q of a file read at once", s)
	default:
	}
}

// The notice names the file as ReadPEMContext's errors do, as it is,
// ESC and newlines included: the log handler that says it escapes it
// once (cmd/shout's TestServeLogsTheFileNameEscapedOnce), and escaped
// here too it read \\x1b in a text log, and a JSON log's reader could
// not tell the name.
func TestReadPEMWaitNoticeKeepsTheNameRaw(t *testing.T) {
	if runtime.GOOS == "darwin" || runtime.GOOS == "ios" {
		t.Skip("Go's poller cannot wait on a pipe here: the read blocks, and cannot tell what it waits for")
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "a\x1b[31m\nb.pem")
	shouttest.NamedPipe(t, p)
	w := writeEnd(t, p)
	ctx, said := notices()
	first := make(chan string, 1)
	go func() {
		defer w.Close()
		first <- nextNotice(said)
	}()
	readPEMContext(t, ctx, p, func() { w.Close() })
	if s, want := <-first, "waiting for --cert "+p+": a pipe with nothing written yet (10s)"; s != want {
		t.Errorf("said %q, want %q", s, want)
	}
}
