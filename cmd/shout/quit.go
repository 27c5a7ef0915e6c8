package main

import (
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
)

// quitTaken counts the commands (or parts of one) that catch SIGQUIT
// themselves: while it is above 0, catchQuit leaves the signal to them.
var quitTaken atomic.Int32

// catchQuit makes SIGQUIT (Ctrl-\) stop shout at once with status 131,
// 128 + SIGQUIT, as a shell reports a program the signal stopped,
// whatever the command (version and completion included) and wherever
// it is, parsing its flags or blocked writing its output, unless a part
// that stops otherwise on it has taken it (takeQuit). Go's default
// writes every goroutine's stack to stderr, which users should not see,
// and exits 2, a usage error's status. main calls it first: only the
// runtime's own start comes before it. (serve and bench catch SIGQUIT
// even if it was ignored when shout started.)
func catchQuit() {
	if signal.Ignored(syscall.SIGQUIT) {
		// Ignored by who started shout (a background job of a script):
		// Go's default is to ignore it too, and catching it would undo that.
		return
	}
	quit := make(chan os.Signal, 1)
	signal.Notify(quit, syscall.SIGQUIT)
	go func() {
		for s := range quit {
			if quitTaken.Load() == 0 {
				stopBySignal(s.(syscall.Signal))
			}
		}
	}()
}

// takeQuit leaves SIGQUIT to the caller, which catches it itself (serve
// stops its server and logs it, bench ends its --json output, the
// prompt restores the terminal), until the function it returns is
// called; that function may be called more than once. Call it once the
// caller's own signal.Notify has SIGQUIT, and the function before its
// signal.Stop, so that no SIGQUIT finds neither of them listening.
func takeQuit() (release func()) {
	quitTaken.Add(1)
	return sync.OnceFunc(func() { quitTaken.Add(-1) })
}
