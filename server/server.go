package server

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/text/transform"

	"shout/internal/named"
	"shout/upper"
)

// ErrServerClosed is returned by Serve and ServePacket after Shutdown or
// Close.
var ErrServerClosed = errors.New("server: closed")

// The errors beside ReasonRejected: which limit turned a connection away,
// MaxConns or MaxConnsPerIP. Their text names the Server's field: a
// program that sets it from a flag of its own can name that flag in its
// log instead (NewLogObserver logs the error itself, for errors.Is), and
// in its trace (NewNamedTraceObserver).
var (
	ErrMaxConns      error = named.Errorf("server: connection limit reached (%s)", named.Setting("MaxConns"))
	ErrMaxConnsPerIP error = named.Errorf("server: connection limit for one address, or one IPv6 /64, reached (%s)", named.Setting("MaxConnsPerIP"))
)

// ConnState is a stream connection's state, as the ConnState hook sees it.
type ConnState int

const (
	// StateNew: the connection was admitted and will be served.
	StateNew ConnState = iota
	// StateClosed: the connection is closed, and with a goroutine per
	// connection its goroutine is done.
	StateClosed
	// StateRejected: the connection was over a limit, and its client can
	// read end of file; the server may still linger on it before it
	// closes, as on a graceful close.
	StateRejected
)

var stateNames = [...]string{"new", "closed", "rejected"}

func (c ConnState) String() string {
	if c < 0 || int(c) >= len(stateNames) {
		return fmt.Sprintf("ConnState(%d)", int(c))
	}
	return stateNames[c]
}

// Expander is implemented by a Transformer that can say how many bytes it
// writes at most for each byte it reads (*upper.Transformer does), so that
// reply buffers are sized to fit. A claim over MaxExpansionLimit is taken
// as MaxExpansionLimit, and one under 1 as 1: a claim sizes buffers, and
// more than that limit would overflow their size or ask for terabytes.
// A reply that does not fit its buffer is written in parts; only the
// reply to the bytes held at the end of input (an incomplete character,
// at most 256) must fit 256 times the claim so taken, or the connection
// ends with the Transformer's transform.ErrShortDst.
type Expander interface {
	MaxExpansion() int
}

// MaxExpansionLimit is the largest MaxExpansion the server sizes reply
// buffers by: the bytes held at the end of input (at most 256) times it
// is 16 MiB, the largest buffer the server pools.
const MaxExpansionLimit = 1 << 16

