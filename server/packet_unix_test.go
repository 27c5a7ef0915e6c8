//go:build unix

package server_test

import (
	"errors"
	"net"
	"path/filepath"
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
	if d := seen.next(t); d.Reason != server.ReasonSendFailed || d.Err == nil {
		t.Errorf("datagram from a socket with no name: reason %v, err %v; want %v and an error", d.Reason, d.Err, server.ReasonSendFailed)
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
