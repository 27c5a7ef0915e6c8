package endpoint

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// busyHost is a loopback address that no other test uses, so that no
// connection's ephemeral port can hold a TCP port the test expects free
// (on 127.0.0.1, after a full test run, one did about 3% of the time).
const busyHost = "127.0.0.77"

func TestListenPair(t *testing.T) {
	ln, pc, err := ListenPair("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	defer pc.Close()
	if ln.Addr().String() != pc.LocalAddr().String() {
		t.Errorf("tcp on %s, udp on %s", ln.Addr(), pc.LocalAddr())
	}
}

// A fixed port whose UDP side is taken: an error, and TCP let go.
func TestListenPairUDPTaken(t *testing.T) {
	addr, busy := udpTakenTCPFree(t)
	defer busy.Close()
	if ln, pc, err := ListenPair(addr); err == nil {
		ln.Close()
		pc.Close()
		t.Fatalf("ListenPair(%s) with its UDP port taken: no error", addr)
	}
	again, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("TCP port left bound after the failure: %v", err)
	}
	again.Close()
}

// udpTakenTCPFree returns an address on busyHost whose UDP port is held by
// the returned socket and whose TCP port was just held by this test and
// let go, so nothing else holds it.
func udpTakenTCPFree(t *testing.T) (string, net.PacketConn) {
	t.Helper()
	for range 20 { // the UDP port may be taken by someone else: try another
		hold, err := net.Listen("tcp", busyHost+":0")
		if err != nil {
			t.Skipf("no loopback address %s here: %v", busyHost, err)
		}
		addr := hold.Addr().String()
		busy, err := net.ListenPacket("udp", addr)
		hold.Close() // a listener that accepted nothing leaves no TIME_WAIT
		if err == nil {
			return addr, busy
		}
	}
	t.Fatalf("no port on %s free for both TCP and UDP in 20 tries", busyHost)
	return "", nil
}

func TestListen(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "s.sock")
	eps := []Endpoint{{Network: "tcp", Address: "127.0.0.1:0"}, {Network: "udp", Address: "127.0.0.1:0"}, {Network: "udp", Address: "127.0.0.1:0"}, {Network: "unix", Address: sock}}
	lns, pcs, err := Listen(eps)
	if err != nil {
		t.Fatal(err)
	}
	defer closeAll(lns, pcs)
	if len(lns) != 2 || len(pcs) != 2 {
		t.Fatalf("got %d listeners and %d packet conns, want 2 and 2", len(lns), len(pcs))
	}
	if lns[0].Addr().String() != pcs[0].LocalAddr().String() {
		t.Errorf("host:port: tcp on %s, udp on %s; want the same port", lns[0].Addr(), pcs[0].LocalAddr())
	}
	if got := lns[1].Addr(); got.Network() != "unix" || got.String() != sock {
		t.Errorf("unix listener on %s %s, want unix %s", got.Network(), got, sock)
	}
	if got := pcs[1].LocalAddr().Network(); got != "udp" {
		t.Errorf("second packet conn is %s, want udp", got)
	}
}

// An endpoint that cannot be opened closes every one opened before it.
func TestListenAllOrNothing(t *testing.T) {
	addr, busy := udpTakenTCPFree(t)
	defer busy.Close()
	sock := filepath.Join(t.TempDir(), "s.sock")
	lns, pcs, err := Listen([]Endpoint{{Network: "tcp", Address: addr}, {Network: "unix", Address: sock}, {Network: "udp", Address: addr}})
	if err == nil {
		closeAll(lns, pcs)
		t.Fatalf("Listen with udp://%s taken: no error", addr)
	}
	if lns != nil || pcs != nil {
		t.Errorf("on error got %v and %v, want nothing", lns, pcs)
	}
	if !strings.Contains(err.Error(), "address already in use") {
		t.Errorf("error %q does not say why", err)
	}
	again, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("TCP left listening after the failure: %v", err)
	}
	again.Close()
	if _, err := os.Stat(sock); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("unix socket file left after the failure: %v", err)
	}
}

