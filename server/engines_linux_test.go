package server_test

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"golang.org/x/text/transform"

	"shout/admin"
	"shout/endpoint"
	"shout/internal/shouttest"
	"shout/internal/sockerr"
	"shout/server"
	"shout/upper"
)

// FuzzEngines is a differential test of the two drivers: it decodes one
// script of client behaviour from the fuzz input, plays it against a
// server on the event loops and against one with a goroutine per
// connection (same configuration), and compares what each did: the bytes
// each client received, the observer's events for each connection, the
// ConnState changes, the metrics and the kinds of log lines. Each run is
// also checked against a model of what the script must get (the
// uppercase of what was sent, the close reason that fits what the client
// did), so that two engines wrong alike still fail.
//
// The script is deterministic: a client acts only once the server has
// done what the model says it must have (answered every byte, opened or
// closed a connection), waiting on the observer, never on time; so the
// two runs differ only where the engines do. What they may do
// differently, and is normalised out, is said where it is.
func FuzzEngines(f *testing.F) {
	op := func(kind opKind, slot byte) byte { return byte(kind) + byte(numOpKinds)*slot }
	// A seed is a head byte (bit 0: ReadSize 512; bits 1-2: MaxConns;
	// bit 3: MaxConnsPerIP 1; bit 4: short Linger; bits 5-7 all set:
	// IdleTimeout, 110: WriteTimeout), then steps: a step's byte is its kind
	// and its client's slot, and what it needs follows (see decodePlan).
	for _, seed := range [][]byte{
		// a message split inside a character, read in part, the
		// character completed, read in full, then half-close
		{0, op(opWrite, 0), 3, 4, 5, 6, 9, op(opReadSome, 0), 2, op(opWrite, 0), 2, 16, 4, 17, op(opReadAll, 0),
			op(opRaw, 0), 2, 0xa9, 'x', op(opReadSome, 0), 0, op(opHalfClose, 0)},
		// smallest reads: a long line, raw bytes, reset; raw bytes ending
		// inside a character, read, then a close that resets
		{1, op(opWrite, 1), 0x80 | 7, 5, op(opRaw, 1), 6, 0xc3, 0xff, 'a', 0xe5, 0x93, 0xce,
			op(opRaw, 0), 3, 'x', 0xf0, 0x9d, op(opEnd, 1), 1, op(opReadAll, 0), op(opEnd, 0), 0},
		// a client that stops reading, then is reset; another closes with
		// replies unread
		{0, op(opWrite, 0), 0x80 | 15, 3, op(opStopRead, 0), op(opWrite, 0), 3, 4, 5, 6, 7, op(opEnd, 0), 1,
			op(opWrite, 2), 2, 1, 2, 3, op(opEnd, 2), 0},
		// MaxConns 2: a third connection rejected, a place freed, taken
		{2, op(opOpen, 0), op(opOpen, 1), op(opOpen, 2), op(opEnd, 0), 0, op(opOpen, 3), op(opWrite, 3), 1, 4, 5, op(opHalfClose, 3)},
		// MaxConnsPerIP 1: slots 0 and 2 share an address, 1 does not
		{8, op(opOpen, 0), op(opOpen, 1), op(opOpen, 2), op(opWrite, 1), 1, 2, 3, op(opHalfClose, 1)},
		// datagrams, then Shutdown with clients connected, one holding a
		// character: they write on during the linger, then close, reset
		// and half-close
		{0, op(opDatagram, 0), 3, 1, 2, 3, 4, op(opWrite, 0), 1, 4, 5, op(opWrite, 1), 2, 5, 6, 17, op(opDatagram, 1), 1, 6, 7,
			op(opOpen, 2), op(opShutdown, 0), op(opWrite, 0), 2, 3, 4, 5, op(opEnd, 0), 0, op(opEnd, 1), 1, op(opHalfClose, 2)},
		// Shutdown with a short Linger and a client that reads no more:
		// the clients hold on, and the server closes once it has lingered
		{16, op(opWrite, 0), 2, 7, 8, 9, op(opStopRead, 1), op(opWrite, 1), 0x80 | 3, 9, op(opShutdown, 0), op(opWrite, 0), 1, 1, 2},
		// a held character at Shutdown, answered as it is
		{0, op(opRaw, 0), 2, 'a', 0xe2, op(opShutdown, 0), op(opHalfClose, 0)},
		// WriteTimeout: a client floods and is dropped; another, which
		// reads, is answered in full
		{0xc0, op(opWrite, 1), 2, 4, 5, 6, op(opFlood, 0), op(opReadAll, 1), op(opHalfClose, 1)},
		// WriteTimeout: two floods from two addresses, one after the
		// other, while a third client is answered
		{0xc0, op(opWrite, 2), 0, 4, op(opFlood, 0), op(opFlood, 1), op(opWrite, 2), 0, 5, op(opReadAll, 2), op(opEnd, 2), 0},
		// IdleTimeout: a held character answered as it is, and a client
		// that reads no more answered in full
		{0xe0, op(opRaw, 0), 2, 'a', 0xe2, op(opWrite, 1), 1, 4, 5, op(opStopRead, 1)},
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if server.EngineUnderTest() == server.EngineGoroutine && !fuzzing() {
			t.Skip("runs both engines itself: once is enough")
		}
		shouttest.CheckFDs(t)
		p := decodePlan(data)
		t.Logf("%v", p)
		loop := p.run(t, server.EngineLoop)
		if t.Failed() {
			return
		}
		gor := p.run(t, server.EngineGoroutine)
		if t.Failed() {
			return
		}
		compareRuns(t, loop, gor)
	})
}

// A plan is a script decoded from the fuzz input, the same for both runs.
type plan struct {
	readSize      int
	maxConns      int
	maxConnsPerIP int
	shortLinger   bool // a Shutdown's linger ends by time: the clients hold on
	// idle: the server has an IdleTimeout, long enough that it never
	// fires while the script runs, and the clients still connected at
	// its end wait for it instead of half-closing.
	idle bool
	// writeTimeout: the server has a WriteTimeout, and a client may
	// flood it (no other client leaves it more than fits in the sockets'
	// buffers, so the timeout fires only on those that do).
	writeTimeout bool
	ops          []planOp
}

