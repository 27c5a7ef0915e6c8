package server

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"shout/upper"
)

// ErrServerClosed is returned by Serve and ServePacket after Shutdown or
// Close.
var ErrServerClosed = errors.New("server: closed")

// ConnState is a stream connection's state, as the ConnState hook sees it.
type ConnState int

const (
	// StateNew: the connection was accepted and will be served.
	StateNew ConnState = iota
	// StateClosed: the connection is closed and its goroutine is done.
	StateClosed
	// StateRejected: the connection was over MaxConns and was closed.
	StateRejected
)

var stateNames = [...]string{"new", "closed", "rejected"}

func (c ConnState) String() string { return stateNames[c] }

// Server answers streams and datagrams with their uppercase. The zero value
// is a valid configuration: full Unicode uppercase, no limits, logs to
// slog.Default(). Fields must not change once serving has begun.
type Server struct {
	// Transformer maps what clients send. Nil means the zero
	// upper.Transformer: full Unicode uppercase.
	Transformer *upper.Transformer

	// MaxConns is the most stream connections served at once; one more is
	// closed as soon as it is accepted. Zero or negative means no limit.
	MaxConns int

	// IdleTimeout closes a stream connection that sends nothing for this
	// long. Zero or negative means no timeout.
	IdleTimeout time.Duration

	// WriteTimeout closes a stream connection whose reply cannot be
	// written for this long: a client that stops reading. Zero or negative
	// means no timeout.
	WriteTimeout time.Duration

	// ReadSize is the largest read from a stream; zero means 64 KiB.
	// Datagrams are read whole, up to 65,535 bytes, whatever it is.
	ReadSize int

	// Logger receives connection events; nil means slog.Default(). Each
	// message received is logged at debug level, quoted and truncated.
	Logger *slog.Logger

	// ConnState, if not nil, is called when a stream connection changes
	// state, from the connection's own goroutine.
	ConnState func(net.Conn, ConnState)

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	packets   map[net.PacketConn]struct{}
	conns     map[*conn]struct{}
	closing   atomic.Bool
	wg        sync.WaitGroup
	done      chan struct{} // closed by Shutdown and Close

	rejects, unsent limiter // warnings a client can cause, at most one a second
}

// limiter lets a warning that clients can trigger at will through at most
// once a second, counting every occurrence.
type limiter struct {
	total, last atomic.Int64 // occurrences; unix second of the last let through
}

// allow counts one occurrence and reports whether to log it, with the
// total so far.
func (l *limiter) allow() (bool, int64) {
	n := l.total.Add(1)
	now := time.Now().Unix()
	return l.last.Swap(now) != now, n
}

func (s *Server) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

var defaultTransformer upper.Transformer

func (s *Server) transformer() *upper.Transformer {
	if s.Transformer != nil {
		return s.Transformer
	}
	return &defaultTransformer
}

func (s *Server) readSize() int {
	if s.ReadSize > 0 {
		return s.ReadSize
	}
	return 64 << 10
}

// track runs add, which registers a listener, packet conn or connection,
// under the server's lock, unless the server is closing; then it reports
// false.
func (s *Server) track(add func()) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing.Load() {
		return false
	}
	if s.listeners == nil {
		s.listeners = make(map[net.Listener]struct{})
		s.packets = make(map[net.PacketConn]struct{})
		s.conns = make(map[*conn]struct{})
		s.done = make(chan struct{})
	}
	add()
	return true
}

// Serve accepts stream connections on l and serves each in its own
// goroutine. It always returns a non-nil error and closes l; after Shutdown
// or Close the error is ErrServerClosed.
func (s *Server) Serve(l net.Listener) error {
	if !s.track(func() { s.listeners[l] = struct{}{} }) {
		l.Close()
		return ErrServerClosed
	}
	defer func() {
		s.mu.Lock()
		delete(s.listeners, l)
		s.mu.Unlock()
		l.Close()
	}()
	var delay time.Duration
	for {
		c, err := l.Accept()
		if err != nil {
			if s.closing.Load() {
				return ErrServerClosed
			}
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			// EMFILE and the like: wait and retry, as net/http does.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			s.logger().Error("accept failed; retrying", "listener", l.Addr().String(), "err", err, "retry_in", delay)
			select {
			case <-time.After(delay):
			case <-s.done:
			}
			continue
		}
		delay = 0
		sc := &conn{srv: s, c: c, start: time.Now()}
		full := false
		if !s.track(func() {
			if full = s.MaxConns > 0 && len(s.conns) >= s.MaxConns; !full {
				s.conns[sc] = struct{}{}
				s.wg.Add(1)
			}
		}) {
			c.Close()
			return ErrServerClosed
		}
		if full {
			s.reject(c)
			continue
		}
		// Logged here, not by the connection's goroutine, whose stack
		// would grow for it and stay grown while the connection idles.
		s.logger().Info("open", "remote", c.RemoteAddr().String(), "local", c.LocalAddr().String())
		go sc.serve()
	}
}

func (s *Server) reject(c net.Conn) {
	c.Close()
	if ok, n := s.rejects.allow(); ok {
		s.logger().Warn("connection limit reached; closing new connections", "remote", c.RemoteAddr().String(), "max_conns", s.MaxConns, "rejected_total", n)
	}
	if s.ConnState != nil {
		s.ConnState(c, StateRejected)
	}
}

// Shutdown stops the server gracefully: it closes every listener and
// packet connection, then lets each stream connection answer what it has
// already received (including bytes waiting in the kernel) and closes it.
// If ctx ends first, Shutdown closes the remaining connections at once and
// returns ctx's error.
func (s *Server) Shutdown(ctx context.Context) error {
	s.closeAll(false)
	finished := make(chan struct{})
	go func() { s.wg.Wait(); close(finished) }()
	select {
	case <-finished:
		return nil
	case <-ctx.Done():
		s.closeAll(true)
		<-finished
		return ctx.Err()
	}
}

// Close closes every listener, packet connection and stream connection at
// once, without answering what is in flight.
func (s *Server) Close() error {
	s.closeAll(true)
	s.wg.Wait()
	return nil
}

func (s *Server) closeAll(force bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closing.Swap(true) && s.done != nil {
		close(s.done)
	}
	for l := range s.listeners {
		l.Close()
	}
	for pc := range s.packets {
		pc.Close()
	}
	for c := range s.conns {
		if force {
			c.c.Close()
		} else {
			// Wake a reader blocked on an idle connection; a connection
			// busy writing finishes its reply first.
			c.c.SetReadDeadline(time.Unix(1, 0))
		}
	}
}

func (s *Server) forget(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.wg.Done()
}