func TestListenUnixSocketFile(t *testing.T) {
	dir := t.TempDir()

	// Left by a server that was killed: removed, and listened on again.
	stale := filepath.Join(dir, "stale.sock")
	ln, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	lns, pcs, err := Listen([]Endpoint{{Network: "unix", Address: stale}})
	if err != nil {
		t.Fatalf("stale socket file: %v", err)
	}
	closeAll(lns, pcs)

	// A server answers on it: left alone.
	live := filepath.Join(dir, "live.sock")
	ln, err = net.Listen("unix", live)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if lns, pcs, err := Listen([]Endpoint{{Network: "unix", Address: live}}); err == nil {
		closeAll(lns, pcs)
		t.Fatal("listening where a server answers: no error")
	}
	c, err := net.Dial("unix", live)
	if err != nil {
		t.Fatalf("live socket removed: %v", err)
	}
	c.Close()

	// Not a socket: left alone.
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	// (It said "bind: address already in use", as if a server were there.)
	lns, pcs, err = Listen([]Endpoint{{Network: "unix", Address: file}})
	if err == nil {
		closeAll(lns, pcs)
		t.Fatal("listening on a regular file: no error")
	}
	if want := "listen unix " + file + ": a regular file is there, not a socket: remove it, or choose another path"; err.Error() != want || !errors.Is(err, syscall.EADDRINUSE) && runtime.GOOS != "windows" {
		t.Errorf("listening on a regular file: %v; want %q, wrapping bind's EADDRINUSE", err, want)
	}
	if b, err := os.ReadFile(file); err != nil || string(b) != "keep" {
		t.Errorf("regular file changed: %q, %v", b, err)
	}

	// A symbolic link to nothing: left alone, and said so. (It said
	// "bind: address already in use", and nothing answers there.)
	dangling := filepath.Join(dir, "dangling")
	if err := os.Symlink(filepath.Join(dir, "nothing"), dangling); err != nil {
		t.Skipf("no symbolic links here: %v", err)
	}
	lns, pcs, err = Listen([]Endpoint{{Network: "unix", Address: dangling}})
	if err == nil {
		closeAll(lns, pcs)
		t.Fatal("listening on a link to nothing: no error")
	}
	if want := "listen unix " + dangling + ": a symbolic link to nothing is there, not a socket: remove it, or choose another path"; err.Error() != want {
		t.Errorf("listening on a link to nothing: %v; want %q", err, want)
	}
	if _, err := os.Lstat(dangling); err != nil {
		t.Errorf("link removed: %v", err)
	}
}

// A Unix socket whose directory is missing, or is a file, says which
// path is not a directory and what to do: bind said "no such file or
// directory" and "not a directory", of the socket's path.
func TestListenUnixNoDirectory(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Windows words these its own way")
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, path, want string
		errno            syscall.Errno
	}{
		{"missing", filepath.Join(dir, "missing", "sock"), "no directory " + filepath.Join(dir, "missing") + " to make the socket in: make it, or choose another path", syscall.ENOENT},
		{"a file", filepath.Join(file, "sock"), file + " is not a directory: choose another path", syscall.ENOTDIR},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lns, pcs, err := Listen([]Endpoint{{Network: "unix", Address: tc.path}})
			if err == nil {
				closeAll(lns, pcs)
				t.Fatal("listened")
			}
			if want := "listen unix " + tc.path + ": " + tc.want; err.Error() != want || !errors.Is(err, tc.errno) {
				t.Errorf("%v; want %q, wrapping bind's %v", err, want, tc.errno)
			}
		})
	}
}

func closeAll(lns []net.Listener, pcs []net.PacketConn) {
	for _, l := range lns {
		l.Close()
	}
	for _, p := range pcs {
		p.Close()
	}
}

