package main

import (
	"bytes"
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/alecthomas/kong"
)

func TestServeFlagsMakeServer(t *testing.T) {
	tests := []struct {
		args   []string
		perIP  int
		linger time.Duration
	}{
		{nil, 1000, 2 * time.Second},
		{[]string{"--max-conns-per-ip=0", "--linger=0"}, 0, -1}, // no limit; close at once
		{[]string{"--max-conns-per-ip=3", "--linger=250ms"}, 3, 250 * time.Millisecond},
	}
	for _, tc := range tests {
		var c cli
		parser, err := kong.New(&c)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := parser.Parse(append([]string{"serve"}, tc.args...)); err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		srv := c.Serve.server(nil, nil)
		if srv.MaxConnsPerIP != tc.perIP || srv.Linger != tc.linger {
			t.Errorf("%v: MaxConnsPerIP %d, Linger %v; want %d, %v", tc.args, srv.MaxConnsPerIP, srv.Linger, tc.perIP, tc.linger)
		}
	}
}

// --engine loop where the loops cannot serve (--trace, TLS, the PROXY
// protocol) is a usage error before anything is bound: it was found only
// after listening, so a taken port came first, as a listen failure.
func TestServeEngineLoopRefusedBeforeListening(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	addr := taken.Addr().String()
	for _, tc := range []struct {
		args []string
		why  string // in the flags' terms, naming the address
	}{
		{[]string{"--trace", "tcp://" + addr}, "tcp://" + addr + " with --trace"},
		{[]string{"--tls-self-signed", "tls://" + addr}, "tls://" + addr + ": its bytes pass through crypto/tls"},
		{[]string{"--proxy-protocol", "tcp://" + addr}, "tcp://" + addr + " with --proxy-protocol"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), append([]string{"serve", "--engine", "loop"}, tc.args...), strings.NewReader(""), &stdout, &stderr)
		if code != 2 || !strings.Contains(stderr.String(), "--engine loop: the event-loop engine cannot serve "+tc.why) ||
			!strings.Contains(stderr.String(), "--engine auto serves it") {
			t.Errorf("%v: status %d, %q; want 2, why the loops cannot serve %q, and what can", tc.args, code, stderr.String(), tc.why)
		}
	}
}