type opKind int

const (
	opOpen      opKind = iota // open the slot's connection, if it has none
	opWrite                   // a message of pieces, or a long line of one
	opRaw                     // raw bytes from the input
	opReadSome                // read n bytes of the replies owed
	opReadAll                 // read every reply owed
	opStopRead                // the client reads no more (until it half-closes)
	opHalfClose               // CloseWrite, read to end of file, close
	opEnd                     // close (n even) or reset (odd)
	opDatagram                // a datagram of pieces, and its reply
	opShutdown                // Shutdown, with clients connected
	opFlood                   // with WriteTimeout: send until the server is stuck, and wait to be dropped (one a plan: planMaxFloods)
	numOpKinds
)

var opNames = [...]string{"open", "write", "raw", "read-some", "read-all", "stop-reading", "half-close", "end", "datagram", "shutdown", "flood"}

type planOp struct {
	kind opKind
	slot int
	data []byte
	n    int
}

func (p *plan) String() string {
	return fmt.Sprintf("ReadSize %d, MaxConns %d, MaxConnsPerIP %d, short Linger %v, idle timeout %v, write timeout %v: %v",
		p.readSize, p.maxConns, p.maxConnsPerIP, p.shortLinger, p.idle, p.writeTimeout, p.ops)
}

func (o planOp) String() string {
	return fmt.Sprintf("%d:%s(%d bytes, n=%d)", o.slot, opNames[o.kind], len(o.data), o.n)
}

// idleTimeout is the IdleTimeout of a plan with one: longer than a
// script takes between two steps of one client, unless the machine
// stalls, which the run notices and skips.
const idleTimeout = 500 * time.Millisecond

// writeTimeout is the WriteTimeout of a plan with one: it fires only on a
// client that floods, so any will do; a short one keeps the runs short.
const writeTimeout = 50 * time.Millisecond

const (
	planSlots    = 4
	planMaxOps   = 64
	maxOwed      = 32 << 10  // replies a client leaves unread: well within the sockets' buffers, so no write blocks
	maxSentTotal = 256 << 10 // bytes one connection is sent in all
)

// planMaxFloods bounds a plan's floods, which take most of its time
// (WriteTimeout each, and what fills the sockets' buffers, fixed at
// floodBuffer): a fuzzing worker gives one input 10 s, both runs
// together, and panics beyond (the fuzzer then says "fuzzing process
// hung or terminated unexpectedly"). With the buffers left to grow, a
// flood took megabytes and a second or more on a loaded machine, and
// two floods took over 10 s once.
const planMaxFloods = 4

func decodePlan(data []byte) *plan {
	next := func() byte {
		if len(data) == 0 {
			return 0
		}
		b := data[0]
		data = data[1:]
		return b
	}
	head := next()
	p := &plan{readSize: 32 << 10}
	if head&1 != 0 {
		p.readSize = 512
	}
	if m := int(head>>1) & 3; m > 0 {
		p.maxConns = m + 1
	}
	if head&8 != 0 {
		p.maxConnsPerIP = 1
	}
	p.shortLinger = head&16 != 0
	p.idle = head&0xe0 == 0xe0 // rarely: it makes a run last the timeout
	p.writeTimeout = head&0xe0 == 0xc0
	floods := 0
	for len(data) > 0 && len(p.ops) < planMaxOps {
		b := next()
		o := planOp{kind: opKind(b % byte(numOpKinds)), slot: int(b/byte(numOpKinds)) % planSlots}
		switch o.kind {
		case opWrite, opDatagram:
			n := next()
			if n&0x80 != 0 && o.kind == opWrite {
				// A long line: one piece over and over, up to 8 KiB.
				piece := pieces[int(next())%len(pieces)]
				o.data = []byte(strings.Repeat(piece, (1+int(n&15))*512/len(piece)))
				break
			}
			for range 1 + int(n)%8 {
				o.data = append(o.data, pieces[int(next())%len(pieces)]...)
			}
		case opRaw:
			n := min(int(next())%16, len(data))
			o.data, data = slices.Clone(data[:n]), data[n:]
		case opReadSome, opEnd:
			o.n = int(next())
		case opFlood:
			if floods++; floods > planMaxFloods {
				continue // dropped
			}
		}
		p.ops = append(p.ops, o)
	}
	return p
}

// dclient is one client connection of a run, with what the model says
// of it.
type dclient struct {
	index int // its place in the order of opening: how runs name it
	c     *net.TCPConn
	addr  string // its local address: the server's Remote
	// gen is how many clients of the run had addr before it: a port is
	// used again once free (a client that resets leaves no TIME_WAIT).
	gen      int
	sent     []byte // what the server reads and answers
	got      []byte
	stopped  bool // reads no more
	rejected bool
	// discarded is what it sent after the server stopped: read and
	// dropped, never answered nor counted.
	discarded int
	flooded   bool          // it flooded the server, which dropped it
	want      server.Reason // why the server must close it
	wantOut   int           // the bytes the server must say it wrote
}

// deadline bounds c's next step, from now. A bound set once, when c
// opened, would count the steps of other clients too (under -race, a
// flood takes seconds) and expire on a client that was only waiting
// its turn.
func (c *dclient) deadline() { c.c.SetDeadline(time.Now().Add(bound)) }

// owed is how many reply bytes the server must have sent c: the
// uppercase of what it sent, but for the end of an incomplete character
// whose uppercase may differ, which the server holds until it is
// complete or the input ends (the upper package says which: one whose
// uppercase cannot differ is answered at once).
func (c *dclient) owed() int {
	n, _ := c.answered()
	return n
}