// A failed listen in words that do not mislead: a name that does not
// resolve without the resolver's address, which read like the listen's
// own, and an address not this machine's said so. The errors are made
// here, as net makes them: a real lookup would leave loopback.
func TestListenErrorWorded(t *testing.T) {
	notFound := &net.OpError{Op: "listen", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: "nosuchhost.invalid", Server: "10.0.0.53:53", IsNotFound: true}}
	timedOut := &net.OpError{Op: "listen", Net: "udp", Err: &net.DNSError{Err: "i/o timeout", Name: "slow.example", Server: "10.0.0.53:53", IsTimeout: true}}
	notHere := &net.OpError{Op: "listen", Net: "tcp", Addr: &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 8080},
		Err: os.NewSyscallError("bind", syscall.EADDRNOTAVAIL)}
	inUse := &net.OpError{Op: "listen", Net: "tcp", Addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080},
		Err: os.NewSyscallError("bind", syscall.EADDRINUSE)}
	// A port below 1024 needs privilege on Unix (Linux's default bound,
	// set here so that a container's does not count): bind says only
	// "permission denied", which a learner running shout serve 80 could
	// not act on. Above it, or on Windows, the cause is another: bind's
	// words alone. The edges: 1023 needs privilege, 1024 does not; port 0
	// (the system picks one, never below the bound) or a Unix socket's
	// path refused is no privileged port, nor is a low port in use.
	setUnprivilegedPort(t, 1024)
	bindErr := func(addr net.Addr, errno syscall.Errno) error {
		return &net.OpError{Op: "listen", Net: addr.Network(), Addr: addr, Err: os.NewSyscallError("bind", errno)}
	}
	tcp := func(port int) net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port} }
	denied := bindErr(tcp(80), syscall.EACCES)
	deniedUDP := bindErr(&net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53}, syscall.EACCES)
	deniedHigh := bindErr(tcp(8080), syscall.EACCES)
	low := lowPortHint(1024, 8080)
	for _, tc := range []struct {
		err        error
		addr, want string
		is         error
	}{
		{denied, "127.0.0.1:80", "listen tcp 127.0.0.1:80: bind: permission denied" + low, syscall.EACCES},
		{deniedUDP, "127.0.0.1:53", "listen udp 127.0.0.1:53: bind: permission denied" + low, syscall.EACCES},
		{deniedHigh, "127.0.0.1:8080", "listen tcp 127.0.0.1:8080: bind: permission denied", syscall.EACCES},
		{bindErr(tcp(1023), syscall.EACCES), "127.0.0.1:1023", "listen tcp 127.0.0.1:1023: bind: permission denied" + low, syscall.EACCES},
		{bindErr(tcp(1024), syscall.EACCES), "127.0.0.1:1024", "listen tcp 127.0.0.1:1024: bind: permission denied", syscall.EACCES},
		{bindErr(tcp(0), syscall.EACCES), "127.0.0.1:0", "listen tcp 127.0.0.1:0: bind: permission denied", syscall.EACCES},
		{bindErr(&net.UnixAddr{Name: "/root/s", Net: "unix"}, syscall.EACCES), "/root/s", "listen unix /root/s: bind: permission denied", syscall.EACCES},
		{bindErr(tcp(80), syscall.EADDRINUSE), "127.0.0.1:80", "listen tcp 127.0.0.1:80: bind: address already in use", syscall.EADDRINUSE},
		{notFound, "nosuchhost.invalid:8080", "listen tcp nosuchhost.invalid:8080: unknown host nosuchhost.invalid", nil},
		{timedOut, "slow.example:53", "listen udp slow.example:53: cannot look up slow.example: i/o timeout", nil},
		{notHere, "192.0.2.1:8080", "listen tcp 192.0.2.1:8080: bind: cannot assign requested address (not an address of this machine)", syscall.EADDRNOTAVAIL},
		{inUse, "127.0.0.1:8080", "listen tcp 127.0.0.1:8080: bind: address already in use", syscall.EADDRINUSE},
	} {
		got := worded(tc.err, tc.addr)
		if got.Error() != tc.want {
			t.Errorf("%v\n  worded %q\n  want   %q", tc.err, got, tc.want)
		}
		if dns := (*net.DNSError)(nil); tc.is == nil && !errors.As(got, &dns) {
			t.Errorf("%q no longer wraps the lookup's error", got)
		}
		if tc.is != nil && !errors.Is(got, tc.is) {
			t.Errorf("%q no longer wraps %v", got, tc.is)
		}
	}
}

// setUnprivilegedPort makes the lowest port a program binds without
// privilege port, for t.
func setUnprivilegedPort(t *testing.T, port int) {
	saved := unprivilegedPort
	t.Cleanup(func() { unprivilegedPort = saved })
	unprivilegedPort = func() int { return port }
}

// lowPortHint is what worded adds to a bind refused below bound, as this
// system words it, suggesting the port such.
func lowPortHint(bound, such int) string {
	need := "root"
	switch runtime.GOOS {
	case "windows":
		return ""
	case "linux":
		need = "CAP_NET_BIND_SERVICE, which root holds unless it was dropped"
	}
	return fmt.Sprintf(" (a port below %d needs %s: choose one from %d up, such as %d)", bound, need, bound, such)
}