// Server answers streams and datagrams with their uppercase. The zero value
// is a valid configuration: full Unicode uppercase, the default per-source
// datagram budget, no connection limits, logs to slog.Default(). Fields
// must not change once serving has begun.
//
// A Server is built from parts that each do one thing: a session holds one
// connection's state and transforms its bytes; a driver moves the bytes of
// sessions (event loops, or a goroutine per connection for any net.Conn:
// see Engine); Observers watch what happens, and logging is one of them.
// WrapConn wraps what is accepted before it is served.
type Server struct {
	// Transformer maps what clients send, by x/text's transform contract.
	// Nil means the zero upper.Transformer: full Unicode uppercase. It is
	// shared by every connection and datagram worker, so it must keep no
	// state between calls (*upper.Transformer and x/text's cases.Upper
	// keep none) or be safe for concurrent use. If it implements Expander,
	// reply buffers are sized by it.
	Transformer transform.Transformer

	// MaxConns is the most stream connections served at once. One more is
	// rejected: its write side is shut at once (the client reads end of
	// file) and what it sends is read and discarded for up to Linger, so
	// the close sends no reset; meanwhile it counts against neither limit.
	// Past 256 rejected connections lingering at once, another is closed
	// at once (a client that had sent reads a reset). Zero or negative
	// means no limit.
	MaxConns int

	// MaxConnsPerIP is the most stream connections from one IP address
	// (for IPv6, one /64 network), counted after WrapConn so that a PROXY
	// protocol's client address counts. Over it a connection is rejected
	// as over MaxConns is. Zero or negative means no limit.
	MaxConnsPerIP int

	// IdleTimeout closes a stream connection that sends nothing for this
	// long, gracefully (an incomplete character is answered as it is, the
	// write side shut, then Linger). Zero or negative means no timeout.
	// Timeouts are checked every eighth of the shortest (within 5 ms and
	// 1 s), so one fires after between its value and one check more.
	IdleTimeout time.Duration

	// WriteTimeout drops a stream connection whose reply cannot be
	// written for this long: a client that stops reading. On Linux a
	// client that takes some of the socket's send queue within it is not
	// dropped, however slowly it reads, even while the kernel, which
	// wakes a blocked write only once a third of the send buffer is free,
	// holds the reply back; elsewhere the write's time alone counts.
	// Until then it holds one buffer of at most 2×ReadSize and reads
	// nothing more. A TCP connection (under TLS too) is dropped with a
	// reset: its client reads the reset, not the replies queued and then
	// end of file, a reply cut short it could not tell from a whole one,
	// and the kernel frees them at once. A Unix socket has no reset: its
	// client reads what was queued, then end of file, or on Linux, if it
	// sent more than was read, ECONNRESET (Linux's word to a Unix
	// socket's peer closed with data unread). Zero or negative means no
	// timeout.
	WriteTimeout time.Duration

	// Linger bounds a graceful close, which shuts the write side after
	// the last reply and reads and discards until the client's end of
	// file: it waits Linger after the client's input stops, and while
	// replies are still queued as long as the client takes some within
	// WriteTimeout (or Linger, if longer or without one); 30 Lingers at
	// most, and then it closes with the replies still queued after a FIN,
	// as the kernel goes on delivering them. A close with unread input
	// makes the kernel send a reset, which drops the replies still
	// queued; this is what prevents it. But on Linux, with WriteTimeout
	// set, replies still queued over TCP for a client that took none of
	// them for WriteTimeout are reset away, not left to the kernel on a
	// closed socket no limit counts. After a TCP client's end of file
	// with replies still queued (Linger and WriteTimeout set; TLS or not,
	// on Linux), the write side is shut at once and the same wait
	// follows, with no bound of 30 Lingers: the client holds its place
	// among MaxConns and MaxConnsPerIP, however long that takes, while it
	// takes some within WriteTimeout. Otherwise the connection closes at
	// its client's end of file at once. Zero means 2 s; negative, no
	// wait.
	Linger time.Duration

	// ReadSize is the largest read from a stream; zero or negative means
	// 32 KiB, and less than 512 means 512. With a goroutine per
	// connection, reads start at 1 KiB and grow while the client keeps
	// them full; an event loop reads up to ReadSize into its one buffer.
	// Datagrams are read whole, up to 65,535 bytes, whatever it is.
	ReadSize int

	// SourceRate is each datagram source address's budget of reply bytes
	// per second, all its ports together (an IPv6 address's /64's: one
	// host's share; a loopback address's each port apart, since a reply
	// to it never leaves this host), with a burst of one second's worth; a
	// datagram over it is dropped. It stops one source from taking every
	// reply and bounds what a forged source can make the server send to a
	// victim, whatever ports the forger picks. Zero means DefaultSourceRate; negative means no budget. A
	// reply larger than one second's worth is never sent. The table of
	// sources has room for 16,384; past that, a new source takes the place
	// of an idle one, or of the one closest to a full budget.
	SourceRate int

	// Logger receives the server's own events (accept errors, a
	// connection whose data begins with a PROXY protocol header) and, if
	// Observer is nil, connection events through NewLogObserver. Nil means
	// slog.Default(). A Logger whose handler blocks stops serving: give
	// the server an asynchronous one if its output can stall.
	Logger *slog.Logger

	// Observer, if not nil, is told of every connection's open, reads and
	// close and of every datagram, instead of the log. Combine several
	// with Observers, the log among them with NewLogObserver.
	Observer Observer

	// WrapConn, if not nil, wraps each accepted stream connection before
	// it is served: a TLS handshake, a PROXY protocol header. It runs on
	// the connection's own goroutine, under the idle timeout (so a
	// stalled client times out; its reads time the idle, as the
	// connection's do), and an error closes the connection with
	// ReasonWrap. The connection it returns may be any net.Conn. An error
	// that wraps the time-out or net.ErrClosed a read met once Shutdown or
	// Close began is taken for the stop's doing, not a failure (see
	// Observer.ConnClose): a wrapper should keep its reads' errors. It is
	// given the accepted connection behind a thin guard, whose NetConn
	// method returns it: a read deadline the wrapper sets once Shutdown (or
	// the idle timeout) has woken the connection stays in the past, so
	// that a wrapper's own deadline cannot hold a stop up.
	WrapConn func(net.Conn) (net.Conn, error)

	// ConnState, if not nil, is called when a stream connection changes
	// state, from the connection's own goroutine, or from the event loop
	// that serves it: it must be quick, as an Observer must.
	ConnState func(net.Conn, ConnState)

	// Engine chooses what moves stream connections' bytes: event loops
	// where they can serve the listener (EngineAuto, the zero value), or
	// a goroutine per connection. Both behave alike under every field
	// above; with the loops, ConnState is called from a loop and is given
	// a net.Conn that only reports its addresses.
	Engine Engine

	mu sync.Mutex
	// listeners holds each running Serve's listener, keyed by Serve's own
	// variable, as net/http's Server keys them: two Serves of one
	// listener are two entries, each untracked by its own Serve.
	listeners map[*net.Listener]struct{}
	// drains holds those that Serve, with a goroutine per connection,
	// empties of queued connections at a graceful stop (see drainQueue):
	// false until Shutdown asks it to, true while it does, the stop's
	// wait counting each.
	drains    map[*net.Listener]bool
	draining  int  // drains asked, until each has ended and its listener closed (see awaitFree)
	waiting   int  // of them, those waiting for a descriptor on freed
	forced    bool // Close, or Shutdown's context, ended the stop's grace
	packets   map[net.PacketConn]struct{}
	conns     map[*conn]struct{}
	active    int // conns admitted, counted against MaxConns
	perIP     map[netip.Addr]int
	closing   atomic.Bool
	wg        sync.WaitGroup
	done      chan struct{} // closed by Shutdown and Close
	killed    chan struct{} // closed once the stop is forced (forced)
	drained   chan struct{} // the timeout watcher's wake-up when the last connection is gone
	freed     chan struct{} // closed when a connection or a drained listener closes, for a stop's drain out of descriptors (see nextFree)
	watching  bool          // the timeout watcher runs
	lingering chan struct{} // a slot for each rejected connection lingering
	obsOnce   sync.Once
	stopOnce  sync.Once // tellStopped
	obs       Observer
	replies   ReplyObserver // obs, if it is one
	clock     clock
	srcOnce   sync.Once
	src       *sources // every datagram source's budget and last reply
	loops     *loops   // the event loops, once a listener is served by them
	// proxyHeaders: connections whose data began with a PROXY header,
	// which any client can send.
	proxyHeaders limiter

	// holdAccepts, a test's, makes Serve take no connection from its
	// listener until the server stops, and is called with the listener
	// once Serve has it tracked: connections queue on it meanwhile.
	holdAccepts func(net.Listener)
	// newcomerMax, a test's, is newcomerWait's second: a test whose
	// clients may be slow to send stays with what it tests.
	newcomerMax time.Duration
}

