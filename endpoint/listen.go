package endpoint

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"shout/internal/sockerr"
)

// Listen opens every endpoint, or none: on an error it closes what it had
// opened and returns the error as net.Listen words it. A tcp endpoint
// followed by a udp one on the same address (what Parse makes of
// host:port) is opened with ListenPair, so both get the same port even
// when it is 0. A unix endpoint whose socket file was left by a server
// that no longer answers on it is opened again in its place.
//
// Streams (tcp, unix) come back as listeners, datagrams (udp) as packet
// connections, each in the order of eps. A UDP socket asks for a receive
// buffer of UDPReadBuffer.
func Listen(eps []Endpoint) (listeners []net.Listener, packets []net.PacketConn, err error) {
	return Options{}.Listen(eps)
}

// Listen is Listen with the options: tls endpoints (which need o.TLS)
// and, with o.Proxy, TCP ones give listeners whose WrapConn (see
// server.ConnWrapper) reads the PROXY header and does the TLS handshake.
func (o Options) Listen(eps []Endpoint) (listeners []net.Listener, packets []net.PacketConn, err error) {
	var at string // the address being listened on, for worded
	defer func() {
		if err != nil {
			err = heldNotListening(worded(err, at))
			for _, l := range listeners {
				l.Close()
			}
			for _, p := range packets {
				p.Close()
			}
			listeners, packets = nil, nil
		}
	}()
	told := o.watched()
	for i := 0; i < len(eps); i++ {
		e := eps[i]
		at = e.Address
		switch {
		case e.Network == "tcp" && !e.TLS && i+1 < len(eps) && eps[i+1] == (Endpoint{Network: "udp", Address: e.Address}):
			ln, pc, err := listenPair(o, e.Address)
			if err != nil {
				return listeners, packets, err
			}
			listeners, packets = append(listeners, o.wrap(ln, e, told)), append(packets, pc)
			i++
		case e.Network == "udp":
			lc := o.listenConfig(false)
			pc, err := lc.ListenPacket(context.Background(), family("udp", e.Address), e.Address)
			if err != nil {
				return listeners, packets, err
			}
			packets = append(packets, sizeReadBuffer(pc))
		default:
			if e.Network == "unix" {
				removeStaleSocket(e.Address)
			}
			if e.TLS && o.TLS == nil {
				return listeners, packets, fmt.Errorf("listen %s: no certificate for TLS", e)
			}
			var ln net.Listener
			var err error
			if e.Network == "unix" {
				ln, err = net.Listen("unix", e.Address)
			} else {
				ln, err = o.listenTCP(family(e.Network, e.Address), e.Address)
			}
			if err != nil {
				if e.Network == "unix" {
					err = noDirectory(e.Address, notASocket(e.Address, err))
				}
				return listeners, packets, err
			}
			listeners = append(listeners, o.wrap(ln, e, told))
		}
	}
	return listeners, packets, nil
}

// family is network ("tcp", "udp", "unix") as Listen opens it on
// address: tcp4 or udp4 where the host is 0.0.0.0. Go opens
// "tcp" on 0.0.0.0 as one IPv6 socket that takes IPv4 as well, so
// `serve 0.0.0.0:8080` was served on every IPv6 address too, which
// nobody asked for (a firewall written for IPv4 alone does not cover
// it), and logged as [::]:8080. An empty host (":8080") or [::] is the
// dual-stack socket still: every interface, in both families.
func family(network, address string) string {
	if network != "tcp" && network != "udp" {
		return network
	}
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return network
	}
	// [::ffff:0.0.0.0] too: Go takes it for the unspecified address and
	// opens it dual-stack, though what it spells is IPv4's.
	if ip, err := netip.ParseAddr(host); err == nil && ip.Unmap() == netip.IPv4Unspecified() { // any other IPv4 address Go opens as IPv4
		return network + "4"
	}
	return network
}

// worded is err, a failed listen on address, in words that do not
// mislead where the system's do: a name that does not resolve said as
// connect says it, with the address and without the resolver's, which
// read like the listen's own; and an address that is not this
// machine's said so, where bind says only that it "cannot assign
// requested address"; and a port kept for root said so, where bind says
// only "permission denied".
func worded(err error, address string) error {
	var dns *net.DNSError
	var op *net.OpError
	switch {
	case errors.As(err, &dns) && errors.As(err, &op):
		why := "cannot look up " + dns.Name + ": " + dns.Err
		if dns.IsNotFound {
			why = "unknown host " + dns.Name
		}
		return &wordedError{fmt.Sprintf("%s %s %s: %s", op.Op, op.Net, address, why), err}
	case sockerr.AddrNotAvail(err):
		return &wordedError{err.Error() + " (not an address of this machine)", err}
	case errors.Is(err, syscall.EACCES) && runtime.GOOS != "windows" && errors.As(err, &op):
		if hint := privileged(op.Addr); hint != "" {
			return &wordedError{err.Error() + hint, err}
		}
	}
	return err
}

