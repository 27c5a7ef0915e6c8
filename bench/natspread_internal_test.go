package bench

import (
	"context"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"shout/client"
	"shout/endpoint"
	"shout/internal/named"
	"shout/internal/shouttest"
	"shout/server"
)

// Through a NAT that forwards 127.0.0.1's connections alone (the port
// podman publishes on loopback: CNI's portmap masquerades that source
// only), the connections bench spreads over 127.0.0.2 and up time out
// connecting. It said "connection 2: connect 127.0.0.1:8080: i/o
// timeout", with no word of where from, nor that 127.0.0.1's were made:
// the server looked at fault. The error names the source, and the way
// out, --source-ips 1.
func TestConnectTimeoutFromOtherSource(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	e := endpoint.Endpoint{Network: "tcp", Address: ln.Addr().String()}
	timedOut := client.DialError(e, &net.OpError{Op: "dial", Net: "tcp", Err: os.ErrDeadlineExceeded})
	refused := client.DialError(e, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED})
	for _, tc := range []struct {
		name  string
		fails func(i int) bool // the connections that fail
		err   error
		want  string
		conns int
	}{
		{"from 127.0.0.2 and up", func(i int) bool { return i%4 != 0 }, timedOut,
			"connection 2, from 127.0.0.2, where those from 127.0.0.1 were made (something between that forwards 127.0.0.1's connections alone, as a port podman publishes on loopback does, leaves the others unanswered: use SourceIPs 1): connect ", 8},
		{"from every source", func(int) bool { return true }, timedOut, "", 8},
		// An overloaded server's timeouts fall on any source: one from
		// 127.0.0.1 that timed out too says it is not the NAT.
		{"from 127.0.0.1 as well", func(i int) bool { return i != 0 }, timedOut, "", 8},
		// Refused is the server's word, not a NAT's silence.
		{"refused from 127.0.0.2 and up", func(i int) bool { return i%4 != 0 }, refused, "", 8},
		{"from 127.0.0.1 alone", func(i int) bool { return i%4 == 0 }, timedOut, "", 8},
		// A server that stopped accepting, its backlog full after two,
		// times out the connections after those, wherever from: one
		// from 127.0.0.2 made says it is not the NAT. It said so of
		// --conns 4, whose one from 127.0.0.1 is the first dialled.
		{"after two made, from 127.0.0.1 and 127.0.0.2", func(i int) bool { return i >= 2 }, timedOut, "", 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A connect times out once all have begun, as through a
			// NAT, where each takes seconds to.
			conns := tc.conns
			var begun atomic.Int32
			all := make(chan struct{})
			connectDial = func(dial func(context.Context, int) (net.Conn, error)) func(context.Context, int) (net.Conn, error) {
				return func(ctx context.Context, i int) (net.Conn, error) {
					if begun.Add(1) == int32(conns) {
						close(all)
					}
					if tc.fails(i) {
						select {
						case <-all:
						case <-ctx.Done():
						}
						return nil, tc.err
					}
					return dial(ctx, i)
				}
			}
			defer func() { connectDial = nil }()
			_, err := Run(context.Background(), Config{Endpoint: e, Conns: conns, SourceIPs: 4})
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasSuffix(err.Error(), tc.err.Error()) {
				t.Fatalf("Run: %v, want an error that says %q and ends with the cause, %v", err, tc.want, tc.err)
			}
			if tc.want == "" {
				if strings.Contains(err.Error(), "127.0.0.1 were made") {
					t.Errorf("Run: %v, which says 127.0.0.1's were made", err)
				}
				return
			}
			flag := func(f string) string { return map[string]string{"SourceIPs": "--source-ips"}[f] }
			if got := named.Text(err, flag); !strings.Contains(got, "use --source-ips 1)") {
				t.Errorf("named by flags: %q, want it to say \"use --source-ips 1)\"", got)
			}
		})
	}
}

// only127001 is a UDP socket that takes datagrams from 127.0.0.1 alone,
// as a server behind a NAT that forwards that source's alone gets them,
// noting every source address it heard from in seen. With oneClient, it
// takes those of one client alone, the first from 127.0.0.1 (its address
// and port), as a server whose socket is connected to its first client
// does (that one from 127.0.0.1, for a test that knows which it is).
type only127001 struct {
	net.PacketConn
	oneClient bool
	mu        sync.Mutex
	seen      map[string]bool
	client    string
}

func (p *only127001) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		n, a, err := p.PacketConn.ReadFrom(b)
		ua, ok := a.(*net.UDPAddr)
		pass := ok && ua.IP.Equal(net.IPv4(127, 0, 0, 1))
		if ok {
			p.mu.Lock()
			p.seen[ua.IP.String()] = true
			if pass && p.oneClient {
				if p.client == "" {
					p.client = ua.String()
				}
				pass = p.client == ua.String()
			}
			p.mu.Unlock()
		}
		if err != nil || pass {
			return n, a, err
		}
	}
}

