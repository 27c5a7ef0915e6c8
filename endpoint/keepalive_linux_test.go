package endpoint

import (
	"crypto/tls"
	"net"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"shout/internal/sockfd"
)

// acceptedOptions are the values of opts on a connection accepted from
// the first of lns; it closes lns.
func acceptedOptions(t *testing.T, lns []net.Listener, opts ...sockfd.Option) []int {
	t.Helper()
	defer func() {
		for _, l := range lns {
			l.Close()
		}
	}()
	c, err := net.DialTimeout("tcp", lns[0].Addr().String(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sc, err := lns[0].Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	vs := make([]int, len(opts))
	sockfd.Control(sc, func(fd int) {
		for i, o := range opts {
			if vs[i], err = unix.GetsockoptInt(fd, o.Level, o.Opt); err != nil {
				t.Errorf("option %d: %v", o.Opt, err)
			}
		}
	})
	return vs
}

// checkReusePort fails t unless ln has SO_REUSEPORT where want, and not
// where not: the keep-alive is set beside the options' own.
func checkReusePort(t *testing.T, ln net.Listener, want bool) {
	t.Helper()
	got, err := -1, error(nil)
	sockfd.Control(ln, func(fd int) { got, err = unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT) })
	if err != nil || (got == 1) != want {
		t.Errorf("SO_REUSEPORT %d, %v on the listener; want it set %v", got, err, want)
	}
}

// Every TCP listener of Listen's, whatever its options, is given the
// keep-alive net would give each connection, and net sets it on none:
// a connection has the listener's (here its idle time of 16 s, net's is
// 15 s), and needs no system call for it. A listener that cannot be
// given it is opened again as net does by default, and its connections
// have net's. Either way the listener keeps the options' own SO_REUSEPORT.
func TestListenerKeepAlive(t *testing.T) {
	tcp := []Endpoint{{Network: "tcp", Address: "127.0.0.1:0"}}
	pair := []Endpoint{tcp[0], {Network: "udp", Address: "127.0.0.1:0"}}
	tlsOnly := []Endpoint{{Network: "tcp", Address: "127.0.0.1:0", TLS: true}}
	cases := []struct {
		name string
		opts Options
		eps  []Endpoint
	}{
		{"tcp", Options{}, tcp},
		{"tcp and udp", Options{}, pair},
		{"reuse port", Options{ReusePort: true}, tcp},
		{"reuse port, tcp and udp", Options{ReusePort: true}, pair},
		{"tls", Options{TLS: &tls.Config{}}, tlsOnly},
		{"proxy", Options{Proxy: &Proxy{}}, tcp},
	}
	set := setKeepAlive
	t.Cleanup(func() { setKeepAlive = set })
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			setKeepAlive = func(fd uintptr) error {
				if err := set(fd); err != nil {
					return err
				}
				return unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, 16)
			}
			lns, _, err := tc.opts.Listen(tc.eps)
			if err != nil {
				t.Fatal(err)
			}
			checkReusePort(t, lns[0], tc.opts.ReusePort)
			want := sockfd.KeepAlive
			for i, o := range want {
				if o.Opt == unix.TCP_KEEPIDLE {
					want[i].Value = 16
				}
			}
			got := acceptedOptions(t, lns, want[:]...)
			for i, o := range want {
				if got[i] != o.Value {
					t.Errorf("option %d at %d on an accepted connection; want the listener's %d", o.Opt, got[i], o.Value)
				}
			}

			setKeepAlive = func(uintptr) error { return syscall.ENOPROTOOPT }
			if lns, _, err = tc.opts.Listen(tc.eps); err != nil {
				t.Fatalf("the listener's keep-alive failing: %v; want a listener as net makes it", err)
			}
			checkReusePort(t, lns[0], tc.opts.ReusePort)
			got = acceptedOptions(t, lns, sockfd.KeepAlive[:]...)
			for i, o := range sockfd.KeepAlive {
				if got[i] != o.Value {
					t.Errorf("the listener's keep-alive failing: option %d at %d on an accepted connection; want net's %d", o.Opt, got[i], o.Value)
				}
			}
		})
	}
}
