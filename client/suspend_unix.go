//go:build unix

package client

import (
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

// watchStops makes a SIGTSTP (kill -TSTP; Ctrl-Z is a key in raw mode)
// stop shout with the terminal in the mode it found it in, as less and
// vim stop, and a SIGCONT (fg) make it raw again and draw the prompt and
// the line being typed again. It returns what ends the watch.
//
// SIGTTIN and SIGTTOU keep their default action: the terminal sends them
// to a background process, and shout is raw only in the foreground.
func (s *session) watchStops() (end func()) {
	stops := make(chan os.Signal, 1)
	conts := make(chan os.Signal, 1)
	signal.Notify(stops, syscall.SIGTSTP)
	signal.Notify(conts, syscall.SIGCONT)
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stops:
				if !stoppable() {
					continue
				}
				s.tty.cook()
				select { // a continue from before
				case <-conts:
				default:
				}
				// Go's handler goes on catching SIGTSTP after
				// signal.Reset, and drops it: SIGTSTP cannot stop
				// shout, so SIGSTOP, which nothing catches, does.
				syscall.Kill(os.Getpid(), syscall.SIGSTOP)
				select {
				case <-conts:
				case <-quit:
					return
				}
				s.resume()
			case <-conts: // after a stop shout did not see: kill -STOP
				s.resume()
			case <-quit:
				return
			}
		}
	}()
	return func() {
		signal.Stop(stops)
		signal.Stop(conts)
		close(quit)
		<-done
	}
}

// resume makes the terminal raw again, if shout is in the foreground
// (fg, not bg), and has the editor draw the prompt again.
func (s *session) resume() {
	if s.tty.raw() {
		s.tty.inject(string(redrawRune))
	}
}

// stoppable reports whether a stop signal may stop shout. The kernel
// drops one sent to an orphaned process group, which no shell would
// continue: shout's is orphaned if shout leads its session (a terminal
// emulator's -e, a test's pseudo-terminal); when its parent is in the same
// session (a shell's job), it is not.
func stoppable() bool {
	parent, err := unix.Getsid(os.Getppid())
	if err != nil { // another session, on some systems
		return false
	}
	own, err := unix.Getsid(0)
	return err == nil && parent == own
}

// cook gives the terminal back the mode openTTY found, unless the session
// restored it already, or shout is in the background (where changing it
// stops shout, SIGTTOU; and what is there is another job's). What is
// written from then on waits for raw.
func (t *tty) cook() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.closed && t.foreground() {
		t.hold()
		term.Restore(int(t.f.Fd()), t.state)
	}
}

// raw makes the terminal raw again, under the same conditions as cook; it
// reports whether it did. Then, raw or not (in the background), what was
// written since cook is written.
func (t *tty) raw() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	defer t.release()
	if t.closed || !t.foreground() {
		return false
	}
	_, err := term.MakeRaw(int(t.f.Fd()))
	return err == nil
}

// foreground reports whether shout's process group is the terminal's
// foreground one.
func (t *tty) foreground() bool {
	pgrp, err := unix.IoctlGetInt(int(t.f.Fd()), unix.TIOCGPGRP)
	return err == nil && pgrp == unix.Getpgrp()
}

// suspendSelf sends shout the SIGTSTP that Ctrl-Z would send were the
// terminal not raw; watchStops takes it.
func suspendSelf() { syscall.Kill(os.Getpid(), syscall.SIGTSTP) }