// Over UDP the same NAT leaves every socket from 127.0.0.2 and up with
// no reply at all: bench said "3 lost" (or that the warm-up's datagrams
// held every socket), and nothing of where they were sent from. The
// verdict says the sockets from the others got none, where 127.0.0.1's
// did, and the way out, --source-ips 1. A run in which a socket sent
// nothing, or 127.0.0.1's got no reply measured (a stalled machine),
// is inconclusive, and run again, a few times at most.
//
// Where one socket came from 127.0.0.1 (up to 16 sockets, by default), a
// server that answers one client alone leaves the same mark when that
// client is 127.0.0.1's: "1 of 2 ... (something between that forwards
// 127.0.0.1's alone ...)", and the server, at fault, looked blameless.
// The verdict names both there, and how to tell them apart; with two
// or more from 127.0.0.1 answered, more clients than one, a NAT alone.
// With one of two from 127.0.0.1 unanswered it says neither: a server
// that answers one client is not a NAT.
func TestUDPUnansweredFromOtherSources(t *testing.T) {
	const nat = "(something between that forwards 127.0.0.1's alone, as a port podman publishes on loopback does, leaves the others unanswered: use SourceIPs 1)"
	const either = "(a server that answers one client alone, as one whose socket is connected to the first it heard from does, leaves the others unanswered, and so does something between that forwards 127.0.0.1's alone, as a port podman publishes on loopback does: with SourceIPs 1, through such a NAT every socket is answered)"
	for _, tc := range []struct {
		name            string
		oneClient       bool
		conns, sources  int
		want, flagNamed string
	}{
		{"a NAT, one socket from 127.0.0.1", false, 4, 4,
			"the sockets from 127.0.0.2 and up, 3 of 4, got no reply at all, where the one from 127.0.0.1 did " + either, "with --source-ips 1,"},
		{"a NAT, two from 127.0.0.1", false, 4, 2,
			"the sockets from 127.0.0.2 and up, 2 of 4, got no reply at all, where those from 127.0.0.1, 2, did " + nat, "use --source-ips 1)"},
		{"one client alone, one socket from 127.0.0.1", true, 2, 0,
			"the sockets from 127.0.0.2 and up, 1 of 2, got no reply at all, where the one from 127.0.0.1 did " + either, "with --source-ips 1,"},
		{"one client alone, two from 127.0.0.1", true, 4, 2, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			const tries = 5
			for try := range tries {
				pc, err := net.ListenPacket("udp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				p := &only127001{PacketConn: pc, oneClient: tc.oneClient, seen: map[string]bool{}}
				srv := &server.Server{Logger: slog.New(slog.DiscardHandler)}
				shouttest.ServePacket(t, srv, p)
				rep, err := Run(context.Background(), Config{
					Endpoint: endpoint.Endpoint{Network: "udp", Address: pc.LocalAddr().String()},
					Conns:    tc.conns, SourceIPs: tc.sources, Duration: 100 * time.Millisecond, Warmup: -1, Timeout: 200 * time.Millisecond,
				})
				if err != nil {
					t.Fatal(err)
				}
				srv.Close()
				p.mu.Lock()
				heard := len(p.seen)
				p.mu.Unlock()
				if addrs := rep.Settings.SourceIPs; heard < addrs || rep.Messages == 0 {
					t.Logf("run %d of at most %d: the server heard from %d of %d addresses, and %d replies were measured (a stalled machine)", try+1, tries, heard, addrs, rep.Messages)
					continue
				}
				if rep.OK() || !strings.Contains(rep.verdict(), tc.want) || rep.UnansweredSources != tc.want {
					t.Errorf("verdict %q, unanswered_sources %q; want it not all right, both saying %q", rep.verdict(), rep.UnansweredSources, tc.want)
				}
				rep.NameSettings(func(f string) string { return map[string]string{"SourceIPs": "--source-ips"}[f] })
				if !strings.Contains(rep.verdict(), tc.flagNamed) {
					t.Errorf("named by flags: %q, want it to say %q", rep.verdict(), tc.flagNamed)
				}
				return
			}
			t.Fatalf("%d runs inconclusive: in each, a socket sent nothing or no reply was measured", tries)
		})
	}
}

// The verdict puts the sockets' silence down to a NAT only when every
// socket sent, each from 127.0.0.1 got a reply and each from the others
// none: one of 127.0.0.1's silent too, or one of the others answered, is
// a server or a path that loses datagrams.
func TestUnansweredSourcesRule(t *testing.T) {
	for _, tc := range []struct {
		name                                     string
		answeredFirst, silentFirst, silentOthers int64
		want                                     bool
	}{
		{"the others silent", 2, 0, 6, true},
		{"one of 127.0.0.1's silent too", 1, 1, 6, false},
		{"one of the others answered", 2, 0, 5, false},
		{"127.0.0.1's unanswered as well", 0, 2, 6, false},
		{"none of the others silent", 8, 0, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &run{cfg: Config{Endpoint: endpoint.Endpoint{Network: "udp", Address: "127.0.0.1:9"}, Conns: 8, SourceIPs: 4}}
			r.answeredFirst.Store(tc.answeredFirst)
			r.silentFirst.Store(tc.silentFirst)
			r.silentOthers.Store(tc.silentOthers)
			if err := r.unansweredSources(); (err != nil) != tc.want {
				t.Errorf("unansweredSources: %v; want one: %v", err, tc.want)
			}
		})
	}
}
