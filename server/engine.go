package server

import (
	"errors"
	"fmt"
	"net"
	"slices"
)

// Engine chooses the driver that moves a stream listener's bytes.
type Engine int

const (
	// EngineAuto serves a listener with event loops where they can serve
	// it (a plain TCP or Unix listener on Linux, no WrapConn, no
	// SocketTracer), and with a goroutine per connection otherwise.
	EngineAuto Engine = iota
	// EngineLoop serves with event loops, about one per core, each owning
	// its connections: an idle connection holds its socket and a small
	// session, no goroutine and no buffer. Serve fails with
	// ErrEngineUnsupported for a listener they cannot serve.
	EngineLoop
	// EngineGoroutine serves each connection on a goroutine of its own,
	// for any net.Conn.
	EngineGoroutine
)

var engineNames = [...]string{"auto", "loop", "goroutine"}

func (e Engine) String() string {
	if e < 0 || int(e) >= len(engineNames) {
		return fmt.Sprintf("Engine(%d)", int(e))
	}
	return engineNames[e]
}

// ParseEngine is the Engine named s: auto, loop or goroutine.
func ParseEngine(s string) (Engine, error) {
	for i, n := range engineNames {
		if n == s {
			return Engine(i), nil
		}
	}
	return 0, fmt.Errorf("unknown engine %q (want auto, loop or goroutine)", s)
}

// ErrEngineUnsupported is returned by Serve when Engine is EngineLoop and
// the event loops cannot serve the listener; it says why.
var ErrEngineUnsupported = errors.New("server: the event-loop engine cannot serve this listener")

// testEngine, when EngineGoroutine, replaces EngineAuto in every Server,
// so that the package's tests run once for each driver (with EngineLoop,
// auto keeps its choice: the loops wherever they can serve).
var testEngine Engine

// traces reports whether o follows socket calls, without fixing the
// server's observer as Serve does (EngineFor may be asked before the
// Observer is set).
func traces(o Observer) bool {
	switch o := o.(type) {
	case fanout: // a SocketTracer whatever it holds
		return slices.ContainsFunc(o, traces)
	case replyFanout:
		return traces(o.fanout)
	}
	_, ok := o.(SocketTracer)
	return ok
}

// EngineFor is the driver Serve uses for l, EngineLoop or
// EngineGoroutine, or ErrEngineUnsupported, saying why, if Engine asks
// for the event loops and they cannot serve l: its connections are
// wrapped (a ConnWrapper, WrapConn), the Observer traces sockets, l is
// not a plain TCP or Unix listener, or the system is not Linux.
func (s *Server) EngineFor(l net.Listener) (Engine, error) {
	e := s.Engine
	if e == EngineAuto && testEngine == EngineGoroutine {
		e = EngineGoroutine // a run of the tests on the goroutine driver; the loop run is auto's choice
	}
	if e == EngineGoroutine {
		return EngineGoroutine, nil
	}
	_, wrapped := l.(ConnWrapper)
	why := ""
	switch {
	case wrapped || s.WrapConn != nil:
		why = "its connections are wrapped (TLS, PROXY protocol, WrapConn)"
	case traces(s.Observer):
		why = "the observer traces sockets"
	default:
		why = loopUnsupported(l)
	}
	switch {
	case why == "":
		return EngineLoop, nil
	case e == EngineLoop:
		return 0, fmt.Errorf("%w: %s", ErrEngineUnsupported, why)
	}
	return EngineGoroutine, nil
}
