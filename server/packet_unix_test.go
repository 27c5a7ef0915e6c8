//go:build unix

package server_test

import (
	"errors"
	"net"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"shout/internal/shouttest"
	"shout/server"
)

// A Unix datagram socket with no name (net.DialUnix("unixgram", nil, …)
// makes one) has no address to be answered at: its datagram gets no
// reply, ReasonSendFailed, and the server goes on serving.
func TestUnixgramSenderWithoutName(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "s")
	pc, err := net.ListenPacket("unixgram", path)
	if err != nil {
		t.Fatal(err)
	}
	seen := make(datagrams, 2)
	srv := &server.Server{Observer: seen, Logger: new(shouttest.Log).Logger()}
	served := make(chan error, 1)
	go func() { served <- srv.ServePacket(pc) }()
	defer func() {
		srv.Close()
		if err := <-served; !errors.Is(err, server.ErrServerClosed) {
			t.Errorf("ServePacket: %v", err)
		}
	}()
	to := &net.UnixAddr{Name: path, Net: "unixgram"}
	nameless, err := net.DialUnix("unixgram", nil, to)
	if err != nil {
		t.Fatal(err)
	}
	defer nameless.Close()
	if _, err := nameless.Write([]byte("from nowhere")); err != nil {
		t.Fatal(err)
	}
	if d := seen.next(t); d.Reason != server.ReasonSendFailed || d.Err == nil || !strings.HasPrefix(d.Err.Error(), "server: ") {
		t.Errorf("datagram from a socket with no name: reason %v, err %v; want %v and an error of the package's (\"server: …\")", d.Reason, d.Err, server.ReasonSendFailed)
	}
	named, err := net.DialUnix("unixgram", &net.UnixAddr{Name: filepath.Join(dir, "c"), Net: "unixgram"}, to)
	if err != nil {
		t.Fatal(err)
	}
	defer named.Close()
	named.SetDeadline(time.Now().Add(bound))
	if _, err := named.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	n, err := named.Read(buf)
	if err != nil || string(buf[:n]) != "HELLO" {
		t.Fatalf("named client after a nameless one: got %q, %v; want HELLO", buf[:n], err)
	}
	if d := seen.next(t); d.Reason != server.ReasonNone {
		t.Errorf("named client: reason %v", d.Reason)
	}
}

// A Unix datagram client that sends and never reads fills its queue with
// replies (ten datagrams on Linux), and a send to it waits for room: it
// held the worker that made it, then every worker, and no other client
// was answered. Its replies that do not fit now fail (ReasonSendFailed)
// and the others are served.
func TestUnixgramClientThatDoesNotRead(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "s")
	pc, err := net.ListenPacket("unixgram", path)
	if err != nil {
		t.Fatal(err)
	}
	n := 20 + 2*runtime.GOMAXPROCS(0) // more than its queue and the workers take
	seen := make(datagrams, n+1)
	shouttest.ServePacket(t, &server.Server{Observer: seen, Logger: new(shouttest.Log).Logger()}, pc)
	to := &net.UnixAddr{Name: path, Net: "unixgram"}
	// Not connected to the server: a receiver's queue limit holds only
	// for senders it is not connected to (Linux).
	mute, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: filepath.Join(dir, "mute"), Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer mute.Close()
	mute.SetWriteDeadline(time.Now().Add(bound))
	for i := range n {
		if _, err := mute.WriteTo([]byte("never read"), to); err != nil {
			t.Fatalf("datagram %d of a client that does not read: %v (the server stopped reading)", i, err)
		}
	}
	failed := 0
	for range n {
		if d := seen.next(t); d.Reason == server.ReasonSendFailed {
			failed++
		}
	}
	if failed == 0 {
		t.Errorf("all %d replies to a client that does not read were sent", n)
	}
	c, err := net.DialUnix("unixgram", &net.UnixAddr{Name: filepath.Join(dir, "c"), Net: "unixgram"}, to)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(bound))
	if _, err := c.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	if k, err := c.Read(buf); err != nil || string(buf[:k]) != "HELLO" {
		t.Errorf("a client that reads, beside one that does not: got %q, %v; want HELLO", buf[:k], err)
	}
}

// A Unix datagram may be longer than the 65,535 bytes a worker reads
// (up to the sender's send buffer): it gets no reply, ReasonTooLarge, as
// a reply too large for one datagram does. It was answered with the
// uppercase of its first 65,535 bytes, reported as answered: the client
// got a reply to a message it had not sent.
func TestUnixgramLongerThanTheBuffer(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "s")
	pc, err := net.ListenPacket("unixgram", path)
	if err != nil {
		t.Fatal(err)
	}
	seen := make(datagrams, 2)
	shouttest.ServePacket(t, &server.Server{Observer: seen, Logger: new(shouttest.Log).Logger()}, pc)
	c, err := net.DialUnix("unixgram", &net.UnixAddr{Name: filepath.Join(dir, "c"), Net: "unixgram"}, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(bound))
	if err := c.SetWriteBuffer(1 << 20); err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("a", 100000)
	if _, err := c.Write([]byte(long)); err != nil {
		t.Skipf("cannot send a datagram of %d bytes: %v", len(long), err)
	}
	if d := seen.next(t); d.Reason != server.ReasonTooLarge || d.BytesOut != 0 {
		t.Errorf("a datagram of %d bytes: reason %v, %d bytes out; want %v, 0", len(long), d.Reason, d.BytesOut, server.ReasonTooLarge)
	}
	if _, err := c.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 128<<10)
	if n, err := c.Read(buf); err != nil || string(buf[:n]) != "HELLO" {
		t.Errorf("got a reply of %d bytes (%.10q…), %v; want HELLO, the reply to the next datagram", n, buf[:n], err)
	}
	if d := seen.next(t); d.Reason != server.ReasonNone {
		t.Errorf("the next datagram: reason %v", d.Reason)
	}
}
