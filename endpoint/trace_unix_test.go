//go:build unix

package endpoint_test

import (
	"crypto/tls"
	"log/slog"
	"net"
	"regexp"
	"testing"

	"shout/endpoint"
	"shout/internal/shouttest"
	"shout/server"
)

// --trace on a tls:// or --proxy-protocol listener tells its socket as it
// does a plain one's (README: the listening socket's creation,
// SO_REUSEADDR, bind and listen), with its file descriptor. It printed
// "socket(?, ?) → fd ?", fd=? on every listener line, and no SO_REUSEADDR.
func TestTraceWrappedListener(t *testing.T) {
	wrapped, client := wrappedListeners(t, "10.0.0.0/8") // (loopback sends no header)
	for _, tc := range wrapped {
		t.Run(tc.name, func(t *testing.T) {
			var trace shouttest.Log
			srv := &server.Server{Observer: server.NewTraceObserver(&trace), Logger: slog.New(slog.DiscardHandler)}
			lns, _, err := tc.opts.Listen([]endpoint.Endpoint{{Network: "tcp", Address: "127.0.0.1:0", TLS: tc.tls}})
			if err != nil {
				t.Fatal(err)
			}
			shouttest.Serve(t, srv, lns[0])
			raw, err := net.Dial("tcp", lns[0].Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer raw.Close()
			c := raw
			if tc.tls {
				c = tls.Client(raw, client)
			}
			exchange(t, c, "x\n") // served: the listener's lines were written before its first accept
			for _, want := range []string{
				`trace fd=\d+ socket\(AF_INET, SOCK_STREAM\) → fd \d+: the tcp socket to listen on`,
				`trace fd=\d+ setsockopt\(SOL_SOCKET, SO_REUSEADDR, 1\)`,
				`trace fd=\d+ bind\(127\.0\.0\.1:\d+\)`,
				`trace fd=\d+ listen\(`,
				`trace fd=\d+ accept\(\) → fd \d+, client 127\.0\.0\.1:\d+: a new socket for this client; fd \d+ goes on listening`,
			} {
				if !regexp.MustCompile(want).MatchString(trace.String()) {
					t.Errorf("no line matching %s in the trace:\n%s", want, trace.String())
				}
			}
		})
	}
}
