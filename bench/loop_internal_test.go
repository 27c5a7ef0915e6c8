//go:build linux

package bench

import (
	"errors"
	"net"
	"strings"
	"syscall"
	"testing"
)

// badSyscallConn is a TCP connection whose socket cannot be taken.
type badSyscallConn struct{ *net.TCPConn }

func (badSyscallConn) SyscallConn() (syscall.RawConn, error) { return nil, errors.New("no raw conn") }

// When taking a socket fails after others were taken, the loops give up
// cleanly: the run cannot start, and says why; every socket closed, no
// panic.
func TestStartLoopsFailsAfterATake(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var conns []net.Conn
	for i := range 2 {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		if i == 1 {
			c = badSyscallConn{c.(*net.TCPConn)}
		}
		conns = append(conns, c)
	}
	cfg := Config{}
	r := bareRun(&cfg)
	d, ok, err := r.startLoops(conns)
	if d != nil || !ok || err == nil || !strings.Contains(err.Error(), "no raw conn") {
		t.Errorf("startLoops = %T, %v, %v; want nil, true and the error", d, ok, err)
	}
}
