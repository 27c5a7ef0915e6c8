//go:build unix

package certs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// openPEM opens path to read without waiting for a writer, as opening a
// named pipe otherwise does. Opened so, a regular file that another
// program holds a lease on fails (EAGAIN) where a plain open would wait
// for that program to let go (Linux's fcntl F_SETLEASE, which Samba's
// oplocks and the NFS server's delegations use): the holder has been told
// by the first attempt, so it is tried again, up to pemWait or until ctx
// ends, then errLeased, and w told meanwhile. Not for anything else: a
// device may say EAGAIN for reasons of its own.
func openPEM(ctx context.Context, w *waiter, path string) (*os.File, error) {
	deadline := time.Now().Add(pemWait)
	wait := 5 * time.Millisecond
	for {
		f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
		if !errors.Is(err, syscall.EAGAIN) {
			return f, err
		}
		if fi, serr := os.Stat(path); serr != nil || !fi.Mode().IsRegular() {
			return nil, err
		}
		if time.Until(deadline) < wait {
			return nil, fmt.Errorf("open %s: %w", path, errLeased)
		}
		w.waiting("another program holds a lease on it", pemWait)
		select { // the holder has no way to say it has let go
		case <-time.After(wait):
		case <-ctx.Done():
			return nil, fmt.Errorf("open %s: %w: %w", path, errLeased, ctx.Err())
		}
		wait = min(2*wait, 100*time.Millisecond)
	}
}

// readPEMFile reads f, from openPEM, to its end, at most MaxPEM+1 bytes.
// A pipe or device that Go's poller can wait on is read within pemWait,
// or until ctx ends (then the error is os.ErrDeadlineExceeded), a named
// pipe waiting for its writer meanwhile; anything else is read as it
// comes. w is told of waits for any but a regular file.
func readPEMFile(ctx context.Context, w *waiter, f *os.File, regular, pipe bool) ([]byte, error) {
	const unfinished = "not written to its end yet"
	if regular || f.SetReadDeadline(time.Now().Add(pemWait)) != nil {
		// Its reads must wait themselves: no O_NONBLOCK.
		if err := blocking(f); err != nil {
			return nil, err
		}
		if !regular {
			w.waiting(unfinished, 0) // a pipe the poller cannot wait on: no deadline
		}
		return io.ReadAll(io.LimitReader(f, MaxPEM+1))
	}
	// A deadline in the past wakes the poller's wait at once.
	defer context.AfterFunc(ctx, func() { f.SetReadDeadline(time.Unix(1, 0)) })()
	if !pipe {
		w.waiting(unfinished, pemWait) // a terminal's, say
		return io.ReadAll(io.LimitReader(f, MaxPEM+1))
	}
	return readPipe(f, w)
}

// readPipe reads a named pipe to its end, or MaxPEM+1 bytes, waiting on
// the poller until its deadline. A pipe with no writer reads as at its
// end, as one whose writer has finished does: until it has given a byte,
// that is its end only if a writer has been and gone (hungUp); otherwise
// it is taken for a writer still to come, whom the poller waits for (it
// wakes when one writes). w is told which it waits for.
func readPipe(f *os.File, w *waiter) ([]byte, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	var b []byte
	buf := make([]byte, 32<<10)
	var rerr error
	gone := false // a writer had been and gone when the pipe was last read
	err = rc.Read(func(fd uintptr) bool {
		for len(b) <= MaxPEM {
			n, err := syscall.Read(int(fd), buf)
			switch {
			case errors.Is(err, syscall.EINTR):
				continue
			case errors.Is(err, syscall.EAGAIN):
				w.waiting(pipeWait(len(b)), pemWait)
				return false // a writer, with nothing written yet
			case err != nil:
				rerr = err
				return true
			case n == 0 && (len(b) > 0 || gone):
				return true // the end
			case n == 0:
				// Read once more if a writer has gone, for what it
				// wrote after the read: then the end is the end.
				gone = hungUp(int(fd))
				if !gone {
					w.waiting(pipeWait(len(b)), pemWait)
					return false // no writer yet
				}
				continue
			}
			b = append(b, buf[:n]...)
		}
		return true
	})
	return b, errors.Join(err, rerr)
}

// hungUp reports whether poll says the pipe fd has hung up: its writers
// have all closed it, one at least having come. An anonymous pipe (--cert
// <(cmd)) had one from the start; a named pipe opened with none waiting
// says so only once one has come and gone (Linux, FreeBSD).
func hungUp(fd int) bool {
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	n, err := unix.Poll(fds, 0)
	return err == nil && n > 0 && fds[0].Revents&unix.POLLHUP != 0
}

// blocking clears the O_NONBLOCK openPEM set, for a file whose reads Go's
// poller cannot wait on: there a read that would block fails instead.
func blocking(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = syscall.SetNonblock(int(fd), false) }); err != nil {
		return err
	}
	return serr
}

// pipeWait is why a read of a pipe that has given n bytes waits.
func pipeWait(n int) string {
	if n == 0 {
		return "a pipe with nothing written yet"
	}
	return "a pipe whose writer has not finished"
}
