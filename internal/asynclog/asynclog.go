package asynclog

import (
	"bytes"
	"context"
	"io"
	"io/fs"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultSize is how many bytes of lines wait to be written, at most,
// when New is given zero: some 4,500 lines of 110 bytes (a connection's
// open and close lines are 100 and 120).
const DefaultSize = 512 << 10

// flushGap is the least time between two writes, but for those Flush and
// Close ask for, and for a buffer half full.
const flushGap = 100 * time.Millisecond

// Handler is a slog.Handler that formats each record on its caller's
// goroutine into a buffer, which its own goroutine writes. Handlers
// derived from it with WithAttrs and WithGroup share its buffer and its
// goroutine.
type Handler struct {
	h slog.Handler // newHandler's, with this one's attrs and groups
	q *queue
}

var _ slog.Handler = (*Handler)(nil)

// queue is what every Handler derived from one New shares: two buffers,
// the lines waiting and those being written, which the writer swaps.
type queue struct {
	w      io.Writer
	report slog.Handler // newHandler's, on out: the drops' report follows the lines written
	limit  int          // bytes that wait at most
	gap    time.Duration
	piece  int // bytes a write holds at most, but a long line's: 0, no limit

	mu      sync.Mutex
	fill    []byte // whole lines waiting
	pending bool   // the writer is woken for what fill holds
	urged   bool   // ... and to write it at once: fill is half full
	closed  bool
	dropped int64           // not yet reported
	waiters []chan struct{} // of Flush and Close: closed once what fill held when they came is written

	out   []byte // the writer's: the lines it writes, with the report
	total atomic.Int64
	wake  chan struct{} // to the writer: fill, waiters or urged changed
	stop  chan struct{} // closed when Close gives up: the writer quits
	once  sync.Once
	done  chan struct{} // closed when the writer has quit
}

// New returns a Handler of the handler newHandler makes on a buffer in
// front of w (a slog handler, which writes each record with one Write;
// newHandler is called twice). A record is formatted at once, on its
// caller's goroutine, and waits in the buffer, a whole line; one
// goroutine writes what the buffer holds when the buffer goes from empty
// to holding a line, but at most once every 100 ms: a lone line reaches w
// at once, a steady stream together each 100 ms (in one write, but to a
// pipe: below), or each time the buffer is half full. Nothing is written
// to w but whole lines, each in one Write, so that whatever else writes
// to the same file (--trace's lines) never lands inside one.
//
// When w is a pipe or a FIFO (an *os.File: os.Stderr under
// `shout serve 2>&1 | jq`), what waits goes in writes of at most
// PIPE_BUF bytes each (4,096 on Linux; 512, POSIX's least, on the other
// Unixes), each ending at a line's end, a longer line alone. A pipe
// takes a write of at most PIPE_BUF bytes whole or not at all, never in
// part, so a process that exits (or whose Close gives up) while a write
// waits for a slow reader leaves in the pipe whole lines only, but for a
// line longer than PIPE_BUF. (One write of everything was cut where the
// pipe was full: its reader got half a line last.)
//
// Nothing waits on w: while it is being written, lines fill the other
// buffer, and a line that would take it past size bytes (zero or negative
// means DefaultSize) is dropped and counted. (One longer than size is
// taken into an empty buffer, alone.) The next write carries, after its
// lines, one warning, "log records dropped" with dropped=N, through
// newHandler's handler, so that a reader can tell that lines are missing.
// Held in all: size bytes waiting and those being written. Call Close to
// write the last lines and stop the goroutine.
//
// A server that logs every connection spends little on its log this way
// under a flood of connections. A record costs a copy of its line under a
// lock (a fastlog handler's line is formatted into the buffer itself,
// under it: no copy): no copy of the record, no channel, no goroutine
// woken for it.
// And each write costs the process more than its bytes: it is a system
// call the scheduler is told of, which wakes the Go runtime's monitor
// thread when the process was idle, and the monitor may hand the writer's
// processor to another thread while the write lasts. At 12,000
// connections a second (two lines each), shout spent about 7% more CPU a
// connection with writes every 10 ms than every 100 ms (BENCHMARKS.md).
func New(w io.Writer, size int, newHandler func(io.Writer) slog.Handler) *Handler {
	return start(w, size, flushGap, newHandler)
}

func start(w io.Writer, size int, gap time.Duration, newHandler func(io.Writer) slog.Handler) *Handler {
	if size <= 0 {
		size = DefaultSize
	}
	q := &queue{w: w, limit: size, gap: gap, piece: pieceFor(w), wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	q.report = newHandler(outWriter{q})
	go q.run()
	return &Handler{h: newHandler(fillWriter{q}), q: q}
}

// pieceFor returns the most bytes a write to w holds: pipeBuf if w is a
// pipe or a FIFO, else 0, no limit. (pipeBuf is 0 on Windows.)
func pieceFor(w io.Writer) int {
	f, ok := w.(interface{ Stat() (fs.FileInfo, error) }) // an *os.File
	if !ok {
		return 0
	}
	if fi, err := f.Stat(); err == nil && fi.Mode()&fs.ModeNamedPipe != 0 {
		return pipeBuf
	}
	return 0
}

// fillWriter is the buffer the lines wait in.
type fillWriter struct{ q *queue }

// Write takes the line p into the buffer, or drops and counts it when
// the buffer has no room for it or the Handler is closed; it never fails.
func (f fillWriter) Write(p []byte) (int, error) {
	q := f.q
	q.mu.Lock()
	if q.refuses(len(q.fill), len(q.fill)+len(p)) {
		q.drop()
		return len(p), nil
	}
	q.fill = append(q.fill, p...)
	q.taken()
	return len(p), nil
}

// LockLine and UnlockLine make the buffer a fastlog.LineBuffer: a line
// is appended to it in place, under its lock, and kept or dropped as
// Write keeps or drops one.
func (f fillWriter) LockLine() []byte {
	f.q.mu.Lock()
	return f.q.fill
}

func (f fillWriter) UnlockLine(b []byte) {
	q := f.q
	n := len(q.fill)
	if len(b) == n {
		q.fill = b // (nothing appended)
		q.mu.Unlock()
		return
	}
	if q.refuses(n, len(b)) {
		q.fill = b[:n]
		q.drop()
		return
	}
	q.fill = b
	q.taken()
}

// refuses reports whether a line that takes the buffer from n bytes to
// m is dropped: the Handler is closed, or the line has no room in it (a
// line alone is taken, however long); q.mu is held.
func (q *queue) refuses(n, m int) bool {
	return q.closed || n > 0 && m > q.limit
}

// drop counts a line dropped; q.mu is held, and released.
func (q *queue) drop() {
	q.dropped++
	q.mu.Unlock()
	q.total.Add(1)
}

// taken is what Write and UnlockLine do once a line is in the buffer:
// the writer is woken for it if it is not already, or urged once the
// buffer is half full; q.mu is held, and released.
func (q *queue) taken() {
	full := len(q.fill) >= q.limit/2
	wake := !q.pending || full && !q.urged
	q.pending, q.urged = true, q.urged || full
	q.mu.Unlock()
	if wake {
		q.poke()
	}
}

// outWriter is the writer's buffer, for the drops' report.
type outWriter struct{ q *queue }

func (o outWriter) Write(p []byte) (int, error) {
	o.q.out = append(o.q.out, p...)
	return len(p), nil
}

// poke wakes the writer, if it is not awake already.
func (q *queue) poke() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// Enabled reports whether the wrapped handler handles records at level.
func (h *Handler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.h.Enabled(ctx, level)
}

// Handle formats r into the buffer and returns the wrapped handler's
// error. Without room in the buffer, or once the Handler is closed, the
// line is dropped and counted instead.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	return h.h.Handle(ctx, r)
}

// WithAttrs returns a Handler on the same buffer whose records carry
// attrs.
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return h
	}
	return &Handler{h: h.h.WithAttrs(attrs), q: h.q}
}

