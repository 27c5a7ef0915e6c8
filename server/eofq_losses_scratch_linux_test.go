package server_test

// Reproductions from review r38 of c95550f (stop 48): the cases where the
// reset of queued replies made well-behaved clients lose replies. Work in
// progress on branch eofq-wip, not on main.

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"shout/internal/shouttest"
	"shout/server"
)

func envDur(name string, def time.Duration) time.Duration {
	if v := os.Getenv(name); v != "" {
		d, err := time.ParseDuration(v)
		if err == nil {
			return d
		}
	}
	return def
}

func envInt(name string, def int) int {
	if v := os.Getenv(name); v != "" {
		n, err := strconv.Atoi(v)
		if err == nil {
			return n
		}
	}
	return def
}

func dialRcvbuf(t *testing.T, addr string, rcvbuf int) *net.TCPConn {
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		rc.Control(func(fd uintptr) { unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, rcvbuf) })
		return nil
	}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn)
}

// R38: a client sends N bytes, half-closes, then reads CHUNK every GAP
// after an initial PAUSE. Logs what it got and how it ended.
func TestR38Scratch(t *testing.T) {
	obs := &reasonObs{}
	closed := make(chan struct{}, 1)
	srv := &server.Server{
		Logger:       discard(),
		Observer:     obs,
		Linger:       envDur("R38_LINGER", 20*time.Millisecond),
		WriteTimeout: envDur("R38_WT", time.Second),
		ConnState: func(_ net.Conn, st server.ConnState) {
			if st == server.StateClosed {
				closed <- struct{}{}
			}
		},
	}
	if os.Getenv("R38_WT") == "0" {
		srv.WriteTimeout = 0
	}
	addr := shouttest.Start(t, srv)
	c := dialRcvbuf(t, addr, envInt("R38_RCVBUF", 4<<10))
	n := envInt("R38_N", 2<<20)
	chunk, gap, pause := envInt("R38_CHUNK", 4<<10), envDur("R38_GAP", 20*time.Millisecond), envDur("R38_PAUSE", 0)
	start := time.Now()
	wdone := make(chan time.Duration, 1)
	preread := os.Getenv("R38_PREREAD") != ""
	go func() {
		c.Write([]byte(strings.Repeat("a", n)))
		c.CloseWrite()
		wdone <- time.Since(start)
	}()
	got := 0
	buf := make([]byte, chunk)
	if preread { // read fast until the writer is done
		for {
			select {
			case d := <-wdone:
				t.Logf("writer done at %v", d)
				goto slow
			default:
			}
			c.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
			k, _ := c.Read(buf)
			got += k
		}
	}
	t.Logf("writer done at %v", <-wdone)
slow:
	c.SetReadDeadline(time.Time{})
	time.Sleep(pause)
	var err error
	for {
		k, e := io.ReadFull(c, buf)
		got += k
		if e != nil {
			err = e
			break
		}
		time.Sleep(gap)
	}
	select {
	case <-closed:
	case <-time.After(bound):
	}
	obs.mu.Lock()
	t.Logf("got %d of %d after %v, err %v (reset %v), reasons %v", got, n, time.Since(start), err, errors.Is(err, unix.ECONNRESET), obs.reason)
	obs.mu.Unlock()
}

// R38: a client sends, half-closes and never reads; then Close or
// Shutdown(ctx). Logs how long each took and the client's TCP state.
func TestR38Stop(t *testing.T) {
	shouttest.CheckFDs(t)
	obs := &reasonObs{}
	srv := &server.Server{
		Logger:       discard(),
		Observer:     obs,
		Linger:       envDur("R38_LINGER", 10*time.Second),
		WriteTimeout: envDur("R38_WT", 30*time.Second),
	}
	addr := shouttest.Start(t, srv)
	fd := rawDialBuffer(t, addr, 4<<10)
	defer unix.Close(fd)
	msg := []byte(strings.Repeat("a", 128<<10))
	for sent := 0; sent < len(msg); {
		if !wait(t, fd, unix.POLLOUT, bound) {
			t.Fatalf("stuck at %d", sent)
		}
		n, err := unix.Write(fd, msg[sent:])
		if err == unix.EAGAIN {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		sent += n
	}
	unix.Shutdown(fd, unix.SHUT_WR)
	time.Sleep(envDur("R38_SETTLE", 300*time.Millisecond))
	start := time.Now()
	if os.Getenv("R38_SHUTDOWN") != "" {
		ctx, cancel := context.WithTimeout(context.Background(), envDur("R38_SHUTDOWN", time.Second))
		err := srv.Shutdown(ctx)
		cancel()
		t.Logf("Shutdown: %v after %v", err, time.Since(start))
	} else {
		srv.Close()
		t.Logf("Close after %v", time.Since(start))
	}
	time.Sleep(50 * time.Millisecond)
	ti, _ := unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO)
	obs.mu.Lock()
	t.Logf("client TCP state %d (7 CLOSE=reset, 5 FIN_WAIT2=server closed with FIN behind queued replies); reasons %v", ti.State, obs.reason)
	obs.mu.Unlock()
}
