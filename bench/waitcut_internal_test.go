package bench

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"shout/endpoint"
	"shout/internal/certs"
	"shout/internal/shouttest"
)

// A signal (Ctrl-C) once the window was measured whole, as bench waits
// for the replies owed, ends the wait at once, and the report is the
// whole window's: not interrupted, the wait said cut, and what was owed
// not waited for, neither lost nor checked. The wait went on to the
// Timeout, what was owed then lost, and the report said "interrupted"
// of a window measured whole: interrupted was whether ctx had ended by
// the report, not whether it had ended the window. Each driver, and a
// signal as the window ends (before the wait begins) or just after.
func TestSignalInFinalWaitEndsIt(t *testing.T) {
	for _, tc := range []struct {
		name   string
		server func(t *testing.T) (endpoint.Endpoint, *tls.Config)
		rate   float64
		churn  bool
	}{
		{"stream", silentStream, 0, false},
		{"stream open loop", silentStream, 200, false},
		{"tls", silentTLS, 0, false},
		{"udp", silentUDP, 0, false},
		{"churn", silentChurn, 0, true},
	} {
		for _, inWait := range []bool{false, true} {
			name := tc.name + "/as the window ends"
			if inWait {
				name = tc.name + "/as the wait begins"
			}
			t.Run(name, func(t *testing.T) {
				e, tlsCfg := tc.server(t)
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				var sent atomic.Int64 // measured messages handed over
				sentNoted = func(_ *run, _ int64, measured bool) {
					if measured {
						sent.Add(1)
					}
				}
				ended := make(chan struct{})
				windowEnded = func() {
					if !inWait {
						cancel()
					}
					close(ended)
				}
				defer func() { sentNoted, windowEnded = nil, nil }()
				if inWait {
					go func() {
						select {
						case <-ended:
							cancel()
						case <-ctx.Done():
						}
					}()
				}
				cfg := Config{Endpoint: e, TLS: tlsCfg, Conns: 1, Depth: 1, Rate: tc.rate, Churn: tc.churn,
					Warmup: -1, Duration: 200 * time.Millisecond, Timeout: 10 * time.Second}
				rep, err := Run(ctx, cfg)
				if err != nil {
					t.Fatal(err)
				}
				if rep.Interrupted || !rep.WaitCut || rep.MeasuredS != cfg.Duration.Seconds() {
					t.Errorf("interrupted %v, wait cut %v, measured %vs; want not interrupted, the wait cut, %vs measured",
						rep.Interrupted, rep.WaitCut, rep.MeasuredS, cfg.Duration.Seconds())
				}
				if n := sent.Load(); rep.Unawaited != n || rep.Lost != 0 || rep.Messages != 0 || rep.Errors != 0 {
					t.Errorf("%d not waited for, %d lost, %d messages, %d errors (%q); want the %d sent not waited for, and nothing else",
						rep.Unawaited, rep.Lost, rep.Messages, rep.Errors, rep.FirstError, n)
				}
				if rep.Unawaited > 0 && rep.OK() {
					t.Errorf("%d not waited for, and all right: not every reply was checked", rep.Unawaited)
				}
			})
		}
	}
}

// silentStream is a TCP server that reads what it is sent and answers
// nothing.
func silentStream(t *testing.T) (endpoint.Endpoint, *tls.Config) {
	addr := shouttest.StreamServer(t, func(c net.Conn) { io.Copy(io.Discard, c) })
	return endpoint.Endpoint{Network: "tcp", Address: addr}, nil
}

// silentChurn is a TCP server that reads each message to the client's
// half-close and answers nothing, the connection held open until the
// test ends: a close is a reply cut short.
func silentChurn(t *testing.T) (endpoint.Endpoint, *tls.Config) {
	hold := make(chan struct{})
	addr := shouttest.StreamServer(t, func(c net.Conn) {
		io.Copy(io.Discard, c)
		<-hold
	})
	t.Cleanup(func() { close(hold) }) // (before the server's own)
	return endpoint.Endpoint{Network: "tcp", Address: addr}, nil
}

// silentTLS is silentStream over TLS.
func silentTLS(t *testing.T) (endpoint.Endpoint, *tls.Config) {
	store, err := certs.SelfSigned([]string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := certs.ServerConfig(store, "")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				io.Copy(io.Discard, tls.Server(c, cfg))
			})
		}
	})
	return endpoint.Endpoint{Network: "tcp", Address: ln.Addr().String(), TLS: true}, &tls.Config{InsecureSkipVerify: true}
}

// silentUDP is a UDP server that answers nothing.
func silentUDP(t *testing.T) (endpoint.Endpoint, *tls.Config) {
	addr := shouttest.PacketServer(t, func(int, []byte) [][]byte { return nil })
	return endpoint.Endpoint{Network: "udp", Address: addr}, nil
}