// DefaultSourceRate is SourceRate's default: 8 MiB of replies a second
// for each source address and port, far above what one socket of a load
// generator sends with small datagrams, and little for a flooded victim.
const DefaultSourceRate = 8 << 20

// maxLingering bounds how many rejected connections linger at once; past
// it they are closed at once (a flood of them gets resets, not goroutines).
const maxLingering = 256

// sources returns the table of datagram sources, which every packet
// connection shares: a source has one budget whichever it sends to.
func (s *Server) sources() *sources {
	s.srcOnce.Do(func() {
		rate := int64(s.SourceRate)
		if rate == 0 {
			rate = DefaultSourceRate
		}
		s.src = newSources(rate)
	})
	return s.src
}

func (s *Server) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

// errProxyAsData is why a connection whose data begins with a PROXY
// protocol header is logged: a balancer in front sends one, and the
// listener was not made to read it, or not from its source (the endpoint
// package's listeners read it with Options.Proxy from the sources in its
// From, shout serve's with --proxy-protocol from --proxy-from; from
// another, one that comes late is data).
var errProxyAsData error = named.Errorf("the client's data begins with a PROXY protocol header, which is answered as data: a listener reads one only with %s, from a source in %s", named.Setting("endpoint.Options.Proxy"), named.Setting("endpoint.Options.Proxy.From"))

// errSecondProxy is why a connection whose listener read a PROXY header
// and whose data begins with another is logged: a balancer behind
// another, which passes the outer one's header on. That the listener
// reads one only with a setting, which it has, would mislead.
var errSecondProxy = errors.New("the client's data begins with a second PROXY protocol header, after the one its listener read, and is answered as data")

// proxyHeaderRead logs that c's data began with a PROXY protocol header
// of version v, which nothing before the server read (or, if second, the
// listener's wrapper read one before it): the operator of a server
// behind a balancer that sends one may have left out the setting that
// reads it, and would see nothing else but odd replies. The header is
// answered as data, as every message is: what the client gets does not
// depend on the hint. Any client can send one, so at most once a second,
// with the total.
func (s *Server) proxyHeaderRead(c *ConnInfo, v int, second bool) {
	if ok, n := s.proxyHeaders.allow(); ok {
		why := errProxyAsData
		if second {
			why = errSecondProxy
		}
		s.logger().Warn("PROXY header answered as data", "remote", addrText(c.Remote), "version", v, "why", why, "total", n)
	}
}

func (s *Server) observer() Observer {
	s.obsOnce.Do(func() {
		s.obs = s.Observer
		if s.obs == nil {
			s.obs = NewLogObserver(s.logger())
		}
		s.replies, _ = s.obs.(ReplyObserver)
	})
	return s.obs
}

var defaultTransformer upper.Transformer

func (s *Server) transformer() transform.Transformer {
	if s.Transformer != nil {
		return s.Transformer
	}
	return &defaultTransformer
}

// expansion is the most bytes the transformer writes per byte read, as
// far as reply buffers are sized by it.
func (s *Server) expansion() int {
	if e, ok := s.transformer().(Expander); ok {
		return min(max(e.MaxExpansion(), 1), MaxExpansionLimit)
	}
	return upper.MaxExpansion
}

func (s *Server) readSize() int {
	if s.ReadSize > 0 {
		return max(s.ReadSize, 2*maxCarry) // room for a read after held bytes
	}
	return 32 << 10
}

func (s *Server) linger() time.Duration {
	switch {
	case s.Linger == 0:
		return 2 * time.Second
	case s.Linger < 0:
		return 0
	}
	return s.Linger
}

// track runs add, which registers a listener, packet conn or connection,
// under the server's lock, unless the server is closing; then it reports
// false.
func (s *Server) track(add func()) bool { return s.trackFrom(nil, add) }

