package client_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"golang.org/x/text/cases"
	"golang.org/x/text/language"

	"shout/client"
	"shout/internal/shouttest"
)

// connect between itself and a real shout server through a faulty path
// (shouttest.StreamRelay, shouttest.UDPRelay): what the user sees is what
// the server sent, or says what went wrong.

func TestPipeThroughAFaultyPath(t *testing.T) {
	srv := startShout(t)
	in := strings.Repeat("hello egon 哈哈 straße ΐ ﬁ ŉ\n", 500)
	want := cases.Upper(language.Und).String(in)
	type stream = shouttest.Stream
	for _, tc := range []struct {
		name     string
		up, down stream
		// problem is what the result says went wrong; "" for none.
		problem string
	}{
		{"characters split everywhere", stream{Chunk: 1}, stream{Chunk: 1}, ""},
		{"gathered", stream{Coalesce: 5 * time.Millisecond}, stream{Coalesce: 5 * time.Millisecond}, ""},
		{"throttled", stream{Rate: 200000}, stream{Rate: 200000}, ""},
		{"replies end", stream{}, stream{After: 1000, Cut: shouttest.CutHalf}, "closed the connection"},
		{"reset", stream{}, stream{After: 1000, Cut: shouttest.CutReset}, "closed the connection"},
		{"replies stall", stream{}, stream{After: 1000, Cut: shouttest.CutStall}, "no reply from"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := shouttest.StreamRelay(t, srv, tc.up, tc.down)
			var out bytes.Buffer
			// Only a stall is told by silence, and a short one keeps it
			// short. Every other ending comes by itself: a busy machine
			// that left the relay without CPU past a short silence once
			// it had the input made the reset (and any close) silence.
			silence := bound
			if tc.down.Cut == shouttest.CutStall {
				silence = 200 * time.Millisecond
			}
			res, err := client.Pipe(dial(t, "tcp", addr), strings.NewReader(in), &out, silence)
			if err != nil {
				t.Fatal(err)
			}
			problem := ""
			if !res.Complete() {
				problem = res.Problem(addr, silence)
			}
			switch {
			case tc.problem == "" && (problem != "" || out.String() != want):
				t.Errorf("%q; %d bytes of %d, the same: %v", problem, out.Len(), len(want), out.String() == want)
			case tc.problem != "" && !strings.Contains(problem, tc.problem):
				t.Errorf("problem %q, want it to say %q", problem, tc.problem)
			case tc.problem != "" && !strings.HasPrefix(want, out.String()):
				t.Errorf("what came, %d bytes, is not the start of the replies", out.Len())
			}
		})
	}
}

// Each UDP line has a socket of its own, so what the path doubles, holds
// back or drops is never taken for another line's reply.
func TestDatagramsThroughAFaultyPath(t *testing.T) {
	srv := startShout(t)
	type pk = shouttest.Packet
	in := "one\ntwo\nthree\nfour\nfive\nsix\n"
	// The reply to line 2, dropped or held, ends its try's wait on the
	// test's clock: by the real one, a busy machine that left the test
	// without CPU past a short timeout took the retry's reply for none
	// too, and line 2 for lost.
	timeout := handTimeouts(t)
	for _, tc := range []struct {
		name    string
		path    func(dir, n int, b []byte) []pk
		retries int
	}{
		{"replies doubled", func(_, _ int, b []byte) []pk { return []pk{{Data: b}, {Data: b}} }, 0},
		{"requests doubled", func(dir, _ int, b []byte) []pk {
			if dir == shouttest.ToServer {
				return []pk{{Data: b}, {Data: b}}
			}
			return []pk{{Data: b}}
		}, 0},
		// Asked again: the reply to either try is the line's.
		{"a reply dropped", func(dir, n int, b []byte) []pk {
			if dir == shouttest.ToClient && n == 1 {
				timeout()
				return nil
			}
			return []pk{{Data: b}}
		}, 1},
		{"a reply held past the timeout", func(dir, n int, b []byte) []pk {
			if dir == shouttest.ToClient && n == 1 {
				timeout()
				return []pk{{Data: b, After: 300 * time.Millisecond}}
			}
			return []pk{{Data: b}}
		}, 1},
		{"replies overtaken", func(dir, n int, b []byte) []pk {
			if dir == shouttest.ToClient && n%2 == 0 {
				return []pk{{Data: b, After: 20 * time.Millisecond}}
			}
			return []pk{{Data: b}}
		}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := shouttest.UDPRelay(t, srv, tc.path)
			var out, warn bytes.Buffer
			res, err := client.Datagrams(dial(t, "udp", addr), dialer(t, addr), strings.NewReader(in), &out, &warn, bound, tc.retries)
			if err != nil {
				t.Fatal(err)
			}
			if want := strings.ToUpper(in); out.String() != want || res.Answered != 6 || res.Lost != 0 {
				t.Errorf("%+v: %q, want %q; warned %q", res, out.String(), want, warn.String())
			}
		})
	}
}
