package certs

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"shout/internal/named"
)

// noticeKey is the context key of a WithWaitNotice's notice.
type noticeKey struct{}

// waitNotice is what WithWaitNotice put in a context.
type waitNotice struct {
	after  time.Duration
	notice func(msg string, timeout time.Duration)
}

// WithWaitNotice returns ctx with notice, which ReadPEMContext calls
// with ctx, or one made from it, when reading a file has waited for
// after (for a pipe's writer, or a lease's holder to let go) and still
// waits: once for each file, with a line that says which and what it
// waits for ("waiting for --cert /run/cert.pem: a pipe with nothing
// written yet"), and how long it waits in all before it gives up (0:
// it does not, as for a pipe Go's poller cannot wait on, macOS's). A
// start that waits its 10 s for each file would otherwise say nothing
// until it gives up. (net/http/httptrace hands its hooks down the same
// way.) notice is called from a goroutine of its own. The file's name is
// in msg as it is, ESC and newlines included, as in ReadPEMContext's
// errors: what shows msg escapes it (slog's handlers quote it).
func WithWaitNotice(ctx context.Context, after time.Duration, notice func(msg string, timeout time.Duration)) context.Context {
	return context.WithValue(ctx, noticeKey{}, &waitNotice{after: after, notice: notice})
}

// waiter says, once, through ctx's notice if it has one, that reading
// flag's file path waits, and why: the wait of the last call to waiting
// when the notice's time comes. The zero of its methods' receiver, nil,
// says nothing.
type waiter struct {
	n     *waitNotice
	flag  named.Setting
	path  string
	wait  atomic.Pointer[wait]
	timer *time.Timer // started by the first waiting; fires once
	// mu is held by stop and by the notice: a timer's Stop does not wait
	// for a notice that has begun, which could then say "waiting for"
	// after the file was read.
	mu      sync.Mutex
	stopped bool // by stop: no timer started, no notice given
}

// afterFunc is time.AfterFunc, which a test replaces to fire the notice
// when it chooses.
var afterFunc = time.AfterFunc

// wait is what a read waits for, and how long at most (0: for ever).
type wait struct {
	why   string
	limit time.Duration
}

// newWaiter is the waiter for reading flag's file path, nil if ctx has
// no notice.
func newWaiter(ctx context.Context, flag named.Setting, path string) *waiter {
	n, _ := ctx.Value(noticeKey{}).(*waitNotice)
	if n == nil {
		return nil
	}
	return &waiter{n: n, flag: flag, path: path}
}

// waiting says the read waits because of why, for limit at most (0:
// with no limit); the first call starts the time to the notice. Called
// from the goroutine that reads alone.
func (w *waiter) waiting(why string, limit time.Duration) {
	if w == nil {
		return
	}
	w.wait.Store(&wait{why, limit})
	if w.timer != nil || w.stopped {
		return
	}
	w.timer = afterFunc(w.n.after, func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		if w.stopped {
			return
		}
		wt := w.wait.Load()
		// (The name raw, as ReadPEMContext's errors have it: the log
		// handler, or whoever shows it, escapes it.)
		w.n.notice(fmt.Sprintf("waiting for %s %s: %s", w.flag, w.path, wt.why), wt.limit)
	})
}

// stop ends the wait: a notice not given yet is not given.
func (w *waiter) stop() {
	if w == nil {
		return
	}
	w.mu.Lock()
	w.stopped = true
	w.mu.Unlock()
	if w.timer != nil {
		w.timer.Stop()
	}
}