// trackFrom is track for a connection accepted by the Serve of lp, which
// is tracked too while the server stops gracefully, if that Serve is
// draining its listener of what queued on it (see drainQueue).
func (s *Server) trackFrom(lp *net.Listener, add func()) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing.Load() && (lp == nil || s.forced || !s.drains[lp]) {
		return false
	}
	if s.listeners == nil {
		s.listeners = make(map[*net.Listener]struct{})
		s.drains = make(map[*net.Listener]bool)
		s.packets = make(map[net.PacketConn]struct{})
		s.conns = make(map[*conn]struct{})
		s.perIP = make(map[netip.Addr]int)
		s.done = make(chan struct{})
		s.killed = make(chan struct{})
		s.drained = make(chan struct{}, 1)
		s.lingering = make(chan struct{}, maxLingering)
		s.clock.epoch = time.Now()
	}
	add()
	// Started with a listener, as connections come only while one is
	// served, and ended once none is and no connection is left (see
	// watch): a Server leaves nothing running once it serves nothing.
	if !s.watching && len(s.listeners) > 0 && (s.IdleTimeout > 0 || s.WriteTimeout > 0) {
		s.watching = true
		s.wg.Add(1)
		go s.watch()
	}
	return true
}

// servesNothing reports whether no listener is served and no stream
// connection is open; Server.mu is held. The timeout watcher and the
// event loops end then, whether or not the server was stopped.
func (s *Server) servesNothing() bool {
	return len(s.listeners) == 0 && len(s.conns) == 0
}

// wakeWatcher wakes the timeout watcher, if the last connection is gone
// and it has nothing more to watch; Server.mu is held.
func (s *Server) wakeWatcher() {
	if len(s.conns) == 0 && (s.closing.Load() || len(s.listeners) == 0) {
		select {
		case s.drained <- struct{}{}:
		default:
		}
	}
}

// A ConnWrapper is a listener whose connections must be wrapped before
// they are served: a TLS listener's handshake, a PROXY protocol header.
// Serve calls WrapConn on each accepted connection, on the connection's
// own goroutine and under the idle timeout, before Server.WrapConn and
// before the connection is admitted under MaxConnsPerIP and announced,
// so limits and observers see the address it returns.
//
// A graceful stop accepts the connections queued on a ConnWrapper's
// socket before closing it, as it does on net's own TCP and Unix
// listeners (see Shutdown), if the wrapper has a method
// Unwrap() net.Listener that returns one of those, whose Accept its own
// Accept is: closing the socket would reset every client queued on it. They are wrapped and
// served as any connection is at the stop: a wrap still under way may go
// on until the connection is a second old (or Linger, if shorter).
type ConnWrapper interface {
	WrapConn(net.Conn) (net.Conn, error)
}

// A Readdresser is a ConnWrapper that can tell, as a connection is
// accepted, whether wrapping may change its address: a TLS handshake does
// not; a PROXY header from a trusted source does. When it says no (and
// Server.WrapConn is nil), the connection is counted against
// MaxConnsPerIP at once, as a plain one is, so that connections stuck in
// a handshake count against their address too and one address cannot
// hold every MaxConns place that way.
type Readdresser interface {
	Readdresses(net.Conn) bool
}

// WrapError is a wrapping failure with the Reason it gives the
// connection's close (ReasonHandshake, ReasonProxyHeader); any other
// error from a wrapper closes it with ReasonWrap, and so does any other
// Reason, but two: ReasonEOF and ReasonReset say that the client left
// before the wrap began, having sent nothing (a health check that
// connects and closes). Observers see that connection open and close
// with that Reason, as they would without the wrap, not a failure.
type WrapError struct {
	Reason Reason
	Err    error
	// Remote and Local, if both are set, are the connection's addresses as the
	// wrapping had learnt them when it failed (a PROXY header's, read
	// before the TLS handshake that failed): observers see them, not the
	// socket's.
	Remote, Local net.Addr
}

func (e *WrapError) Error() string {
	if e.Err == nil {
		return e.Reason.String()
	}
	return e.Reason.String() + ": " + e.Err.Error()
}
func (e *WrapError) Unwrap() error { return e.Err }

