package bench

import (
	"context"
	"net"
	"os"
	"strings"
	"testing"

	"shout/client"
	"shout/endpoint"
	"shout/internal/named"
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
	for _, tc := range []struct {
		name  string
		fails func(i int) bool // the connections that time out
		want  string
	}{
		{"from 127.0.0.2 and up", func(i int) bool { return i%4 != 0 },
			", where those from 127.0.0.1 were made (something between that forwards 127.0.0.1's connections alone, as a port podman publishes on loopback does, leaves the others unanswered: use SourceIPs 1): connect "},
		{"from every source", func(int) bool { return true }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			connectDial = func(dial func(context.Context, int) (net.Conn, error)) func(context.Context, int) (net.Conn, error) {
				return func(ctx context.Context, i int) (net.Conn, error) {
					if tc.fails(i) {
						return nil, timedOut
					}
					return dial(ctx, i)
				}
			}
			defer func() { connectDial = nil }()
			_, err := Run(context.Background(), Config{Endpoint: e, Conns: 8, SourceIPs: 4})
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasSuffix(err.Error(), ": timed out") {
				t.Fatalf("Run: %v, want an error that says %q and ends with the cause, timed out", err, tc.want)
			}
			if tc.fails(0) {
				if strings.Contains(err.Error(), "127.0.0.1 were made") {
					t.Errorf("Run: %v, which says 127.0.0.1's were made", err)
				}
				return
			}
			if got := err.Error(); !strings.Contains(got, ", from 127.0.0.") {
				t.Errorf("Run: %v, want the source named", got)
			}
			flag := func(f string) string { return map[string]string{"SourceIPs": "--source-ips"}[f] }
			if got := named.Text(err, flag); !strings.Contains(got, "use --source-ips 1)") {
				t.Errorf("named by flags: %q, want it to say \"use --source-ips 1)\"", got)
			}
		})
	}
}