// The hint for a port kept for privilege names the bound the system
// keeps, not always 1024: Linux's net.ipv4.ip_unprivileged_port_start is
// 0 in many containers, where bind 80 refused has another cause (it was
// hinted nonetheless, and named 1024), and may be any other port. A port
// at or above the bound never gets the hint.
func TestListenErrorWordedBound(t *testing.T) {
	denied := func(network string, port int) error {
		var addr net.Addr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}
		if network == "udp" {
			addr = &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}
		}
		return &net.OpError{Op: "listen", Net: network, Addr: addr, Err: os.NewSyscallError("bind", syscall.EACCES)}
	}
	for _, tc := range []struct {
		bound   int
		network string
		port    int
		hint    string
	}{
		{512, "tcp", 80, lowPortHint(512, 8080)},
		{512, "tcp", 511, lowPortHint(512, 8080)},
		{512, "udp", 511, lowPortHint(512, 8080)},
		{512, "tcp", 512, ""},
		{512, "udp", 512, ""},
		{512, "tcp", 513, ""},
		{512, "tcp", 1023, ""},
		{0, "tcp", 1, ""},
		{0, "tcp", 80, ""},
		{0, "udp", 53, ""},
		{10000, "tcp", 9999, lowPortHint(10000, 10000)},
		{10000, "tcp", 8080, lowPortHint(10000, 10000)},
		{10000, "tcp", 10000, ""},
		{10000, "tcp", 10001, ""},
	} {
		setUnprivilegedPort(t, tc.bound)
		addr := fmt.Sprintf("127.0.0.1:%d", tc.port)
		want := fmt.Sprintf("listen %s %s: bind: permission denied%s", tc.network, addr, tc.hint)
		if got := worded(denied(tc.network, tc.port), addr); got.Error() != want {
			t.Errorf("bound %d, %s %s:\n  worded %q\n  want   %q", tc.bound, tc.network, addr, got, want)
		}
	}
}

// 0.0.0.0 is every IPv4 address, and no more: Go opens "tcp" and "udp"
// on it as one IPv6 socket that takes both families, so serve 0.0.0.0
// answered on [::1] (and on every IPv6 address a firewall written for
// IPv4 did not cover), and logged [::]:PORT; so did [::ffff:0.0.0.0].
// An empty host stays the dual-stack socket, every interface.
func TestListenIPv4WildcardIsIPv4(t *testing.T) {
	eps := []Endpoint{
		{Network: "tcp", Address: "0.0.0.0:0"}, {Network: "udp", Address: "0.0.0.0:0"}, // a pair
		{Network: "tcp", Address: "0.0.0.0:0"}, // alone, as tls:// is
		{Network: "udp", Address: "0.0.0.0:0"},
		// The same address mapped into IPv6, which Go also took for [::].
		{Network: "tcp", Address: "[::ffff:0.0.0.0]:0"}, {Network: "udp", Address: "[::ffff:0.0.0.0]:0"},
	}
	lns, pcs, err := Listen(eps)
	if err != nil {
		t.Fatal(err)
	}
	defer closeAll(lns, pcs)
	var addrs []net.Addr
	for _, ln := range lns {
		addrs = append(addrs, ln.Addr())
	}
	for _, pc := range pcs {
		addrs = append(addrs, pc.LocalAddr())
	}
	for _, a := range addrs {
		ap, err := netip.ParseAddrPort(a.String())
		if err != nil || ap.Addr() != netip.IPv4Unspecified() {
			t.Errorf("%s %s: want 0.0.0.0 and a port", a.Network(), a)
			continue
		}
		if a.Network() == "tcp" {
			c, err := net.DialTimeout("tcp", netip.AddrPortFrom(netip.IPv6Loopback(), ap.Port()).String(), 5*time.Second)
			if err == nil {
				c.Close()
				t.Errorf("%s accepted a connection to [::1]", a)
			}
		}
	}

	ln, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Logf("no IPv6 here (%v): the dual-stack half is not checked", err)
		return
	}
	ln.Close()
	lns6, pcs6, err := Listen([]Endpoint{{Network: "tcp", Address: ":0"}, {Network: "udp", Address: ":0"}})
	if err != nil {
		t.Fatal(err)
	}
	defer closeAll(lns6, pcs6)
	if got := lns6[0].Addr().String(); !strings.HasPrefix(got, "[::]:") {
		t.Errorf("tcp on :0 listens on %s, want [::]:PORT, both families", got)
	}
}