// Serve accepts stream connections on l and serves them with the driver
// EngineFor chooses: the server's event loops (which accept for it), or a
// goroutine for each connection. If l is a ConnWrapper, each connection
// is wrapped by it first.
//
// Serve always returns a non-nil error and closes l. When Shutdown or
// Close is called, Serve returns ErrServerClosed at once (once Shutdown
// has accepted what queued on l), while the connections are still being
// stopped: a program must wait for Shutdown to return, not Serve. On a
// Server stopped already it returns ErrServerClosed at once (leaving l,
// if another Serve of it is draining it at a graceful stop, to that
// one, which closes it once it has accepted what queued). If l is
// closed from outside, the error is net.ErrClosed (within 250 ms with the
// loops). Temporary accept errors (out of file descriptors or memory) are
// logged and retried after 5 ms, doubling to 1 s; any other ends Serve
// with that error.
//
// However Serve ends, the connections it accepted are served on until
// they close, or until Shutdown or Close, and the other listeners the
// Server serves are not affected. Once no Serve or ServePacket is
// running and no connection is open, the Server's goroutines end and its
// descriptors close, shortly after (the event loops end, and the next
// Serve starts them again), whether it was stopped or not: a program
// need not call Close for that, only to end connections still open, or
// to wait until all has ended.
//
// A listener whose Accept wraps what it accepts, such as
// tls.NewListener's, is served with a goroutine per connection, and its
// wrapper's own writes inside a read are out of the server's reach: a
// *tls.Conn answers a client's TLS KeyUpdate from within Read, and to a
// client that sends them and reads nothing that write waits for good,
// timed by no WriteTimeout, woken by no IdleTimeout nor graceful
// Shutdown (their read deadlines do not end a write); only Close, or
// Shutdown's context ending, ends it, by closing the socket under the
// wrapper. Serve TLS with a ConnWrapper (shout/endpoint's listeners), or
// with WrapConn returning tls.Server(c, config), instead: the connection
// a wrapper is given there times the wrapper's own writes after the wrap
// as replies are timed.
func (s *Server) Serve(l net.Listener) error {
	lp := &l // this Serve's entry; another Serve of l has its own
	e, eerr := s.EngineFor(l)
	drain := eerr == nil && e == EngineGoroutine && drainable(l)
	if !s.track(func() {
		s.listeners[lp] = struct{}{}
		if drain {
			// With the entry, so that a stop that comes before Serve
			// accepts asks it to drain, and counts it.
			s.drains[lp] = false
		}
	}) {
		s.mu.Lock()
		draining := s.drainedBy(l)
		s.mu.Unlock()
		if !draining {
			l.Close()
		}
		return ErrServerClosed
	}
	s.observer()
	wrap := s.WrapConn
	if w, ok := l.(ConnWrapper); ok {
		wrap = w.WrapConn
		if outer := s.WrapConn; outer != nil {
			wrap = func(c net.Conn) (net.Conn, error) {
				wc, err := w.WrapConn(c)
				if err != nil || wc == nil {
					return nil, err // (serve says that a nil, nil broke the contract)
				}
				return outer(wc)
			}
		}
	}
	lra, _ := l.(Readdresser)
	ra := lra
	if s.WrapConn != nil {
		ra = nil // it may change any address
	}
	if eerr != nil {
		s.untrack(lp)
		return eerr
	} else if e == EngineLoop {
		return s.serveLoop(lp)
	}
	if serving != nil {
		serving()
	}
	st := s.socketTracer()
	if st != nil {
		// Counted in the stop's wait, as a connection is, so that a stop
		// that has begun is not told done (ServerStopped) before the
		// listener is traced, nor traces it after; once it has begun, l
		// is not served.
		if !s.track(func() { s.wg.Add(1) }) {
			s.untrack(lp)
			return ErrServerClosed
		}
		st.TraceListener(l)
		s.wg.Done()
	}
	defer s.untrack(lp)
	if s.holdAccepts != nil {
		s.holdAccepts(l)
		<-s.done
	}
	accepted := func(nc net.Conn) bool { return s.accepted(lp, nc, wrap, ra, lra, st) }
	var delay time.Duration
	for {
		nc, err := l.Accept()
		if err == nil && nc == nil {
			err = errNoAccepted // not temporary: it ends Serve
		}
		if err != nil {
			if s.closing.Load() {
				s.drainQueue(lp, accepted)
				return ErrServerClosed
			}
			if !temporary(err) {
				return err
			}
			delay = retryDelay(delay)
			s.logger().Error("accept failed; retrying", "listener", l.Addr().String(), "err", err, "retry_in", delay)
			s.pause(delay)
			continue
		}
		delay = 0
		if !accepted(nc) {
			return ErrServerClosed
		}
		if s.closing.Load() {
			// Accepted as the stop began: the rest is the drain's, which
			// looks at the queue before each accept. The next accept
			// here could wait out the deadline another Serve's drain of
			// l set, with nothing left to take.
			s.drainQueue(lp, accepted)
			return ErrServerClosed
		}
	}
}

// accepted serves nc, which the Serve of lp accepted, on a goroutine of
// its own; it reports false, having closed nc, if the server has stopped
// (or, stopping gracefully, that Serve is not draining: see drainQueue).
// A connection tracked once the stop has begun sees it as it begins, and
// answers what it was sent before it closes.
func (s *Server) accepted(lp *net.Listener, nc net.Conn, wrap func(net.Conn) (net.Conn, error), ra, lra Readdresser, st SocketTracer) bool {
	c := newConn(s, nc)
	c.wrap = wrap
	// The listener's own wrapper, whatever Server.WrapConn does after it.
	c.headerRead = lra != nil && lra.Readdresses(nc)
	var why error
	if !s.trackFrom(lp, func() {
		s.wg.Add(1)
		s.conns[c] = struct{}{} // rejected ones too, for Close to reach
		if s.MaxConns > 0 && s.active >= s.MaxConns {
			why = ErrMaxConns
		} else {
			s.active++
			c.place.admitted = true
		}
	}) {
		nc.Close()
		return false
	}
	if st != nil {
		// Only once tracked: a stop's wait counts the connection now,
		// so its close is traced too, before the stop is told.
		c.trace = st.TraceConn(*lp, nc)
	}
	// A wrapped one's address may be known only once wrapped.
	final := wrap == nil || ra != nil && !ra.Readdresses(nc)
	if why == nil && final && !s.admitIP(&c.place, c.sess.info.Remote) {
		why = ErrMaxConnsPerIP
	}
	if why != nil {
		// Its MaxConns place is given back here, not on its own
		// goroutine, which may not run before the next accept: a burst
		// over one address's limit would turn others away at MaxConns.
		s.release(&c.place)
		go c.reject(why)
		return true
	}
	if wrap == nil {
		// Announced here, not on the connection's goroutine, whose
		// stack would grow for the observers' work and stay grown
		// while the connection idles.
		c.obs.ConnOpen(&c.sess.info)
	}
	go c.serve()
	return true
}