// answered is what the server's transformer makes of what c sent, before
// the end of input: the reply's length, and how many bytes it holds.
func (c *dclient) answered() (out, held int) {
	var u upper.Transformer
	dst := make([]byte, u.MaxExpansion()*len(c.sent))
	nDst, nSrc, err := u.Transform(dst, c.sent, false)
	if err != nil && err != transform.ErrShortSrc {
		panic(err) // a dst of MaxExpansion times src always takes it
	}
	return nDst, len(c.sent) - nSrc
}

// runResult is what one engine did, normalised to compare.
type runResult struct {
	engine    server.Engine
	clients   []string // per client, in the order of opening
	datagrams []string
	metrics   []string
	logs      []string // lines that belong to no connection
	stop      string   // what Serve, ServePacket and Shutdown returned
}

type drun struct {
	t       *testing.T
	p       *plan
	engine  server.Engine
	srv     *server.Server
	addr    string
	rec     *diffRecorder
	log     *shouttest.Log
	metrics *admin.Metrics
	slot    [planSlots]*dclient
	clients []*dclient
	active  int
	perIP   map[string]int
	udp     net.Conn
	// replies are the datagram replies sent to udp, and lastDatagrams
	// what the observer was told of each datagram.
	replies       map[string]bool
	lastDatagrams []server.DatagramInfo
	stopped       bool
	// finishing: the script is done, and the clients wait for the idle
	// timeout
	finishing bool
	stopErr   chan error
	serveErr  chan error
}

func (p *plan) run(t *testing.T, engine server.Engine) *runResult {
	r := &drun{t: t, p: p, engine: engine, rec: newDiffRecorder(), log: new(shouttest.Log),
		metrics: admin.NewMetrics(admin.Config{}), perIP: map[string]int{}}
	linger := bound // never reached: every client ends, and the server lingers until it does
	if p.shortLinger {
		linger = 20 * time.Millisecond
	}
	logger := slogJSON(r.log)
	r.srv = &server.Server{
		Engine:        engine,
		ReadSize:      p.readSize,
		MaxConns:      p.maxConns,
		MaxConnsPerIP: p.maxConnsPerIP,
		Linger:        linger,
		Logger:        logger,
		// The recorder is told last, so that once a client has seen it
		// told, the log and the metrics were too.
		Observer:  server.Observers(r.metrics, server.NewLogObserver(logger), r.rec),
		ConnState: r.rec.state,
	}
	if p.idle {
		r.srv.IdleTimeout = idleTimeout
	}
	if p.writeTimeout {
		r.srv.WriteTimeout = writeTimeout
	}
	r.srv.StopSourceClock()
	r.serve()
	defer func() {
		for _, c := range r.clients {
			if c.c != nil {
				c.c.Close()
			}
		}
		if r.udp != nil {
			r.udp.Close()
		}
	}()
	for i, o := range p.ops {
		if t.Failed() {
			return nil
		}
		r.step(o)
		if t.Failed() {
			t.Logf("%v: at op %d, %v, of %v", engine, i, o, p.ops)
			return nil
		}
	}
	r.finish()
	if t.Failed() {
		return nil
	}
	return r.result()
}

// serve starts the server on a fresh port, TCP and UDP.
func (r *drun) serve() {
	// endpoint.Listen finds a port free for both.
	eps, err := endpoint.Parse("127.0.0.1:0", "tcp", "udp")
	if err != nil {
		r.t.Fatal(err)
	}
	lns, pcs, err := endpoint.Listen(eps)
	if sockerr.AddrInUse(err) {
		// Every port it tried was taken for UDP: other programs (a
		// bench run at once) hold thousands.
		r.t.Skipf("%v: %v", r.engine, err)
	}
	if err != nil {
		r.t.Fatal(err)
	}
	ln, pc := lns[0], pcs[0]
	if r.p.writeTimeout {
		// The connections it accepts take the listener's buffers: small
		// and fixed, so that a flood fills them with kilobytes, not the
		// megabytes the kernel would grow them to (see flood).
		smallBuffers(r.t, ln.(*net.TCPListener))
	}
	r.addr = ln.Addr().String()
	r.serveErr = make(chan error, 2)
	go func() { r.serveErr <- r.srv.Serve(ln) }()
	go func() { r.serveErr <- r.srv.ServePacket(pc) }()
	r.t.Cleanup(func() { r.srv.Close() })
	// Its line is a run's only one that belongs to no connection: a stop
	// before it would leave it out.
	if !r.log.WaitFor("serving datagrams", bound) {
		r.fatalf("ServePacket did not begin within %v", bound)
	}
}

func (r *drun) fatalf(format string, args ...any) {
	r.t.Helper()
	r.stalled()
	r.intruded()
	r.t.Fatalf("%v: "+format, append([]any{r.engine}, args...)...)
}

// intruded skips the run if a connection came that no client of the
// run made: another process's test, which dialled a port it had found
// free and let go (the fuzzer's other workers, or other packages' tests
// run at once), found this run's server there. Its bytes and its place
// under MaxConns would be counted, and the runs compared no longer ran
// the same script.
func (r *drun) intruded() {
	r.rec.mu.Lock()
	defer r.rec.mu.Unlock()
	ours := map[string]bool{}
	for _, c := range r.clients {
		ours[c.addr] = true
	}
	for addr := range r.rec.conns {
		if !ours[addr] {
			r.t.Skipf("%v: a connection from %s, which no client of the run made", r.engine, addr)
		}
	}
}

// stalled skips the run if the idle timeout closed a connection that
// still had steps to make: the machine stalled for longer than it, and
// the script no longer says what the server must do. (That the timeout
// never fires early is TestIdleTimeoutNeverEarly's to check.)
func (r *drun) stalled() {
	if !r.p.idle || r.finishing {
		return
	}
	r.rec.mu.Lock()
	defer r.rec.mu.Unlock()
	for _, c := range r.slot {
		if c != nil && r.rec.at(c.addr, c.gen).info.Reason == server.ReasonIdleTimeout {
			r.t.Skipf("%v: client %d idle for %v between two steps", r.engine, c.index, idleTimeout)
		}
	}
}