// privileged is the hint for a, a TCP or UDP address bind was refused,
// if its port is below the bound unprivilegedPort says, and so needs a
// privilege the program may not hold: "permission denied" alone did not
// say why shout serve 80 failed. Above the bound the cause is another,
// and the hint is empty.
func privileged(a net.Addr) string {
	port := 0
	switch a := a.(type) {
	case *net.TCPAddr:
		port = a.Port
	case *net.UDPAddr:
		port = a.Port
	}
	bound := unprivilegedPort()
	if port <= 0 || port >= bound {
		return ""
	}
	need := "root"
	if runtime.GOOS == "linux" { // root in a container may lack it
		need = "CAP_NET_BIND_SERVICE, which root holds unless it was dropped"
	}
	return fmt.Sprintf(" (a port below %d needs %s: choose one from %d up, such as %d)", bound, need, bound, max(bound, 8080))
}

// unprivilegedPort is the lowest port a program binds without privilege:
// Linux's net.ipv4.ip_unprivileged_port_start where it can be read (1024
// by default, 0 in many containers), else Unix's 1024. A variable, so
// that a test can set its own.
var unprivilegedPort = func() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_unprivileged_port_start")
	if err != nil {
		return 1024
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || n < 0 || n > 65535 {
		return 1024
	}
	return n
}

// heldNotListening words err, a TCP listen that found its address in
// use, if no socket listens there. bind says only "address already in
// use", which sends one looking for a server; on Linux a connection still
// closing holds the port as well, if its server did not set SO_REUSEADDR
// (as the socket lesson's does not) and hung up first: for a minute, in
// TIME_WAIT. Where the kernel's tables cannot be read (or on other
// systems) bind's words are left as they are.
func heldNotListening(err error) error {
	var op *net.OpError
	if !sockerr.AddrInUse(err) || !errors.As(err, &op) || op.Op != "listen" {
		return err
	}
	at, ok := op.Addr.(*net.TCPAddr)
	if !ok {
		return err
	}
	ip, _ := netip.AddrFromSlice(at.IP)
	if at.IP == nil {
		ip = netip.IPv6Unspecified()
	}
	if found, known := listenerOn(ip, at.Port); found || !known {
		return err
	}
	return &noServerError{wordedError{fmt.Sprintf("%v (no server listens there: a socket that does not listen holds the port, such as a connection that waits out TIME_WAIT, up to a minute, after a server that did not set SO_REUSEADDR hung up first; ss -tan 'sport = :%d' lists such a connection)", err, at.Port), err}}
}

// noServerError is a listen's "address already in use" where no socket
// listens on the address, said so.
type noServerError struct{ wordedError }

// NoServer reports whether err is a TCP listen that found its address in
// use with no socket listening there (on Linux, where Listen looks), and
// says so: a hint that a server there is to blame would mislead.
func NoServer(err error) bool {
	var e *noServerError
	return errors.As(err, &e)
}

// wordedError is an error said in other words; it wraps the original.
type wordedError struct {
	msg string
	err error
}

func (e *wordedError) Error() string { return e.msg }
func (e *wordedError) Unwrap() error { return e.err }

// UDPReadBuffer is the receive buffer a UDP socket of Listen's asks for
// in place of the kernel's default, 208 KiB on Linux (the kernel gives at
// most its limit, net.core.rmem_max): datagrams that come while the server is not
// running, on a busy machine, wait there rather than being dropped, which
// a client would take for loss on the network. Linux counts each
// datagram's whole buffer against it, not its bytes: the default held
// 256 datagrams of 64 bytes here, 4 MiB (which Linux doubles) 10,082. It
// is a bound, not memory taken.
const UDPReadBuffer = 4 << 20

func sizeReadBuffer(pc net.PacketConn) net.PacketConn {
	if b, ok := pc.(interface{ SetReadBuffer(int) error }); ok {
		b.SetReadBuffer(UDPReadBuffer) // as much as the kernel gives, or what it had
	}
	return pc
}

// pairTries bounds how many free ports ListenPair tries when asked for
// port 0 and the UDP port is taken.
const pairTries = 20