// newcomer reports whether a connection with info, which has nothing
// owed at the stop, is to wait for its first message: it has sent
// nothing yet and is younger than newcomerWait. It was accepted from the
// listener's queue at the stop, or connected just before: a client that
// connects, then sends (over loopback, on a busy machine, up to half a
// second later), would read the stop's end of file in place of its
// reply. It waits until it is newcomerWait old, as net/http's Shutdown
// waits (five seconds) for a new connection's first request, and answers
// what it sends by then. An older one that never sent is idle, and closes
// at once.
func (s *Server) newcomer(info *ConnInfo) bool {
	return info.BytesIn == 0 && time.Since(info.Start) < s.newcomerWait()
}

// newcomerWait is how long after its accept a newcomer's first message
// may come at the stop: a second, or Linger if that is shorter (none if
// it is off).
func (s *Server) newcomerWait() time.Duration {
	return min(s.linger(), cmp.Or(s.newcomerMax, time.Second))
}

// maxDrained bounds how many queued connections a graceful stop accepts
// from one listener: Linux's default queue (net.core.somaxconn), so that
// clients that keep connecting cannot hold the stop up.
const maxDrained = 4096

// drainQueue accepts, once Shutdown has asked it to, the connections
// queued on the listener of the Serve of lp: clients whose connect the
// system completed before the listener closed, which closing it would
// reset, whatever they had sent. Each is served as the stop serves a
// connection, answering what it sent. It accepts until it finds the
// queue empty, up to maxDrained; an accept that fails for want of
// descriptors (or memory) waits for one of s's connections to close and
// tries again (see awaitFree). Clients it leaves queued (maxDrained
// taken, or no connection left to close) are logged (see leftQueued).
// Another Serve of the same listener drains it beside this one, and is
// told when the queue is empty: the listener closes then.
func (s *Server) drainQueue(lp *net.Listener, accepted func(net.Conn) bool) {
	s.mu.Lock()
	asked := s.drains[lp]
	s.mu.Unlock()
	if !asked {
		return
	}
	l := *lp
	for n := 0; n < maxDrained; {
		if !queuedConn(l) {
			l.Close() // at once: another Serve's accept would wait out its deadline
			return
		}
		s.mu.Lock()
		freed := s.nextFree() // before the accept: a close during it counts
		s.mu.Unlock()
		// Bounded: another process holding the socket may take it first.
		setAcceptDeadline(l, time.Now().Add(time.Second))
		nc, err := l.Accept()
		if err != nil && outOfResources(err) {
			if retry, forced := s.awaitFree(freed); !retry {
				if !forced { // (a forced stop says so itself: see closeAll)
					s.leftQueued(l, noneToClose(err))
				}
				return
			}
			continue
		}
		if err != nil || nc == nil || !accepted(nc) {
			return
		}
		n++
	}
	s.leftQueued(l, errDrainedMax)
}

// errDrainedMax is why a graceful stop left clients queued on a listener
// it had taken maxDrained from.
var errDrainedMax = fmt.Errorf("%d accepted at the stop already, the most it takes from one listener", maxDrained)

// errStopForced is why a graceful stop left clients queued on a listener
// it was still accepting them from when Close, or Shutdown's context
// ending, cut it short.
// It names no API (Close, Shutdown's context): an operator reads it, and
// the program's own log says what cut the stop short (shout serve: its
// --shutdown-timeout, or a signal).
var errStopForced = errors.New("the stop was cut short before they could be accepted")

// noneToClose is why a graceful stop left clients queued once its
// accept failed with err, out of descriptors or memory, and no
// connection was left whose close would free some.
func noneToClose(err error) error {
	return fmt.Errorf("the accept failed with no connection left to close: %w", err)
}

// nextFree returns a channel that is closed once the next of s's stream
// connections, or of the listeners a graceful stop drains, has closed,
// its descriptor free again; s.mu is held. A graceful stop out of
// descriptors accepts its queued clients as they come free (see
// awaitFree).
func (s *Server) nextFree() <-chan struct{} {
	if s.freed == nil {
		s.freed = make(chan struct{})
	}
	return s.freed
}

// awaitFree waits, once a stop's accept from a listener's queue failed
// for want of descriptors (or memory), for a connection or another
// drain's listener to close after freed was taken (see nextFree), and
// reports retry to accept again. It reports no retry at once if no
// connection is open and every other drain waits too, none of which
// would free one (a listener's clients then wait for something outside
// the server; the last drain to give up wakes the others, as its
// listener closes), and forced, none either, once the stop is forced.
// The connections close, and the drains end, within the stop's bounds
// (Linger, WriteTimeout, Shutdown's context), so the wait is as bounded
// as the stop is.
func (s *Server) awaitFree(freed <-chan struct{}) (retry, forced bool) {
	s.mu.Lock()
	select {
	case <-freed:
		s.mu.Unlock()
		return true, false
	default:
	}
	if len(s.conns) == 0 && s.draining-s.waiting <= 1 { // only this one runs
		s.mu.Unlock()
		return false, false
	}
	s.waiting++
	s.mu.Unlock()
	select {
	case <-freed:
		return true, false // (no longer counted waiting: see free)
	case <-s.killed:
		s.mu.Lock()
		if s.freed == freed {
			s.waiting--
		}
		s.mu.Unlock()
		return false, true
	}
}