func (r *drun) step(o planOp) {
	c := r.slot[o.slot]
	if o.kind == opDatagram {
		r.datagram(o.data)
		return
	}
	if o.kind == opShutdown {
		r.shutdown()
		return
	}
	if c == nil {
		if r.stopped {
			return // nothing opens once the server has stopped
		}
		if c = r.open(o.slot); c == nil || o.kind == opOpen {
			return
		}
	}
	switch o.kind {
	case opWrite, opRaw:
		r.write(c, o.data)
	case opReadSome:
		if left := c.owed() - len(c.got); left > 0 && !c.stopped && !r.stopped {
			r.read(c, 1+o.n%left)
		}
	case opReadAll:
		if !c.stopped && !r.stopped {
			r.read(c, c.owed()-len(c.got))
		}
	case opStopRead:
		c.stopped = true
	case opHalfClose:
		r.halfClose(c)
	case opEnd:
		r.end(c, o.n%2 == 1)
	case opFlood:
		r.flood(c)
	}
}

// floodBuffer is the size of each socket buffer on a flood's way (the
// client's two, and the server's two in a plan with WriteTimeout): set,
// the kernel does not grow them as they fill.
const floodBuffer = 16 << 10

// smallBuffers fixes c's receive and send buffers at floodBuffer.
func smallBuffers(t *testing.T, c interface {
	SyscallConn() (syscall.RawConn, error)
}) {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		for _, opt := range []int{unix.SO_RCVBUF, unix.SO_SNDBUF} {
			if serr == nil {
				serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, opt, floodBuffer)
			}
		}
	})
	if err = cmp.Or(err, serr); err != nil {
		t.Fatal(err)
	}
}

// flood sends, reading nothing, until the server drops it: once the
// sockets are full, the server is stuck writing a reply and reads no
// more, and WriteTimeout drops the client. How much the sockets took,
// and so how much was answered, is the kernel's to say (even at a fixed
// size, a buffer holds more or less as the data comes in segments): the
// runs compare the reason and the events, and check that what the client got
// is the start of the uppercase of what it sent.
func (r *drun) flood(c *dclient) {
	if !r.p.writeTimeout || r.stopped {
		return
	}
	c.stopped, c.flooded = true, true
	smallBuffers(r.t, c.c)
	chunk := []byte(strings.Repeat("flood ", 64<<10/6))
	// Until the server drops it: the deadline only lets the loop look.
	for range 1024 { // 64 MiB at most; the server is stuck long before
		if r.rec.ended(c.addr, c.gen) {
			break
		}
		c.c.SetWriteDeadline(time.Now().Add(writeTimeout))
		n, err := c.c.Write(chunk)
		c.sent = append(c.sent, chunk[:n]...)
		if errors.Is(err, unix.ECONNRESET) || errors.Is(err, unix.EPIPE) {
			break // dropped
		}
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			r.fatalf("client %d: flood: %v", c.index, err)
		}
	}
	c.c.SetDeadline(time.Now().Add(bound))
	r.rec.waitFor(r.t, c.addr, c.gen, (*connRecord).ended)
	// The server closed with the flood unread: a reset, which may come
	// before the client has read what was sent before it.
	rest, err := io.ReadAll(c.c)
	if err != nil && !errors.Is(err, unix.ECONNRESET) {
		r.fatalf("client %d: read after the flood: %v", c.index, err)
	}
	c.got = append(c.got, rest...)
	if want := ref(string(c.sent)); !strings.HasPrefix(want, string(c.got)) {
		r.fatalf("client %d: flooded, got %d bytes that are not a prefix of the uppercase of the %d it sent: %s", c.index, len(c.got), len(c.sent), diff(c.got, []byte(want)))
	}
	c.want = server.ReasonWriteTimeout
	r.closeClient(c, false)
}