// ListenPair listens for TCP and UDP on the same address. With port 0 the
// UDP port is the one TCP got; if another program holds that one for UDP,
// ListenPair tries other free ports.
func ListenPair(address string) (net.Listener, net.PacketConn, error) {
	return listenPair(Options{}, address)
}

func listenPair(o Options, address string) (net.Listener, net.PacketConn, error) {
	_, port, err := net.SplitHostPort(address)
	if err != nil {
		return nil, nil, err
	}
	tries := 1
	if p, err := strconv.Atoi(port); err == nil && p == 0 {
		tries = pairTries
	}
	for try := 1; ; try++ {
		ln, err := o.listenTCP(family("tcp", address), address)
		if err != nil {
			return nil, nil, err
		}
		lc := o.listenConfig(false)
		pc, err := lc.ListenPacket(context.Background(), family("udp", address), ln.Addr().String())
		if err == nil {
			return ln, sizeReadBuffer(pc), nil
		}
		ln.Close()
		if try == tries {
			return nil, nil, err
		}
	}
}

// listenTCP listens on a TCP address as o says. Where the listener's
// keep-alive could not be set, it listens again as net does by default,
// setting keep-alive on each connection: a connection gets it either way.
func (o Options) listenTCP(network, address string) (net.Listener, error) {
	lc := o.listenConfig(false)
	ln, err := lc.Listen(context.Background(), network, address)
	if errors.Is(err, errListenerKeepAlive) {
		lc = o.listenConfig(true)
		ln, err = lc.Listen(context.Background(), network, address)
	}
	return ln, err
}

// removeStaleSocket removes a Unix socket file that no server listens on,
// left by one that was killed, so that a restart can listen there again.
// A file that is not a socket, or a socket that answers or that cannot be
// told stale (a live server whose backlog is full refuses with EAGAIN, not
// ECONNREFUSED), is left alone, and listening then fails, saying why.
func removeStaleSocket(path string) {
	fi, err := os.Stat(path)
	if err != nil || fi.Mode()&os.ModeSocket == 0 {
		return
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return
	}
	if sockerr.Refused(err) {
		os.Remove(path)
	}
}

// notASocket words err, a failure to listen on the Unix socket at path,
// if a file of another kind is there: bind says only "address already
// in use", which sends one looking for a server.
func notASocket(path string, err error) error {
	if !sockerr.AddrInUse(err) {
		return err
	}
	fi, serr := os.Stat(path) // as removeStaleSocket: a link to a socket is a socket
	if serr != nil {
		// A link to nothing: bind does not follow it, and nothing answers.
		if li, lerr := os.Lstat(path); lerr == nil && li.Mode()&os.ModeSymlink != 0 {
			return &notSocketError{path, "symbolic link to nothing", err}
		}
		return err
	}
	if fi.Mode()&os.ModeSocket != 0 {
		return err
	}
	return &notSocketError{path, FileKind(fi.Mode()), err}
}

// noDirectory words err, a failure to listen on the Unix socket at path,
// if the directory to make it in is missing, or is a file: bind says "no
// such file or directory" or "not a directory", of the socket's path.
func noDirectory(path string, err error) error {
	dir := filepath.Dir(path)
	switch {
	case errors.Is(err, syscall.ENOENT):
		return &wordedError{fmt.Sprintf("listen unix %s: no directory %s to make the socket in: make it, or choose another path", path, dir), err}
	case errors.Is(err, syscall.ENOTDIR):
		// The file is the nearest of the directories above that is there.
		for p := dir; ; p = filepath.Dir(p) {
			if fi, serr := os.Stat(p); serr == nil {
				if !fi.IsDir() {
					return &wordedError{fmt.Sprintf("listen unix %s: %s is not a directory: choose another path", path, p), err}
				}
				break
			}
			if filepath.Dir(p) == p {
				break
			}
		}
	}
	return err
}

// notSocketError is a failure to listen on a Unix socket path where a
// file of another kind lies; it wraps bind's error.
type notSocketError struct {
	path, kind string
	err        error
}

func (e *notSocketError) Error() string {
	return fmt.Sprintf("listen unix %s: a %s is there, not a socket: remove it, or choose another path", e.path, e.kind)
}

func (e *notSocketError) Unwrap() error { return e.err }

// FileKind names the kind of file m is, for people: what lies at a Unix
// socket's path instead of a socket.
func FileKind(m os.FileMode) string {
	switch {
	case m.IsDir():
		return "directory"
	case m&os.ModeNamedPipe != 0:
		return "named pipe"
	case m&os.ModeDevice != 0:
		return "device"
	}
	return "regular file"
}
