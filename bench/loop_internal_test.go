//go:build linux

package bench

import (
	"errors"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"
)

// badSyscallConn is a TCP connection whose socket cannot be taken.
type badSyscallConn struct{ *net.TCPConn }

func (badSyscallConn) SyscallConn() (syscall.RawConn, error) { return nil, errors.New("no raw conn") }

// messagingRun is bareRun with its reference and one distinct message of
// cfg's size: a run a test can hand a loop's connections.
func messagingRun(t *testing.T, cfg *Config) *run {
	t.Helper()
	r := bareRun(cfg)
	ref, err := reference(r.cfg.Mode, r.cfg.Lang)
	if err != nil {
		t.Fatal(err)
	}
	r.ref = ref
	r.msgs, r.wants = r.expected(1, r.cfg.Size)
	return r
}

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

// With Reconnect, a connection refused while measuring whose first reply
// came after the window's end, before a late clock stopped the run,
// served none of the load measured: it is counted not served while
// measuring, as one first served in the wait at the end is. By stopping,
// not by the clock, that reply took it out of trouble, and it was in no
// count.
func TestServedOnlyAfterWindowNotServedMeasuring(t *testing.T) {
	cfg := Config{Reconnect: true, Size: 16}
	r := messagingRun(t, &cfg)
	r.epoch = time.Now()
	r.windowFrom.Store(0)
	r.windowUntil.Store(1) // (over: the reply comes after it, the run not stopping yet)
	l := &loop{r: r, w: r.newWorker()}
	c := &loopConn{sent: 1, trouble: errors.New("the server closed the connection before it served a reply")}
	c.q.push(sentMsg{at: 0, measured: true})
	l.conns = []*loopConn{c}
	l.take(c, r.wants[pick(c.i, 0)], r.now())
	(&loops{ls: []*loop{l}}).countNeverServed()
	if r.neverServed != 1 {
		t.Errorf("%d connections not served while measuring; want 1, its only reply after the window", r.neverServed)
	}
}