// open connects the slot's client, from 127.0.0.1 or 127.0.0.2 (slots 0
// and 2 share an address, for MaxConnsPerIP), and waits until the server
// has opened or rejected it, which the model says.
func (r *drun) open(slot int) *dclient {
	ip := fmt.Sprintf("127.0.0.%d", 1+slot%2)
	d := net.Dialer{Timeout: bound, LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	nc, err := d.Dial("tcp", r.addr)
	if err != nil {
		r.fatalf("dial: %v", err)
	}
	c := &dclient{index: len(r.clients), c: nc.(*net.TCPConn), addr: nc.LocalAddr().String()}
	for _, o := range r.clients {
		if o.addr == c.addr {
			c.gen++
		}
	}
	c.c.SetDeadline(time.Now().Add(bound))
	r.clients = append(r.clients, c)
	rejected := r.p.maxConns > 0 && r.active >= r.p.maxConns || r.p.maxConnsPerIP > 0 && r.perIP[ip] >= r.p.maxConnsPerIP
	cr := r.rec.waitFor(r.t, c.addr, c.gen, func(cr *connRecord) bool { return cr.opened && len(cr.states) > 0 || cr.ended() })
	if cr.closed != rejected {
		r.fatalf("client %d: rejected %v, want %v (%d open of MaxConns %d, %d from %s of MaxConnsPerIP %d)",
			c.index, cr.closed, rejected, r.active, r.p.maxConns, r.perIP[ip], ip, r.p.maxConnsPerIP)
	}
	if rejected {
		// Its client reads end of file at once, and leaves.
		c.rejected, c.want = true, server.ReasonRejected
		if b, err := io.ReadAll(c.c); err != nil || len(b) > 0 {
			r.fatalf("client %d, rejected: read %q, %v; want end of file", c.index, b, err)
		}
		c.c.Close()
		return nil
	}
	r.active++
	r.perIP[ip]++
	r.slot[slot] = c
	return c
}

// write sends p whole. A client that reads no more sends no more than
// leaves maxOwed unread; one that reads, reads what is owed first.
func (r *drun) write(c *dclient, p []byte) {
	c.deadline()
	if r.stopped {
		if r.p.shortLinger {
			return // the linger may end under the write
		}
		if _, err := c.c.Write(p); err != nil {
			r.fatalf("client %d: write while the server lingers: %v", c.index, err)
		}
		c.discarded += len(p)
		return
	}
	p = p[:min(len(p), maxSentTotal-len(c.sent))]
	if len(p) == 0 {
		return
	}
	// The uppercase of a byte is at most 3 bytes (ΐ is 2 and becomes 6).
	if c.owed()-len(c.got)+3*len(p) > maxOwed {
		if c.stopped {
			return
		}
		r.sync(c)
		r.read(c, c.owed()-len(c.got))
	}
	if _, err := c.c.Write(p); err != nil {
		r.fatalf("client %d: write: %v", c.index, err)
	}
	c.sent = append(c.sent, p...)
}

// read reads n bytes of replies, and checks them.
func (r *drun) read(c *dclient, n int) {
	if n <= 0 {
		return
	}
	b := make([]byte, n)
	c.deadline()
	if _, err := io.ReadFull(c.c, b); err != nil {
		r.fatalf("client %d: read %d bytes: %v (got %d of %d owed)", c.index, n, err, len(c.got), c.owed())
	}
	c.got = append(c.got, b...)
	if want := ref(string(c.sent)); !strings.HasPrefix(want, string(c.got)) {
		r.fatalf("client %d: got %d bytes that are not a prefix of the uppercase of the %d it sent: %s", c.index, len(c.got), len(c.sent), diff(c.got, []byte(want)))
	}
}

// sync waits until the server has answered everything c sent but an
// incomplete character at the end.
func (r *drun) sync(c *dclient) {
	r.t.Helper()
	owed := int64(c.owed())
	cr := r.rec.waitFor(r.t, c.addr, c.gen, func(cr *connRecord) bool { return cr.replied >= owed || cr.closed })
	if cr.replied != owed {
		r.fatalf("client %d: sent %d bytes: the server replied %d bytes, want %d", c.index, len(c.sent), cr.replied, owed)
	}
}

// halfClose shuts c's write side and reads every reply, then end of file.
func (r *drun) halfClose(c *dclient) {
	if !r.stopped {
		r.sync(c)
		c.want, c.wantOut = server.ReasonEOF, len(ref(string(c.sent)))
	}
	if err := c.c.CloseWrite(); err != nil {
		r.fatalf("client %d: CloseWrite: %v", c.index, err)
	}
	r.readToEOF(c)
	r.closeClient(c, false)
}

// readToEOF reads the rest of the replies, which must make the uppercase
// of everything sent (a held character answered as it is), then end of
// file.
func (r *drun) readToEOF(c *dclient) {
	c.deadline()
	rest, err := io.ReadAll(c.c)
	if err != nil {
		r.fatalf("client %d: read to end of file: %v", c.index, err)
	}
	c.got = append(c.got, rest...)
	if want := ref(string(c.sent)); string(c.got) != want {
		r.fatalf("client %d: sent %d bytes, got %d, want %d: %s", c.index, len(c.sent), len(c.got), len(want), diff(c.got, []byte(want)))
	}
}

// end closes c, or resets it. A close with replies unread, or with a
// character held (whose reply would come after the client has gone),
// makes a reset too.
func (r *drun) end(c *dclient, reset bool) {
	if !r.stopped {
		r.sync(c)
		c.want, c.wantOut = server.ReasonEOF, len(ref(string(c.sent)))
		if _, held := c.answered(); reset || len(c.got) < c.owed() || held > 0 {
			reset = true
			c.want, c.wantOut = server.ReasonReset, c.owed()
		}
	}
	r.closeClient(c, reset)
}

// closeClient closes c, resetting it or not, and waits until the server
// has closed its end, so that its place is free for the model's count.
func (r *drun) closeClient(c *dclient, reset bool) {
	if reset {
		c.c.SetLinger(0)
	}
	c.c.Close()
	c.c = nil
	r.rec.waitFor(r.t, c.addr, c.gen, (*connRecord).ended)
	r.active--
	r.perIP[strings.Split(c.addr, ":")[0]]--
	for i, s := range r.slot {
		if s == c {
			r.slot[i] = nil
		}
	}
}

// shutdown stops the server with its clients connected, once it has
// answered what each sent: each gets every reply, a held character as it
// is, then end of file; the server lingers on them until they end.
func (r *drun) shutdown() {
	if r.stopped {
		return
	}
	for _, c := range r.slot {
		if c != nil {
			r.sync(c)
		}
	}
	r.stopped = true
	r.stopErr = make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*bound)
		defer cancel()
		r.stopErr <- r.srv.Shutdown(ctx)
	}()
	for _, c := range r.slot {
		if c == nil {
			continue
		}
		c.want, c.wantOut = server.ReasonShutdown, len(ref(string(c.sent)))
		r.readToEOF(c)
		if r.p.shortLinger {
			// The client holds on: the server closes once it has lingered.
			r.rec.waitFor(r.t, c.addr, c.gen, (*connRecord).ended)
		}
	}
}

