package main

import (
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

// quit is the SIGQUIT catch-all's state: catchQuit's channel, and how
// many commands (or parts of one) have taken the signal (takeQuit).
var quit struct {
	mu    sync.Mutex
	c     chan os.Signal // the catch-all's, nil if it is not catching; notified only while taken is 0
	taken int
}

// catchQuit makes SIGQUIT (Ctrl-\) stop shout at once with status 131,
// 128 + SIGQUIT, as a shell reports a program the signal stopped,
// whatever the command (version and completion included) and wherever
// it is, parsing its flags or blocked writing its output, unless a part
// that stops otherwise on it has taken it (takeQuit). Go's default
// writes every goroutine's stack to stderr, which users should not see,
// and exits 2, a usage error's status. main calls it first: only the
// runtime's own start comes before it.
//
// A SIGQUIT ignored when shout started (a background job of a script, or
// a shell's trap of it) is caught all the same: Go's runtime keeps only SIGHUP and
// SIGINT ignored, and installs its stack dump for SIGQUIT regardless, so
// signal.Ignored is never true for it here.
func catchQuit() {
	startCatching(func(s os.Signal) { stopBySignal(s.(syscall.Signal)) })
}

// startCatching is catchQuit, with stop what a SIGQUIT that nothing
// has taken does. It returns a function that stops catching (for tests).
func startCatching(stop func(os.Signal)) (end func()) {
	// A channel never read, notified for good: SIGQUIT stays caught
	// (each one dropped) while the catch-all's own channel is not
	// notified, so Go's stack dump never comes back, not even between
	// takeQuit and a taker's signal.Notify (the prompt's is the client's).
	hold := make(chan os.Signal, 1)
	signal.Notify(hold, syscall.SIGQUIT)
	c := make(chan os.Signal, 1)
	quit.mu.Lock()
	quit.c = c
	if quit.taken == 0 {
		signal.Notify(c, syscall.SIGQUIT)
	}
	quit.mu.Unlock()
	done := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-c:
				stop(s)
			case <-done:
				return
			}
		}
	}()
	return func() {
		quit.mu.Lock()
		defer quit.mu.Unlock()
		signal.Stop(c)
		signal.Stop(hold)
		quit.c = nil
		close(done)
	}
}

// takeQuit leaves SIGQUIT to the caller, which catches it itself (serve
// stops its server and logs it, bench ends its --json output, the
// prompt restores the terminal), until the function it returns is
// called; that function may be called more than once. Call it once the
// caller's own signal.Notify has SIGQUIT, and the function before its
// signal.Stop, so that no SIGQUIT finds neither of them listening.
//
// The catch-all's channel is not notified while the signal is taken: a
// SIGQUIT the caller got, were it also the catch-all's, would be acted on
// when the catch-all's goroutine came to it, which may be after the caller
// let go: serve, stopped by it, exited 131 rather than 0.
func takeQuit() (release func()) {
	quit.mu.Lock()
	defer quit.mu.Unlock()
	if quit.taken++; quit.taken == 1 && quit.c != nil {
		signal.Stop(quit.c) // once it returns, no SIGQUIT reaches quit.c
	}
	return sync.OnceFunc(func() {
		quit.mu.Lock()
		defer quit.mu.Unlock()
		if quit.taken--; quit.taken == 0 && quit.c != nil {
			signal.Notify(quit.c, syscall.SIGQUIT)
		}
	})
}

// hurries reports whether signal s, come while serve stops or bench
// ends its run, asks shout to stop at once; began is the signal that
// began the stop, nil if none did (serve: a listener failed; then any
// signal hurries). A person presses Ctrl-C (SIGINT) again to hurry, and
// SIGQUIT means now. SIGTERM after
// SIGTERM is the same request again, not a plea to hurry: supervisors
// (Kubernetes, docker stop, systemd) send one and then SIGKILL, and a
// person or script that sends another means the stop asked for. (GNU
// timeout's copy of its SIGTERM is an echo, which the callers ask about
// first: it says nothing.)
func hurries(began, s os.Signal) bool {
	return s != syscall.SIGTERM || began != syscall.SIGTERM
}

// echoWindow is how soon after the signal that began a stop the same
// signal is taken for that one passed on again (echoes), not sent anew:
// a relay sends its copies within microseconds, and a person pressing
// Ctrl-C twice takes longer (a held key repeats after a quarter second).
const echoWindow = 100 * time.Millisecond

// signalClock is the clock of the echo window, serve's and bench's: a
// test's stops while a signal's copy is on its way, which on a busy
// machine may take longer than the window.
var signalClock = time.Now

// echoes reports whether signal s, come after began (the signal that
// began the stop) and since it, is began passed on again rather than a
// request of its own: GNU timeout passes each signal it gets to its
// command and then to the command's process group, so Ctrl-C on
// `timeout 60 shout bench` at a shell prompt (SIGINT to the terminal's
// foreground group, timeout and shout alike) reaches shout three times
// at once, `timeout -s INT` sends two, and so does timeout's own SIGTERM
// when its time is up. Such a copy says nothing, neither hurrying the
// stop nor being told "already stopping": callers ask echoes before
// hurries.
func echoes(began os.Signal, since time.Duration, s os.Signal) bool {
	return s == began && since < echoWindow
}