// WithGroup returns a Handler on the same buffer whose records'
// attributes are in the group name.
func (h *Handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return &Handler{h: h.h.WithGroup(name), q: h.q}
}

// Dropped returns how many records have been dropped since New.
func (h *Handler) Dropped() int64 { return h.q.total.Load() }

// Flush writes every line handled before it, and the report of any drop
// among them, or waits until ctx ends; then it returns ctx's error.
func (h *Handler) Flush(ctx context.Context) error {
	return h.q.flush(ctx, false)
}

// Close stops taking records (later ones are dropped), writes what waits
// as Flush does and stops the goroutine. If ctx ends first, it returns
// ctx's error and the goroutine quits as soon as its write returns,
// without writing what still waits. Close can be called more than once.
func (h *Handler) Close(ctx context.Context) error {
	err := h.q.flush(ctx, true)
	h.q.once.Do(func() { close(h.q.stop) })
	if err != nil {
		return err
	}
	<-h.q.done
	return nil
}

// flush asks the writer to write what waits at once, and waits until it
// has; closing first stops the buffer taking lines.
func (q *queue) flush(ctx context.Context, closing bool) error {
	written := make(chan struct{})
	q.mu.Lock()
	q.closed = q.closed || closing
	q.waiters = append(q.waiters, written)
	q.mu.Unlock()
	q.poke()
	var err error
	select {
	case <-written:
		return nil
	case <-q.done: // closed: nothing more is written
	case <-ctx.Done():
		err = ctx.Err()
	}
	// No longer waited for: not held while the writer is stuck, nor
	// once it has quit.
	q.mu.Lock()
	q.waiters = slices.DeleteFunc(q.waiters, func(c chan struct{}) bool { return c == written })
	q.mu.Unlock()
	return err
}