// datagram sends p from the run's UDP client and reads the reply. The
// kernel may drop the datagram, or its reply, on loopback (the backlog a
// burst of other tests' datagrams fills: see udpClient.exchange), and
// counts it: then, once bound has passed with no reply, a datagram the
// observer was not told of is sent again (udpSends times at most), and a
// reply it was told of as sent is not awaited. Only once bound has
// passed: a datagram that was slow, not dropped, and sent again would be
// told of twice, and the engines' runs would differ. Without a drop
// counted, no reply is a failure, as before.
func (r *drun) datagram(p []byte) {
	if r.stopped {
		return
	}
	if r.udp == nil {
		var err error
		if r.udp, err = net.Dial("udp", r.addr); err != nil {
			r.fatalf("dial udp: %v", err)
		}
	}
	local, remote := port(r.udp.LocalAddr()), port(r.udp.RemoteAddr())
	drops := kernelDrops(local, remote)
	// One that equals a reply just sent to its source is that reply
	// come back, from an echo service: a loop, dropped (the source clock
	// is stopped, so it is always just sent).
	want, loop := ref(string(p)), r.replies[string(p)]
	var got server.DatagramInfo
	for sends := 1; ; sends++ {
		before := drops()
		r.udp.SetDeadline(time.Now().Add(bound))
		if _, err := r.udp.Write(p); err != nil {
			r.fatalf("datagram: %v", err)
		}
		replied := false
		if !loop {
			b := make([]byte, 64<<10)
			n, err := r.udp.Read(b)
			if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
				r.fatalf("datagram of %d bytes: %v", len(p), err)
			}
			if replied = err == nil; replied && string(b[:n]) != want {
				r.fatalf("datagram %q: reply %q, want %q", p, b[:n], want)
			}
		}
		// Told of once its reply is sent, or once it is dropped: one at
		// a time, so that the list's order is the script's. (With no
		// reply, bound has passed: told of by now, or never.)
		wait := bound
		if !loop && !replied {
			wait = 0
		}
		var told bool
		got, told = r.rec.datagramWithin(len(r.lastDatagrams), wait)
		dropped := drops() - before
		switch {
		case told && (replied || loop):
		case told && dropped > 0:
			r.t.Logf("datagram of %d bytes: no reply in %v, and the kernel dropped %d datagrams meanwhile (the loopback backlog, the sockets on ports %d and %d): its reply, told of as sent, not awaited",
				len(p), bound, dropped, local, remote)
		case told:
			r.fatalf("datagram of %d bytes: no reply in %v, though the observer was told of it as %v, and the kernel dropped none", len(p), bound, got.Reason)
		case !replied && dropped > 0 && sends < udpSends:
			r.t.Logf("datagram of %d bytes: neither answered nor told of in %v, and the kernel dropped %d datagrams meanwhile (the loopback backlog, the sockets on ports %d and %d): sent again",
				len(p), bound, dropped, local, remote)
			continue
		default:
			r.fatalf("datagram of %d bytes: the observer was told of %d datagrams within %v, want %d (sent %d times, %d dropped by the kernel meanwhile)",
				len(p), len(r.lastDatagrams), bound, len(r.lastDatagrams)+1, sends, dropped)
		}
		break
	}
	if !loop {
		if r.replies == nil {
			r.replies = map[string]bool{}
		}
		r.replies[want] = true
	}
	r.lastDatagrams = append(r.lastDatagrams, got)
	if (got.Reason == server.ReasonLoop) != loop || !loop && got.Reason != server.ReasonNone {
		r.fatalf("datagram %q: %v, want a loop: %v", p, got.Reason, loop)
	}
}

// finish ends every client still connected (with a half-close, or at the
// server's stop with a close), stops the server and checks every
// connection against the model.
func (r *drun) finish() {
	r.stalled()
	r.intruded()
	r.finishing = true
	for _, c := range r.slot {
		if c == nil {
			continue
		}
		switch {
		case r.p.idle && !r.stopped:
			// The server closes it gracefully once it has been idle long
			// enough: it answers a held character as it is.
			r.readToEOF(c)
			c.want, c.wantOut = server.ReasonIdleTimeout, len(ref(string(c.sent)))
			r.closeClient(c, false)
		case r.stopped:
			r.closeClient(c, false)
		default:
			r.halfClose(c)
		}
	}
	if !r.stopped {
		r.stopped = true
		r.stopErr = make(chan error, 1)
		ctx, cancel := context.WithTimeout(context.Background(), bound)
		defer cancel()
		r.stopErr <- r.srv.Shutdown(ctx)
	}
	for _, c := range r.clients {
		cr := r.rec.waitFor(r.t, c.addr, c.gen, (*connRecord).ended)
		ci := cr.info
		if r.p.idle && ci.Reason == server.ReasonIdleTimeout && c.want != ci.Reason {
			r.t.Skipf("%v: client %d idle for %v between two steps", r.engine, c.index, idleTimeout)
		}
		if ci.Reason != c.want {
			r.t.Errorf("%v: client %d: closed for %v (%v), want %v", r.engine, c.index, ci.Reason, ci.Err, c.want)
		}
		if c.rejected || c.flooded {
			continue
		}
		if ci.BytesIn != int64(len(c.sent)) || ci.BytesOut != int64(c.wantOut) {
			r.t.Errorf("%v: client %d: sent %d (and %d after the stop), the server counts %d in and %d out, want %d out",
				r.engine, c.index, len(c.sent), c.discarded, ci.BytesIn, ci.BytesOut, c.wantOut)
		}
		if cr.read != ci.BytesIn || cr.replied != ci.BytesOut {
			r.t.Errorf("%v: client %d: the observer was told of %d bytes read and %d replied, the close says %d and %d",
				r.engine, c.index, cr.read, cr.replied, ci.BytesIn, ci.BytesOut)
		}
	}
}