// free wakes the drains waiting for a descriptor (see awaitFree), one
// having come free; s.mu is held.
func (s *Server) free() {
	if s.freed != nil {
		close(s.freed)
		s.freed = nil
	}
	s.waiting = 0
}

// leftQueued logs, as a graceful stop gives up accepting from l with
// clients still in its queue, that its close resets them unanswered, how
// many (where the system says: a TCP listener on Linux), and why.
func (s *Server) leftQueued(l net.Listener, why error) {
	n, known := queueLen(l)
	if known && n == 0 || !known && !queuedConn(l) {
		return
	}
	args := []any{"listener", l.Addr().String()}
	if known {
		args = append(args, "queued", n)
	}
	args = append(args, "why", why)
	s.logger().Warn("stop left clients queued, unanswered: the listener's close resets them", args...)
}

// errNoAccepted ends Serve on a listener that broke net.Listener's
// contract, its Accept returning neither a connection nor an error.
var errNoAccepted = errors.New("server: the listener's Accept returned no connection and no error")

// serving, if set, is called as Serve, having tracked its listener, is
// about to serve it with a goroutine per connection; a test sets it, to
// let a stop come in between.
var serving func()

// retryDelay is the wait before trying again after a failure that may
// repeat (an accept, a datagram read), given the wait after the one
// before (0 if that try went well): 5 ms, doubling to 1 s.
func retryDelay(last time.Duration) time.Duration {
	return min(max(2*last, 5*time.Millisecond), time.Second)
}

// pause waits d, or until Shutdown or Close.
func (s *Server) pause(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-s.done:
	}
}

// untrack unregisters the listener of a Serve that is done with it, and
// closes it, unless another Serve of it, or the event loops, are still
// draining it at a graceful stop: they close it once they are done.
func (s *Server) untrack(lp *net.Listener) {
	s.mu.Lock()
	delete(s.listeners, lp)
	drained, drainer := s.drains[lp]
	delete(s.drains, lp)
	shared := drainer && s.drainedBy(*lp) || s.loops != nil && s.loops.keeps(*lp)
	s.wakeWatcher()
	s.mu.Unlock()
	if !shared {
		(*lp).Close()
	}
	if drained {
		// Ended only now, its listener closed (unless another Serve of
		// it drains it still): a drain out of descriptors waits for
		// this (see awaitFree).
		s.mu.Lock()
		s.draining--
		s.free()
		s.mu.Unlock()
		s.wg.Done() // the stop's wait for the drain (see closeAll)
	}
}

// drainedBy reports whether a Serve still draining its listener at a
// graceful stop drains l's socket: that Serve closes it once the queue
// is empty. s.mu is held.
func (s *Server) drainedBy(l net.Listener) bool {
	for o, asked := range s.drains {
		if asked && acceptsFrom(*o) == acceptsFrom(l) { // (net's own listeners: they compare)
			return true
		}
	}
	return false
}

// place is what a connection holds under MaxConns and MaxConnsPerIP,
// for release to give back.
type place struct {
	ipKey     netip.Addr // counted against MaxConnsPerIP, if ipCounted
	ipCounted bool
	admitted  bool // counted against MaxConns
}