// run is the writer. Woken for lines, it writes them, once flushGap has
// passed since its last write, or at once if the buffer is half full or
// Flush or Close waits.
func (q *queue) run() {
	defer close(q.done)
	gap := time.NewTimer(q.gap)
	defer gap.Stop()
	var last time.Time // when the last write ended
	for {
		select {
		case <-q.wake:
		case <-q.stop:
			return
		}
		for !q.due() {
			wait := q.gap - time.Since(last)
			if wait <= 0 {
				break
			}
			gap.Reset(wait)
			select {
			case <-gap.C:
			case <-q.wake: // urged, or a Flush
			case <-q.stop:
				return
			}
		}
		if q.writeOut() {
			last = time.Now()
		}
		select {
		case <-q.stop:
			return
		default:
		}
	}
}

// due reports whether what waits is to be written without a gap.
func (q *queue) due() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.urged || len(q.waiters) > 0
}

// writeOut writes what the buffer holds, and after it the report of the
// records dropped since the last one, if any; then tells the Flushes and
// Closes that waited for it. It reports whether it wrote.
func (q *queue) writeOut() bool {
	q.mu.Lock()
	q.out, q.fill = q.fill, q.out[:0]
	dropped, waiters := q.dropped, q.waiters
	q.dropped, q.waiters, q.pending, q.urged = 0, nil, false, false
	q.mu.Unlock()
	if dropped > 0 {
		ctx := context.Background()
		if q.report.Enabled(ctx, slog.LevelWarn) {
			r := slog.NewRecord(time.Now(), slog.LevelWarn, "log records dropped", 0)
			r.AddAttrs(slog.Int64("dropped", dropped))
			q.report.Handle(ctx, r)
		}
	}
	wrote := len(q.out) > 0
	if wrote {
		q.write(q.out)
	}
	if cap(q.out) > 2*q.limit { // a line longer than the buffer: not kept
		q.out = nil
	}
	for _, w := range waiters {
		close(w)
	}
	return wrote
}

// write writes p to w, in pieces of whole lines of at most q.piece bytes
// if q.piece is set. A failed write loses its lines and the rest of p:
// stderr is gone. Once Close has given up, no piece more is written.
func (q *queue) write(p []byte) {
	if q.piece == 0 {
		q.w.Write(p)
		return
	}
	for len(p) > 0 {
		n := pieceOf(p, q.piece)
		if _, err := q.w.Write(p[:n]); err != nil {
			return
		}
		p = p[n:]
		select {
		case <-q.stop:
			return
		default:
		}
	}
}

// pieceOf returns the length of p's first piece: as many whole lines as
// fit in size bytes, or the first line alone if it is longer.
func pieceOf(p []byte, size int) int {
	if len(p) <= size {
		return len(p)
	}
	if i := bytes.LastIndexByte(p[:size], '\n'); i >= 0 {
		return i + 1
	}
	if i := bytes.IndexByte(p[size:], '\n'); i >= 0 {
		return size + i + 1
	}
	return len(p)
}