func (r *drun) result() *runResult {
	res := &runResult{engine: r.engine}
	// What Serve, ServePacket and Shutdown returned.
	errs := []string{fmt.Sprint(<-r.stopErr), fmt.Sprint(<-r.serveErr), fmt.Sprint(<-r.serveErr)}
	res.stop = strings.Join(errs, "; ")
	select {
	case <-r.rec.stopped:
	case <-time.After(bound):
		r.t.Errorf("%v: no ServerStopped within %v", r.engine, bound)
	}
	r.intruded()
	lines, rest := r.logLines()
	r.rec.mu.Lock()
	defer r.rec.mu.Unlock()
	flooded := false
	for _, c := range r.clients {
		var logs []string // a rejected client has no lines of its own
		if segs := lines[c.addr]; !c.rejected && len(segs) > 0 {
			logs, lines[c.addr] = segs[0], segs[1:]
		}
		cr := r.rec.at(c.addr, c.gen)
		got, in, out := fmt.Sprintf("%d bytes %q", len(c.got), shorten(c.got)), cr.info.BytesIn, cr.info.BytesOut
		if c.flooded {
			// How much the sockets took is the kernel's (see flood).
			got, in, out = "what it got of a flood", -1, -1
			for i, l := range logs {
				logs[i] = byteCounts.ReplaceAllString(l, "$1=N")
			}
			flooded = true
		}
		res.clients = append(res.clients, fmt.Sprintf("client %d: got %s; events %s; states %v; close %v in %d out %d err %v; logs %v",
			c.index, got, cr.events(), cr.states, cr.info.Reason, in, out, errClass(cr.info.Err), logs))
	}
	// Datagrams are told of once their reply is sent, by more than one
	// worker: the next may be told of first.
	res.datagrams = slices.Sorted(slices.Values(r.rec.datagrams))
	for addr, segs := range lines {
		for _, seg := range segs {
			rest = append(rest, fmt.Sprintf("a connection from %s no client made: %v", addr, seg))
		}
	}
	sort.Strings(rest) // a datagram's line may come before the one before it's
	res.logs = rest
	res.metrics = gatherCounters(r.t, r.metrics)
	if flooded {
		res.metrics = slices.DeleteFunc(res.metrics, func(m string) bool {
			return strings.Contains(m, "_bytes_total{transport=tcp}") // what the kernel took of a flood
		})
	}
	return res
}

// byteCounts are the byte counts of a close's log line.
var byteCounts = regexp.MustCompile(`(bytes_in|bytes_out)=[0-9.e+]+`)

// logLines are the kinds of the log's lines: their level, message and
// keys, and the values that do not depend on time or on addresses. Those
// of each connection come by the remote address they name, one list for
// each connection from it, which begins at its "open" line. Consecutive
// "message" lines are one: how many reads a message took is the
// driver's to choose (the loop reads up to ReadSize at once, a goroutine
// starts at 1 KiB and grows). The rest come in a list of their own, with
// "connection rejected" once whatever its count: it is logged once a
// second at most, so its count depends on the clock.
func (r *drun) logLines() (conns map[string][][]string, rest []string) {
	conns = map[string][][]string{}
	rejected := false
	for _, l := range strings.Split(strings.TrimSpace(r.log.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			r.t.Errorf("%v: log line %q: %v", r.engine, l, err)
			continue
		}
		var keys []string
		for k, v := range m {
			switch k {
			case "msg", "level":
			case "time", "remote", "local", "duration":
				keys = append(keys, k)
			case "rejected_total", "total":
				keys = append(keys, k) // counts of the once-a-second limit
			default:
				keys = append(keys, fmt.Sprintf("%s=%v", k, v))
			}
		}
		sort.Strings(keys)
		kind := fmt.Sprintf("%v %v %v", m["level"], m["msg"], keys)
		remote, _ := m["remote"].(string)
		switch m["msg"] {
		case "connection rejected":
			if !rejected {
				rest = append(rest, kind)
			}
			rejected = true
			continue
		case "message":
			kind = fmt.Sprintf("%v %v", m["level"], m["msg"]) // its size and data are the read's
		case "open":
			conns[remote] = append(conns[remote], nil)
		}
		segs := conns[remote]
		if remote == "" || m["msg"] == "datagram" || len(segs) == 0 {
			rest = append(rest, kind)
			continue
		}
		seg := &segs[len(segs)-1]
		if n := len(*seg); n > 0 && (*seg)[n-1] == kind && m["msg"] == "message" {
			continue
		}
		*seg = append(*seg, kind)
	}
	return conns, rest
}

// gatherCounters is every shout series but those that count messages (a
// read, and its reply: how many reads a message took is the driver's to
// choose), and the build's and the log's own.
func gatherCounters(t *testing.T, m *admin.Metrics) []string {
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range fams {
		name := f.GetName()
		if !strings.HasPrefix(name, "shout_") || strings.HasSuffix(name, "_messages_total") ||
			name == "shout_build_info" || name == "shout_log_records_dropped_total" {
			continue
		}
		for _, mt := range f.GetMetric() {
			var labels []string
			for _, l := range mt.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			v := mt.GetCounter().GetValue() + mt.GetGauge().GetValue()
			out = append(out, fmt.Sprintf("%s{%s} %v", name, strings.Join(labels, ","), v))
		}
	}
	sort.Strings(out)
	return out
}

func shorten(b []byte) []byte {
	if len(b) > 32 {
		return b[len(b)-32:]
	}
	return b
}

// errClass is what a close's error says, without the addresses a
// socket's error names.
func errClass(err error) string {
	switch {
	case err == nil:
		return "nil"
	case errors.Is(err, server.ErrMaxConns):
		return "max conns"
	case errors.Is(err, server.ErrMaxConnsPerIP):
		return "max conns per ip"
	}
	return fmt.Sprintf("%T", err)
}

func compareRuns(t *testing.T, a, b *runResult) {
	t.Helper()
	cmpList := func(what string, x, y []string) {
		for i := range max(len(x), len(y)) {
			var u, v string
			if i < len(x) {
				u = x[i]
			}
			if i < len(y) {
				v = y[i]
			}
			if u != v {
				t.Errorf("%s %d differs:\n%v: %s\n%v: %s", what, i, a.engine, u, b.engine, v)
			}
		}
	}
	cmpList("client", a.clients, b.clients)
	cmpList("datagram", a.datagrams, b.datagrams)
	cmpList("metric", a.metrics, b.metrics)
	cmpList("log line", a.logs, b.logs)
	if a.stop != b.stop {
		t.Errorf("the stop returned:\n%v: %s\n%v: %s", a.engine, a.stop, b.engine, b.stop)
	}
}

// diffRecorder keeps each connection's observer events and ConnState
// changes, by the client's address.
type diffRecorder struct {
	mu        sync.Mutex
	conns     map[string][]*connRecord // by address, in the order of connection
	datagrams []string
	dgInfo    []server.DatagramInfo
	changed   chan struct{}
	stopped   chan struct{}
}