// admitIP counts a connection from remote against its address's
// MaxConnsPerIP and reports whether it is within the limit.
func (s *Server) admitIP(a *place, remote net.Addr) bool {
	if s.MaxConnsPerIP <= 0 {
		return true
	}
	key, ok := ipKey(remote)
	if !ok {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.perIP[key] >= s.MaxConnsPerIP {
		return false
	}
	s.perIP[key]++
	a.ipKey, a.ipCounted = key, true
	return true
}

// forget unregisters c once it is closed, freeing its places under the
// limits.
func (s *Server) forget(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.wakeWatcher()
	s.free()
	s.mu.Unlock()
	s.release(&c.place)
}

// release frees a connection's places under the limits.
func (s *Server) release(a *place) {
	if !a.admitted && !a.ipCounted {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if a.admitted {
		s.active--
	}
	if a.ipCounted {
		if s.perIP[a.ipKey]--; s.perIP[a.ipKey] <= 0 {
			delete(s.perIP, a.ipKey)
		}
	}
	*a = place{}
}

// ipKey is what MaxConnsPerIP counts by: the IPv4 address, or the IPv6
// /64 network (one host's share), or false for a non-IP address.
func ipKey(a net.Addr) (netip.Addr, bool) {
	var ip netip.Addr
	switch a := a.(type) {
	case *net.TCPAddr:
		ip = a.AddrPort().Addr()
	case *net.UDPAddr:
		ip = a.AddrPort().Addr()
	case *net.UnixAddr:
		// A path, which a local client may name like an address and
		// port ("127.0.0.1:1") to take that address's places.
		return netip.Addr{}, false
	default: // a wrapper's own type
		ap, err := netip.ParseAddrPort(a.String())
		if err != nil {
			return netip.Addr{}, false
		}
		ip = ap.Addr()
	}
	ip = ip.Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		ip = p.Addr()
	}
	return ip, ip.IsValid()
}

// Shutdown stops the server gracefully: it closes every listener and
// packet connection, then lets each stream connection answer what it had
// received (where the system cannot count that, as under a wrapper or off
// Linux: what arrives until the client pauses, for up to Linger), shuts
// its write side and reads, discarding, until the client's end of file
// (see Linger) before closing it. It returns once every connection is
// closed and every goroutine of the server has ended, with the errors
// from closing the listeners and packet connections.
//
// Before it closes a listener, Shutdown accepts the connections queued on
// it, until it finds the queue empty (4096 at most): clients whose
// connect the system had completed, and which may have sent, would be
// reset with it. They are served as the others are stopped; such a
// connection, or any that has sent nothing yet and is younger than a
// second (or Linger, if shorter), waits for its first message until it
// is that old, and answers it; a TLS handshake or a PROXY header still
// under way (see ConnWrapper) may finish within that time too. An accept
// that fails for want of descriptors (or memory) is tried again each
// time one of the server's connections closes, the listener kept open
// meanwhile, until none is left to close. A client that connects in the
// instant between the last accept and the close is still reset. Clients
// left queued otherwise (out of descriptors with no connection left to
// close, the stop forced, 4096 taken) are logged, with how many (on a
// TCP listener on Linux) and why. A listener that is neither net's own
// TCP or Unix listener nor a ConnWrapper whose Unwrap returns one (see
// ConnWrapper; the endpoint package's TLS and PROXY listeners are), and
// any listener on Windows, is closed with what queued on it.
//
// If ctx ends first, Shutdown closes the remaining connections at once,
// as Close does, waits for them to end and returns ctx's error; a Close
// after it has nothing left to do. A Close during a Shutdown closes the
// remaining connections at once, and the Shutdown returns as if they had
// closed. Shutdown and Close may be called any number of times, at once
// too: each returns once everything has ended.
//
// Once Shutdown or Close has been called, the Server cannot be used
// again: Serve and ServePacket return ErrServerClosed. This holds for a
// Server that never served (its zero value) too.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.closeAll(false)
	finished := make(chan struct{})
	go func() { s.wg.Wait(); close(finished) }()
	select {
	case <-finished:
		s.tellStopped()
		return err
	case <-ctx.Done():
		s.closeAll(true)
		<-finished
		s.tellStopped()
		return ctx.Err()
	}
}

// Close closes every listener, packet connection and stream connection at
// once, without answering what is in flight, and returns once they have
// ended, with the errors from closing the listeners and packet
// connections. See Shutdown for calling both, or either more than once.
func (s *Server) Close() error {
	err := s.closeAll(true)
	s.wg.Wait()
	s.tellStopped()
	return err
}

// tellStopped tells the observer, if it is a StopObserver, that the
// server has stopped: once, however many times Shutdown and Close return.
func (s *Server) tellStopped() {
	s.stopOnce.Do(func() {
		if o, ok := s.observer().(StopObserver); ok {
			o.ServerStopped()
		}
	})
}

func (s *Server) closeAll(force bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closing.Swap(true) && s.done != nil {
		close(s.done)
	}
	var errs []error
	if force && !s.forced {
		s.forced = true
		if s.killed != nil {
			close(s.killed)
		}
	}
	if s.loops != nil {
		if !force {
			s.loops.drainAll() // what queued on their listeners, before they close
		} else {
			s.loops.endDrains(s, errStopForced) // those out of descriptors, still under way
		}
		s.loops.unwatchAll() // before they close: another descriptor may hold their sockets
	}
	for lp := range s.listeners {
		if asked, ok := s.drains[lp]; ok && !force {
			// Serve empties it of queued connections and closes it, and
			// the stop waits for that (see untrack).
			if !asked {
				s.drains[lp] = true
				s.draining++
				s.wg.Add(1)
				setAcceptDeadline(*lp, past) // wakes its Accept
			}
			continue
		}
		if !force && s.loops != nil && s.loops.keeps(*lp) {
			continue // the loops accept what queued as descriptors come free, then close it
		}
		if force && s.drains[lp] {
			s.leftQueued(*lp, errStopForced) // its drain cut short
		}
		if err := (*lp).Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
		delete(s.listeners, lp)
	}
	for pc := range s.packets {
		if err := pc.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
		delete(s.packets, pc)
	}
	if s.loops != nil {
		s.loops.wakeAll(force)
	}
	for c := range s.conns {
		// The accepted connection, not a wrapper of it that the
		// connection's goroutine may be building: what wraps it sees the
		// deadline or the close.
		if force {
			// The socket under any wrapper a Listener made (a *tls.Conn
			// from tls.NewListener): the wrapper's Close may wait for a
			// write of its own inside a read (TLS's answer to a KeyUpdate
			// holds the write lock its close_notify takes) to a client
			// that takes nothing, for good. The socket's close ends that
			// write; the connection's goroutine closes the wrapper then.
			socketUnder(c.accepted).Close()
		} else {
			// Wake a reader blocked on an idle connection; a connection
			// busy writing finishes its reply first.
			c.accepted.SetReadDeadline(past)
		}
	}
	return errors.Join(errs...)
}
