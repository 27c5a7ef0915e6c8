package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// When one of serve's listeners fails for good at run time (here: its
// socket shut, so that accept fails with EINVAL), shout says which and
// why, stops as gracefully as on SIGTERM (a client of another listener
// gets the reply to what it had sent, then end of file, and is waited
// for; a signal stops it at once, and is not called a second one), and
// exits with status 1 and the error. It used to close every connection
// at once, and log nothing of stopping.
func TestServeListenerFailsStopsGracefully(t *testing.T) {
	for _, tc := range []struct {
		engine string
		signal bool // cut the stop short with SIGTERM, rather than close the client
	}{
		{"auto", false},
		{"goroutine", false},
		{"auto", true},
	} {
		t.Run(fmt.Sprintf("%s, signal %v", tc.engine, tc.signal), func(t *testing.T) {
			engine := tc.engine
			sock := filepath.Join(t.TempDir(), "s")
			p := startServe(t, nil, "--engine", engine, "tcp://127.0.0.1:0", "unix://"+sock)
			u, err := net.DialTimeout("unix", sock, bound)
			if err != nil {
				t.Fatal(err)
			}
			defer u.Close()
			u.SetDeadline(time.Now().Add(bound))
			io.WriteString(u, "a")
			if got := readN(t, u, 1); got != "A" {
				t.Fatalf("got %q", got)
			}
			io.WriteString(u, "b") // its reply not read yet

			addr := p.addr("tcp")
			shutListener(t, p.cmd.Process.Pid, addr)
			want := "accept tcp " + addr + ": accept4: invalid argument"
			p.waitLog("a listener failed; shutting down")
			if log := p.logText(); !strings.Contains(log, want) {
				t.Errorf("the log does not say %q:\n%s", want, log)
			}
			if got, err := io.ReadAll(u); string(got) != "B" || err != nil {
				t.Errorf("the other listener's client read %q, %v; want B, then end of file", got, err)
			}
			if tc.signal {
				p.cmd.Process.Signal(syscall.SIGTERM)
				p.waitLog(`msg="signal: stopping now"`)
			} else {
				u.Close() // the stop waits for it
			}
			if code := p.wait(); code != 1 {
				t.Errorf("exit status %d, want 1", code)
			}
			lines := strings.Split(strings.TrimSpace(p.logText()), "\n")
			if last := lines[len(lines)-1]; last != "shout: "+want {
				t.Errorf("last line %q, want %q", last, "shout: "+want)
			}
		})
	}
}

func readN(t *testing.T, c net.Conn, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := io.ReadFull(c, b); err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// shutListener shuts the receive side of the TCP listener at addr in
// process pid, taking a copy of its descriptor (pidfd_getfd, which a
// parent may do to its child): accept then fails with EINVAL for good.
func shutListener(t *testing.T, pid int, addr string) {
	t.Helper()
	pfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		t.Skipf("pidfd_open: %v", err)
	}
	defer unix.Close(pfd)
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Skipf("cannot list the descriptors of shout serve: %v", err)
	}
	for _, e := range ents {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		fd, err := unix.PidfdGetfd(pfd, n, 0)
		if err != nil {
			if err == unix.EPERM || err == unix.ENOSYS {
				t.Skipf("pidfd_getfd: %v", err)
			}
			continue // closed meanwhile
		}
		sa, _ := unix.Getsockname(fd)
		a, ok := sa.(*unix.SockaddrInet4)
		listening, _ := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN)
		if ok && listening == 1 && (&net.TCPAddr{IP: a.Addr[:], Port: a.Port}).String() == addr {
			err = unix.Shutdown(fd, unix.SHUT_RD)
			unix.Close(fd)
			if err != nil {
				t.Fatalf("shutdown: %v", err)
			}
			return
		}
		unix.Close(fd)
	}
	t.Fatalf("no listener on %s in shout serve's descriptors", addr)
}