type connRecord struct {
	raw            []byte // o open, r read, p reply, e reply cut short, c close, then anything after it
	opened, closed bool
	read, replied  int64
	info           server.ConnInfo
	states         []server.ConnState
	stateDone      bool // closed or rejected, as the ConnState hook sees it
}

// ended reports whether the connection is closed, as the observer and
// the ConnState hook (told after it) see it.
func (cr *connRecord) ended() bool { return cr.closed && cr.stateDone }

// events is the sequence of observer events, each run of reads and
// replies one "data": how many reads a message took is the driver's to
// choose, and a read that ends inside a character is answered with the
// next, or at the end of input.
func (cr *connRecord) events() string {
	var out []string
	raw := string(cr.raw)
	for len(raw) > 0 {
		switch {
		case strings.HasPrefix(raw, "rp"):
			raw = strings.TrimLeft(raw, "rp")
			out = append(out, "data")
			continue
		case raw[0] == 'o':
			out = append(out, "open")
		case raw[0] == 'c':
			out = append(out, "close")
		case raw[0] == 'p':
			out = append(out, "held reply")
		default:
			out = append(out, string(raw[0]))
		}
		raw = raw[1:]
	}
	return strings.Join(out, ",")
}

var _ server.ReplyObserver = (*diffRecorder)(nil)
var _ server.StopObserver = (*diffRecorder)(nil)

func newDiffRecorder() *diffRecorder {
	return &diffRecorder{conns: map[string][]*connRecord{}, changed: make(chan struct{}, 1), stopped: make(chan struct{})}
}

// obsAt is the record the next observer event from addr belongs to: the
// first whose close the observer has not told.
func (d *diffRecorder) obsAt(addr string) *connRecord {
	for _, cr := range d.conns[addr] {
		if !cr.closed {
			return cr
		}
	}
	return d.at(addr, len(d.conns[addr]))
}

// at is the gen'th record of addr.
func (d *diffRecorder) at(addr string, gen int) *connRecord {
	for len(d.conns[addr]) <= gen {
		d.conns[addr] = append(d.conns[addr], &connRecord{})
	}
	return d.conns[addr][gen]
}

func (d *diffRecorder) event(c *server.ConnInfo, f func(cr *connRecord)) {
	d.mu.Lock()
	f(d.obsAt(c.Remote.String()))
	d.mu.Unlock()
	d.signal()
}

// signal wakes waitFor.
func (d *diffRecorder) signal() {
	select {
	case d.changed <- struct{}{}:
	default:
	}
}

func (d *diffRecorder) ConnOpen(c *server.ConnInfo) {
	d.event(c, func(cr *connRecord) { cr.raw = append(cr.raw, 'o'); cr.opened = true })
}

func (d *diffRecorder) ConnRead(c *server.ConnInfo, p []byte) {
	d.event(c, func(cr *connRecord) { cr.raw = append(cr.raw, 'r'); cr.read += int64(len(p)) })
}

func (d *diffRecorder) ConnReply(c *server.ConnInfo, n int, err error) {
	d.event(c, func(cr *connRecord) {
		if err != nil {
			cr.raw = append(cr.raw, 'e')
		} else {
			cr.raw = append(cr.raw, 'p')
		}
		cr.replied += int64(n)
	})
}

func (d *diffRecorder) ConnClose(c *server.ConnInfo) {
	d.event(c, func(cr *connRecord) { cr.raw = append(cr.raw, 'c'); cr.closed = true; cr.info = *c })
}

func (d *diffRecorder) Datagram(g *server.DatagramInfo) {
	d.mu.Lock()
	d.datagrams = append(d.datagrams, fmt.Sprintf("%d bytes in, %d out, %v, %v", len(g.Data), g.BytesOut, g.Reason, g.Err))
	d.dgInfo = append(d.dgInfo, server.DatagramInfo{BytesOut: g.BytesOut, Reason: g.Reason, Err: g.Err})
	d.mu.Unlock()
	d.signal()
}

// datagramWithin waits until the observer has been told of the i'th
// datagram, for d at most, and returns what it was told, and whether it
// was.
func (d *diffRecorder) datagramWithin(i int, wait time.Duration) (server.DatagramInfo, bool) {
	timeout := time.After(wait)
	for {
		d.mu.Lock()
		if len(d.dgInfo) > i {
			defer d.mu.Unlock()
			return d.dgInfo[i], true
		}
		d.mu.Unlock()
		select {
		case <-d.changed:
		case <-timeout:
			d.mu.Lock()
			defer d.mu.Unlock()
			if len(d.dgInfo) > i {
				return d.dgInfo[i], true
			}
			return server.DatagramInfo{}, false
		}
	}
}

func (d *diffRecorder) ServerStopped() { close(d.stopped) }

func (d *diffRecorder) state(nc net.Conn, s server.ConnState) {
	d.mu.Lock()
	addr := nc.RemoteAddr().String()
	cr := d.at(addr, len(d.conns[addr]))
	for _, o := range d.conns[addr] {
		if !o.stateDone {
			cr = o
			break
		}
	}
	cr.states = append(cr.states, s)
	cr.stateDone = s != server.StateNew
	d.mu.Unlock()
	d.signal()
}

// ended reports whether the gen'th connection from addr has ended.
func (d *diffRecorder) ended(addr string, gen int) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.at(addr, gen).ended()
}

// waitFor waits until the gen'th connection from addr is as done says,
// and returns a copy of its record.
func (d *diffRecorder) waitFor(t *testing.T, addr string, gen int, done func(*connRecord) bool) connRecord {
	t.Helper()
	timeout := time.After(bound)
	for {
		d.mu.Lock()
		cr := *d.at(addr, gen)
		d.mu.Unlock()
		if done(&cr) {
			return cr
		}
		select {
		case <-d.changed:
		case <-timeout:
			t.Fatalf("client %s: the server did not get there within %v; its events: %q", addr, bound, cr.raw)
		}
	}
}
