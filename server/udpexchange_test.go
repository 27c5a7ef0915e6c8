package server_test

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"shout/internal/shouttest"
)

// udpClient sends datagrams on c and waits for their replies, sending one
// again when the kernel dropped a datagram on the way (see exchange).
type udpClient struct {
	c net.Conn
	// late counts, by reply, the replies to datagrams sent again that may
	// still come: the first was slow, not dropped.
	late map[string]int
}

// udpClients holds udpExchange's udpClient of each conn, while its test
// runs.
var udpClients sync.Map

// udpSends bounds how many times exchange sends one datagram.
const udpSends = 3

// exchange sends msg and returns the reply, within bound. A datagram can
// be dropped by the kernel, and then nothing comes back: the loopback
// backlog every packet passes through fills with a burst of other tests'
// datagrams (net.core.netdev_max_backlog, 1,000), and a socket left
// without CPU on a busy machine fills its receive buffer. Both count what
// they drop, so when no reply has come and those counters (the backlog's,
// and the drops of the client's and the server's sockets) rose since the
// last send, msg is sent again, udpSends times at most. A reply that does
// not come while they hold still is the server's loss, and an error.
func (u *udpClient) exchange(msg []byte) ([]byte, error) {
	local, remote := port(u.c.LocalAddr()), port(u.c.RemoteAddr())
	drops := kernelDrops(local, remote)
	end := time.Now().Add(bound)
	buf := make([]byte, 1<<17)
	sends, first := 0, drops()
	for before := first; ; {
		if _, err := u.c.Write(msg); err != nil {
			return nil, err
		}
		sends++
		for {
			// Looks at the counters ten times a second; only a reply
			// or the bound ends the wait.
			wait := time.Now().Add(100 * time.Millisecond)
			if wait.After(end) {
				wait = end
			}
			u.c.SetReadDeadline(wait)
			n, err := u.c.Read(buf)
			if err == nil {
				got := string(buf[:n])
				if u.late[got] > 0 {
					u.late[got]--
					continue
				}
				if sends > 1 {
					if u.late == nil {
						u.late = make(map[string]int)
					}
					u.late[got] += sends - 1
				}
				return buf[:n], nil
			}
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				return nil, err
			}
			if !time.Now().Before(end) {
				return nil, fmt.Errorf("no reply to %q in %v, sent %d times; the kernel dropped %d datagrams meanwhile (the loopback backlog, the sockets on ports %d and %d)",
					trimmed(msg), bound, sends, drops()-first, local, remote)
			}
			if now := drops(); now > before && sends < udpSends {
				before = now
				break // send again
			}
		}
	}
}

// udpExchange is exchange of one datagram on c, failing t on an error.
// (From another goroutine than t's, use exchange.) The calls on one c
// share a udpClient, so that a reply that came twice, after a datagram
// sent again, is not taken for the next call's.
func udpExchange(t testing.TB, c net.Conn, msg []byte) []byte {
	t.Helper()
	u, loaded := udpClients.LoadOrStore(c, &udpClient{c: c})
	if !loaded {
		t.Cleanup(func() { udpClients.Delete(c) })
	}
	got, err := u.(*udpClient).exchange(msg)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func port(a net.Addr) int {
	if u, ok := a.(*net.UDPAddr); ok {
		return u.Port
	}
	return 0
}

func trimmed(b []byte) string {
	if len(b) > 24 {
		return string(b[:24]) + "…"
	}
	return string(b)
}

// exchange sends again a datagram the kernel dropped, counted: here the
// server's socket, its receive buffer full of another sender's
// datagrams, drops the first, and the server reads on only once it has.
// A reply that comes twice then is not taken for the next one's, by a
// udpClient or by udpExchange called again on the same conn.
func TestUDPExchangeSendsAgain(t *testing.T) {
	t.Run("udpClient", func(t *testing.T) {
		u := &udpClient{c: droppingServer(t)}
		got, err := u.exchange([]byte("again"))
		if err != nil || string(got) != "AGAIN" {
			t.Errorf("got %q, %v; want AGAIN", got, err)
		}
		if got, err := u.exchange([]byte("next")); err != nil || string(got) != "NEXT" {
			t.Errorf("then got %q, %v; want NEXT", got, err)
		}
	})
	t.Run("udpExchange", func(t *testing.T) {
		c := droppingServer(t)
		if got := udpExchange(t, c, []byte("again")); string(got) != "AGAIN" {
			t.Errorf("got %q; want AGAIN", got)
		}
		if got := udpExchange(t, c, []byte("next")); string(got) != "NEXT" {
			t.Errorf("then got %q; want NEXT", got)
		}
	})
}

// droppingServer returns a client of a server whose socket drops the
// client's first datagram, and that answers "again" twice. The server
// reads nothing until the client sends again, which exchange does only
// once the kernel has counted the drop; then its socket takes more.
func droppingServer(t *testing.T) net.Conn {
	pc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	pc.SetReadBuffer(1) // the kernel's least: a few datagrams
	srv := pc.LocalAddr().(*net.UDPAddr)
	filler, err := net.DialUDP("udp4", nil, srv)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { filler.Close() })
	for range 1000 {
		if shouttest.UDPSocketDrops(srv.Port) > 0 {
			break
		}
		filler.Write(make([]byte, 1000))
	}
	if shouttest.UDPSocketDrops(srv.Port) == 0 {
		t.Skip("the kernel here does not count a UDP socket's drops")
	}
	again, stop, done := make(chan struct{}), make(chan struct{}), make(chan struct{})
	go func() { // the server: answers the client once it sends again
		defer close(done)
		select {
		case <-again:
		case <-stop:
			return
		}
		pc.SetReadDeadline(time.Now().Add(bound))
		buf := make([]byte, 2000)
		for {
			n, from, err := pc.ReadFromUDP(buf)
			if err != nil {
				return
			}
			if from.Port == port(filler.LocalAddr()) {
				continue
			}
			pc.WriteToUDP(bytes.ToUpper(buf[:n]), from)
			if string(buf[:n]) == "again" {
				// As if the first had come after all, and late.
				pc.WriteToUDP(bytes.ToUpper(buf[:n]), from)
			}
		}
	}()
	t.Cleanup(func() { close(stop); pc.Close(); <-done })
	c, err := net.DialUDP("udp4", nil, srv)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &beforeWrite{Conn: c, nth: 2, f: func() {
		pc.SetReadBuffer(1 << 20) // room for what is sent again
		close(again)
	}}
}

// beforeWrite is a conn that calls f before its nth Write.
type beforeWrite struct {
	net.Conn
	nth, writes int
	f           func()
}

func (c *beforeWrite) Write(p []byte) (int, error) {
	if c.writes++; c.writes == c.nth {
		c.f()
	}
	return c.Conn.Write(p)
}

// kernelDrops returns what counts the datagrams the kernel dropped on
// their way between the sockets on ports local and remote (on
// 127.0.0.1), both ways: the loopback backlog's drops and the two
// sockets', since each started. Only its rise means anything.
func kernelDrops(local, remote int) func() int64 {
	return func() int64 {
		return shouttest.BacklogDrops() + shouttest.UDPSocketDrops(local) + shouttest.UDPSocketDrops(remote)
	}
}
