package main

import (
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// A balancer that sends a PROXY header to a shout started without
// --proxy-protocol: the log says so, naming the flag, on a TCP listener
// (whose header is answered as data) and on a tls:// one (whose handshake
// fails on it). With --proxy-protocol the header is read, and nothing of
// the kind is logged.
func TestServeLogsAProxyHeaderItDoesNotRead(t *testing.T) {
	const header = "PROXY TCP4 203.0.113.7 127.0.0.1 4242 8080\r\n"
	send := func(t *testing.T, addr, data string, reply int) {
		t.Helper()
		c, err := net.DialTimeout("tcp", addr, bound)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(bound))
		io.WriteString(c, data)
		got := make([]byte, reply)
		if _, err := io.ReadFull(c, got); err != nil {
			t.Fatalf("reply: %v (got %q)", err, got)
		}
		if want := strings.ToUpper(data)[len(data)-reply:]; string(got) != want {
			t.Errorf("reply %q; want %q", got, want)
		}
	}

	srv := startServe(t, nil, "tcp://127.0.0.1:0", "tls://127.0.0.1:0", "--tls-self-signed")
	send(t, srv.addr("tcp"), header+"hello\n", len(header+"hello\n"))
	srv.waitLog(`msg="PROXY header answered as data"`)
	srv.waitLog(`why="the client's data begins with a PROXY protocol header, which is answered as data: a listener reads one only with --proxy-protocol, from a source in --proxy-from"`)
	c, err := net.DialTimeout("tcp", srv.addr("tls"), bound)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, header)
	srv.waitLog(`the client sent a PROXY protocol header, and this listener reads none (only with --proxy-protocol does it): it sent`)

	srv = startServe(t, nil, "tcp://127.0.0.1:0", "--proxy-protocol", "--proxy-from=127.0.0.1")
	send(t, srv.addr("tcp"), header+"hello\n", len("hello\n"))
	// The close line comes after any line of the connection's reads: the
	// log is written in order, behind the replies.
	srv.waitLog(`msg=close remote=203.0.113.7:4242`)
	if log := srv.logText(); strings.Contains(log, "PROXY header answered as data") {
		t.Errorf("a header read with --proxy-protocol was logged as data:\n%s", log)
	}
}
