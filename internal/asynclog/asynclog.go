package asynclog

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultSize is how many records the queue holds when New is given zero.
const DefaultSize = 4096

// flushGap is the least time between two of NewBuffered's writes, but
// for those Flush and Close ask for, and for a full buffer.
const flushGap = 100 * time.Millisecond

// Handler is an asynchronous slog.Handler. Handlers derived from it with
// WithAttrs and WithGroup share its queue and its goroutine.
type Handler struct {
	h slog.Handler // the wrapped handler, with this one's attrs and groups
	q *queue
}

var _ slog.Handler = (*Handler)(nil)

// queue is what every Handler derived from one New shares.
type queue struct {
	base    slog.Handler // the wrapped handler as given: reports go here
	ch      chan entry
	dropped atomic.Int64 // not yet reported
	total   atomic.Int64 // ever dropped
	closed  atomic.Bool
	stop    chan struct{} // closed when Close gives up: the writer quits
	once    sync.Once
	done    chan struct{} // closed when the writer has quit
	flush   func() error  // after the queue empties, if not nil
}

// entry is a record and the handler to give it to, or a marker: flushed is
// closed when the writer reaches it; last makes the writer quit after it.
type entry struct {
	h       slog.Handler
	r       slog.Record
	flushed chan struct{}
	last    bool
}

// New returns a Handler that passes records to h on its own goroutine,
// with a queue of size records (zero or negative means DefaultSize). Call
// Close to stop the goroutine.
func New(h slog.Handler, size int) *Handler {
	return start(h, size, nil)
}

func start(h slog.Handler, size int, flush func() error) *Handler {
	if size <= 0 {
		size = DefaultSize
	}
	q := &queue{base: h, ch: make(chan entry, size), stop: make(chan struct{}), done: make(chan struct{}), flush: flush}
	go q.run()
	return &Handler{h: h, q: q}
}

// NewBuffered is New for the handler that newHandler makes on a buffer
// over w (bufSize bytes; zero or negative means 256 KiB), which the
// writer flushes whenever it has emptied the queue, but at most once
// every 100 ms: a burst of records reaches w in a few writes, a steady
// stream in one write each 100 ms (or each time the buffer fills), a
// lone record at once. Flush and Close write what is buffered at once.
//
// A server that logs every connection writes far less often this way
// under a flood of connections. Each write costs the process more than
// its bytes: it is a system call the scheduler is told of, which wakes
// the Go runtime's monitor thread when the process was idle, and the
// monitor may hand the writer's processor to another thread while the
// write lasts. At 12,000 connections a second (two lines each), shout
// spent about 7% more CPU a connection with writes every 10 ms than
// every 100 ms (BENCHMARKS.md). 256 KiB holds 100 ms of such lines.
func NewBuffered(w io.Writer, bufSize, size int, newHandler func(io.Writer) slog.Handler) *Handler {
	if bufSize <= 0 {
		bufSize = 256 << 10
	}
	bw := bufio.NewWriterSize(w, bufSize)
	return start(newHandler(wholeRecords{bw}), size, bw.Flush)
}

// wholeRecords is a buffer that never cuts a record across two writes (a
// slog handler writes each record with one Write): a bufio.Writer fills
// itself with the record's first part and writes it, and whatever else
// writes to the same file (--trace's lines) could land in between. A
// record that does not fit in what the buffer has left is written after
// what it holds is flushed.
type wholeRecords struct{ bw *bufio.Writer }

func (w wholeRecords) Write(p []byte) (int, error) {
	if len(p) > w.bw.Available() && w.bw.Buffered() > 0 {
		if err := w.bw.Flush(); err != nil {
			return 0, err
		}
	}
	return w.bw.Write(p) // one larger than the buffer goes straight through
}

// Enabled reports whether the wrapped handler handles records at level.
func (h *Handler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.h.Enabled(ctx, level)
}

