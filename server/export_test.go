package server

import (
	"net"
	"testing"
	"time"
)

// SetTestEngine makes every Server whose Engine is EngineAuto use e
// instead (EngineGoroutine), or choose as usual (EngineAuto): the tests
// run once for each driver.
func SetTestEngine(e Engine) { testEngine = e }

// EngineUnderTest is the engine SetTestEngine set.
func EngineUnderTest() Engine { return testEngine }

// Stopping is closed once Shutdown or Close has begun; nil before the
// server serves anything.
func (s *Server) Stopping() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.done
}

// StopSourceClock stops the clock of s's datagram sources: each datagram
// is judged at the same instant, as far as the loop guard and the budgets
// tell, however slowly a test runs.
func (s *Server) StopSourceClock() { s.sources().stopped = true }

// HoldIdle keeps the goroutine driver's timeout watcher from taking any
// connection for idle until the returned function is called.
func HoldIdle() (release func()) {
	idleHeld.Store(true)
	return func() { idleHeld.Store(false) }
}

// IdleFired reports whether the goroutine driver's timeout watcher has
// taken one of s's connections for idle (the event loops keep their
// connections, and clocks, to themselves).
func (s *Server) IdleFired() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		if c.timer.lastRead.Load() == fired {
			return true
		}
	}
	return false
}

// HoldEOFShutdown makes every connection call f after its client's end
// of file, once replies were found queued, before its write side is
// shut; nil for none.
func HoldEOFShutdown(f func()) { eofShutting = f }

// HoldServe makes every Serve that serves with a goroutine per connection
// call f once it has tracked its listener, before it traces it and
// accepts; nil for none.
func HoldServe(f func()) { serving = f }

// Ended is closed once every goroutine s started for what it serves
// (its connections, event loops, timeout watcher, datagram workers) has
// ended: as soon as nothing is served, whether or not s was stopped.
func (s *Server) Ended() <-chan struct{} {
	ch := make(chan struct{})
	go func() { s.wg.Wait(); close(ch) }()
	return ch
}

// HoldAccepts makes every Serve of s take no connection from its
// listener until s stops, and call f with the listener once it is
// tracked: clients queue on it meanwhile. Set it before serving.
func (s *Server) HoldAccepts(f func(net.Listener)) { s.holdAccepts = f }

// SetNewcomerWait makes s wait d, not a second, for the first message of
// a connection that has sent nothing yet at the stop (Linger still
// bounds it). Set it before serving.
func (s *Server) SetNewcomerWait(d time.Duration) { s.newcomerMax = d }

// Forced reports whether Close, or Shutdown's context ending, has ended
// the stop's grace; once it reports true, that stop's closeAll is done.
func (s *Server) Forced() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.forced
}

// AgainOnDrops runs a case that sends datagrams on loopback, and runs it
// again when it failed and the kernel counted a drop meanwhile (see
// againOnDrops): the tests of this package that expect every datagram
// answered, or an exact trace of them, fail on one the kernel dropped.
// A case closes its sockets in t.Cleanup, not deferred: what they dropped
// is read once it returns, and a closed socket's count is gone.
func AgainOnDrops(t testing.TB, run func(t testing.TB)) {
	t.Helper()
	againOnDrops(t, run)
}

// WatchDrops counts what the UDP sockets on port drop with the drops of
// the case AgainOnDrops runs as t (a socket of the case's, or its
// server's); outside one, it does nothing.
func WatchDrops(t testing.TB, port int) {
	if a, ok := t.(*attempt); ok {
		a.watch(port)
	}
}