// Handle queues a copy of r and returns nil at once. If the queue is full,
// or the Handler is closed, r is dropped and counted instead. The wrapped
// handler gets context.Background(): ctx may have ended by then.
func (h *Handler) Handle(_ context.Context, r slog.Record) error {
	if h.q.closed.Load() {
		h.q.drop()
		return nil
	}
	select {
	case h.q.ch <- entry{h: h.h, r: r.Clone()}:
	default:
		h.q.drop()
	}
	return nil
}

// WithAttrs returns a Handler on the same queue whose records carry attrs.
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return h
	}
	return &Handler{h: h.h.WithAttrs(attrs), q: h.q}
}

// WithGroup returns a Handler on the same queue whose records' attributes
// are in the group name.
func (h *Handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return &Handler{h: h.h.WithGroup(name), q: h.q}
}

// Dropped returns how many records have been dropped since New.
func (h *Handler) Dropped() int64 { return h.q.total.Load() }

// Flush waits until every record queued before it has been handled and any
// drop among them reported, or until ctx ends; then it returns ctx's error.
func (h *Handler) Flush(ctx context.Context) error {
	return h.q.mark(ctx, false)
}

// Close stops taking records (later ones are dropped), waits as Flush does
// and stops the goroutine. If ctx ends first, it returns ctx's error and
// the goroutine quits as soon as the wrapped handler returns, without
// handling what is still queued. Close can be called more than once.
func (h *Handler) Close(ctx context.Context) error {
	h.q.closed.Store(true)
	if err := h.q.mark(ctx, true); err != nil {
		h.q.once.Do(func() { close(h.q.stop) })
		return err
	}
	<-h.q.done // quits right after the marker
	return nil
}

func (q *queue) drop() {
	q.dropped.Add(1)
	q.total.Add(1)
}

// mark queues a marker behind every record queued so far and waits for the
// writer to reach it.
func (q *queue) mark(ctx context.Context, last bool) error {
	e := entry{flushed: make(chan struct{}), last: last}
	select {
	case q.ch <- e:
	case <-q.done:
		return nil // closed: nothing is left to write
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-e.flushed:
		return nil
	case <-q.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// run is the writer: it hands each record to its handler, in order.
func (q *queue) run() {
	defer close(q.done)
	// A writer that catches up reports drops at once; one that stays
	// behind, after each queue's worth of records, so that the report
	// neither waits for a lull nor floods the output.
	sinceReport := 0
	// A buffer is written when the queue empties, but not within
	// flushGap of the last write: then a timer writes it when the gap
	// has passed.
	var (
		gap     *time.Timer
		gapC    <-chan time.Time
		flushed time.Time
	)
	defer func() {
		if gap != nil {
			gap.Stop()
		}
	}()
	flush := func() {
		q.flushOut()
		flushed, gapC = time.Now(), nil
	}
	for {
		var e entry
		select {
		case e = <-q.ch:
		case <-gapC:
			flush()
			continue
		case <-q.stop:
			return
		}
		if e.flushed != nil {
			q.report()
			flush()
			close(e.flushed)
			if e.last {
				return
			}
			continue
		}
		e.h.Handle(context.Background(), e.r)
		if sinceReport++; len(q.ch) == 0 || sinceReport > cap(q.ch) {
			q.report()
			sinceReport = 0
		}
		if len(q.ch) > 0 || q.flush == nil || gapC != nil {
			continue // more to come, nothing to flush, or a flush is due
		}
		wait := flushGap - time.Since(flushed)
		if wait <= 0 {
			flush()
			continue
		}
		if gap == nil {
			gap = time.NewTimer(wait)
		} else {
			gap.Reset(wait)
		}
		gapC = gap.C
	}
}

// flushOut writes what the buffer under the handler holds, if it has one.
func (q *queue) flushOut() {
	if q.flush != nil {
		q.flush()
	}
}

// report writes how many records were dropped since the last report, if
// any.
func (q *queue) report() {
	n := q.dropped.Swap(0)
	if n == 0 {
		return
	}
	ctx := context.Background()
	if q.base.Enabled(ctx, slog.LevelWarn) {
		r := slog.NewRecord(time.Now(), slog.LevelWarn, "log records dropped", 0)
		r.AddAttrs(slog.Int64("dropped", n))
		q.base.Handle(ctx, r)
	}
}
