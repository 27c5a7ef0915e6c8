package asynclog

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"shout/internal/fastlog"
	"shout/internal/shouttest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const bound = 10 * time.Second

// gate is a writer that lets writes through to a log only once opened:
// a stderr that nobody reads, until the test ends.
type gate struct {
	log     shouttest.Log
	entered chan struct{} // one value per Write that has started
	step    chan struct{} // lets one Write through
	open    chan struct{} // closed: lets every Write through
	once    sync.Once
}

func newGate() *gate {
	return &gate{entered: make(chan struct{}, 1<<16), step: make(chan struct{}), open: make(chan struct{})}
}

func (g *gate) Write(p []byte) (int, error) {
	g.entered <- struct{}{}
	select {
	case <-g.step:
	case <-g.open:
	}
	return g.log.Write(p)
}

func (g *gate) Open() { g.once.Do(func() { close(g.open) }) }

// noTime drops the time, so that lines can be compared.
func noTime(groups []string, a slog.Attr) slog.Attr {
	if a.Key == slog.TimeKey && len(groups) == 0 {
		return slog.Attr{}
	}
	return a
}

// text is a text handler without the time: slog's, or fastlog's in
// TestInPlace.
var text = slogText

func slogText(w io.Writer) slog.Handler {
	return slog.NewTextHandler(w, &slog.HandlerOptions{ReplaceAttr: noTime})
}

// fastlogText is fastlog's text handler without the time, which writes
// the same lines: on the buffer, its lines go into it in place (a
// fastlog.LineBuffer), not through Write.
func fastlogText(w io.Writer) slog.Handler { return timeless{fastlog.NewTextHandler(w, nil)} }

type timeless struct{ *fastlog.Handler }

func (h timeless) Handle(ctx context.Context, r slog.Record) error {
	r.Time = time.Time{}
	return h.Handler.Handle(ctx, r)
}

var _ fastlog.LineBuffer = fillWriter{}

// TestInPlace: the buffer's tests of its drops, order, bounds and lines,
// with fastlog's lines appended to it in place.
func TestInPlace(t *testing.T) {
	text = fastlogText
	defer func() { text = slogText }()
	for _, tc := range []struct {
		name string
		test func(*testing.T)
	}{
		{"DropsAreCountedAndReported", TestDropsAreCountedAndReported},
		{"DropsReportedWhileBehind", TestDropsReportedWhileBehind},
		{"OrderKept", TestOrderKept},
		{"EveryRecordAccounted", TestEveryRecordAccounted},
		{"AfterCloseHoldsNothing", TestAfterCloseHoldsNothing},
		{"HalfFullWrittenAtOnce", TestHalfFullWrittenAtOnce},
		{"HeldBounded", TestHeldBounded},
		{"LongLineAloneNotKept", TestLongLineAloneNotKept},
		{"DeclinedLineDroppedOnce", TestDeclinedLineDroppedOnce},
	} {
		t.Run(tc.name, tc.test)
	}
}

// lines is the bytes of n lines as text writes "level=INFO msg=rN".
func lines(n int) int { return n * len("level=INFO msg=r0\n") }

func closeOrFail(t *testing.T, h *Handler) {
	t.Helper()
	inTime(t, "Close", h.Close)
}

func flushOrFail(t *testing.T, h *Handler) {
	t.Helper()
	inTime(t, "Flush", h.Flush)
}

// inTime calls f (Flush or Close), failing the test if it fails or does
// not return within bound.
func inTime(t *testing.T, name string, f func(context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	if err := f(ctx); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

// held is a buffer of 4 lines' bytes before a gate, empty, its writer
// held in the write of line r0; the gate is opened as the test ends.
func held(t *testing.T) (*gate, *Handler, *slog.Logger) {
	g := newGate()
	t.Cleanup(g.Open)
	h := New(g, lines(4), text)
	log := slog.New(h)
	log.Info("r0")
	<-g.entered
	return g, h, log
}

// A full buffer drops records, counts them, and the next write says how
// many, after the records it kept, in order.
func TestDropsAreCountedAndReported(t *testing.T) {
	g, h, log := held(t)
	for i := 1; i <= 7; i++ {
		log.Info("r" + strconv.Itoa(i)) // r1..r4 fit, r5..r7 do not
	}
	if got := h.Dropped(); got != 3 {
		t.Errorf("Dropped() = %d, want 3", got)
	}
	g.Open()
	// No Flush: the next write reports.
	if !g.log.WaitFor("dropped=3", bound) {
		t.Fatalf("no report of the dropped records:\n%s", g.log.String())
	}
	want := "level=INFO msg=r0\nlevel=INFO msg=r1\nlevel=INFO msg=r2\nlevel=INFO msg=r3\nlevel=INFO msg=r4\n" +
		"level=WARN msg=\"log records dropped\" dropped=3\n"
	if got := g.log.String(); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	closeOrFail(t, h)
}

// A writer that never catches up, its buffer never empty, still reports
// in its next write.
func TestDropsReportedWhileBehind(t *testing.T) {
	g, h, log := held(t)
	for range 5 {
		log.Info("r1") // the fifth is dropped
	}
	g.step <- struct{}{} // r0 written
	<-g.entered          // the four r1 and the report, held
	log.Info("r2")       // waits: the writer is behind still
	g.step <- struct{}{}
	if !g.log.WaitFor("dropped=1", bound) {
		t.Fatalf("no report while behind:\n%s", g.log.String())
	}
	if got := h.Dropped(); got != 1 {
		t.Errorf("Dropped() = %d, want 1", got)
	}
	g.Open()
	closeOrFail(t, h)
	if got := g.log.String(); !strings.HasSuffix(got, "dropped=1\nlevel=INFO msg=r2\n") {
		t.Errorf("got\n%s", got)
	}
}

func TestOrderKept(t *testing.T) {
	g := newGate()
	g.Open()
	h := New(g, 0, text)
	log := slog.New(h)
	const n = 2000
	for i := range n {
		log.Info("m", "i", i)
	}
	closeOrFail(t, h)
	lines := strings.Split(strings.TrimSuffix(g.log.String(), "\n"), "\n")
	if len(lines) != n || h.Dropped() != 0 {
		t.Fatalf("%d lines, %d dropped; want %d and 0", len(lines), h.Dropped(), n)
	}
	for i, l := range lines {
		if want := fmt.Sprintf("level=INFO msg=m i=%d", i); l != want {
			t.Fatalf("line %d: got %q, want %q", i, l, want)
		}
	}
}

func TestAttrsAndGroupsKept(t *testing.T) {
	tests := []struct {
		name string
		new  func(io.Writer) slog.Handler
		want string
	}{
		{"text", text, "level=INFO msg=m conn=7 g.k=1 g.a=2\n"},
		{"json", func(w io.Writer) slog.Handler {
			return slog.NewJSONHandler(w, &slog.HandlerOptions{ReplaceAttr: noTime})
		}, `{"level":"INFO","msg":"m","conn":7,"g":{"k":1,"a":2}}` + "\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := newGate()
			g.Open()
			h := New(g, 0, tc.new)
			slog.New(h).With("conn", 7).WithGroup("g").With("k", 1).Info("m", "a", 2)
			closeOrFail(t, h)
			if got := g.log.String(); got != tc.want {
				t.Errorf("got %s want %s", got, tc.want)
			}
		})
	}
}

// The dropped report is written in the wrapped handler's format, outside
// any group of the record that was dropped.
func TestReportFormatJSON(t *testing.T) {
	g := newGate()
	defer g.Open()
	h := New(g, len(`{"level":"INFO","msg":"queued"}`+"\n"), func(w io.Writer) slog.Handler {
		return slog.NewJSONHandler(w, &slog.HandlerOptions{ReplaceAttr: noTime})
	})
	log := slog.New(h).WithGroup("g")
	log.Info("held")
	<-g.entered
	log.Info("queued")
	log.Info("dropped")
	g.Open()
	closeOrFail(t, h)
	want := `{"level":"INFO","msg":"held"}` + "\n" + `{"level":"INFO","msg":"queued"}` + "\n" +
		`{"level":"WARN","msg":"log records dropped","dropped":1}` + "\n"
	if got := g.log.String(); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

// Against a writer that never returns, Flush and Close give up when their
// context ends, and Handle never blocks.
func TestFlushAndCloseBounded(t *testing.T) {
	g := newGate()
	defer g.Open() // at the end, so that the writer can quit
	h := New(g, lines(4), text)
	log := slog.New(h)
	log.Info("stuck")
	<-g.entered
	for range 100 {
		log.Info("more")
	}
	for _, f := range []struct {
		name string
		call func(context.Context) error
	}{{"Flush", h.Flush}, {"Close", h.Close}} {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		err := f.call(ctx)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s with the writer stuck: %v, want DeadlineExceeded", f.name, err)
		}
	}
	// Flushes that gave up are not held on to while the writer is stuck.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for range 1000 {
		h.Flush(ctx)
	}
	h.q.mu.Lock()
	waiting := len(h.q.waiters)
	h.q.mu.Unlock()
	if waiting != 0 {
		t.Errorf("%d Flushes that gave up held", waiting)
	}
	before := h.Dropped()
	log.Info("after close")
	if got := h.Dropped(); got != before+1 {
		t.Errorf("a record after Close: dropped %d, want %d", got, before+1)
	}
	g.Open()
	<-h.q.done // the writer quits once its write returns, writing no more
	if got := g.log.String(); got != "level=INFO msg=stuck\n" {
		t.Errorf("written after Close gave up:\n%s", got)
	}
}

// Under load from many goroutines, every record is written or counted,
// and every one counted is reported.
func TestEveryRecordAccounted(t *testing.T) {
	g := newGate()
	g.Open()
	h := New(g, lines(16), text)
	log := slog.New(h)
	const goroutines, each = 8, 500
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for range each {
				log.Info("m")
			}
		})
	}
	wg.Wait()
	closeOrFail(t, h)
	out := g.log.String()
	written := strings.Count(out, "msg=m\n")
	var reported int64
	for _, m := range regexp.MustCompile(`dropped=(\d+)`).FindAllStringSubmatch(out, -1) {
		n, _ := strconv.ParseInt(m[1], 10, 64)
		reported += n
	}
	if int64(written)+h.Dropped() != goroutines*each || reported != h.Dropped() {
		t.Errorf("%d written + %d dropped, want %d in all; %d reported", written, h.Dropped(), goroutines*each, reported)
	}
	t.Logf("%d written, %d dropped", written, h.Dropped())
}

func TestCloseTwice(t *testing.T) {
	g := newGate()
	g.Open()
	h := New(g, 0, text)
	slog.New(h).Info("last")
	closeOrFail(t, h)
	select {
	case <-h.q.done:
	default:
		t.Error("Close returned with its goroutine still running")
	}
	closeOrFail(t, h)
	slog.New(h).Info("after")
	if got := g.log.String(); got != "level=INFO msg=last\n" || h.Dropped() != 1 {
		t.Errorf("got %q, %d dropped; want the last line, and the one after Close dropped", got, h.Dropped())
	}
}

// Flushes and Closes after Close return at once and hold nothing: the
// writer has quit and would never let go of what they left for it. Nor
// does a Flush take records again.
func TestAfterCloseHoldsNothing(t *testing.T) {
	g := newGate()
	g.Open()
	h := New(g, 0, text)
	closeOrFail(t, h)
	for range 1000 {
		closeOrFail(t, h)
		flushOrFail(t, h)
	}
	h.q.mu.Lock()
	waiting := len(h.q.waiters)
	h.q.mu.Unlock()
	if waiting != 0 {
		t.Errorf("%d Flushes and Closes after Close held", waiting)
	}
	slog.New(h).Info("after")
	if h.Dropped() != 1 {
		t.Errorf("a record after Close and Flush: %d dropped, want 1", h.Dropped())
	}
}

// Flush returns once the lines it waited for are written, not before.
func TestFlushWaitsForTheWrite(t *testing.T) {
	g := newGate()
	defer g.Open()
	h := start(g, 0, time.Hour, text)
	log := slog.New(h)
	log.Info("r0") // written at once, and held there
	<-g.entered
	log.Info("r1")
	flushed := make(chan bool, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), bound)
		defer cancel()
		h.Flush(ctx)
		flushed <- strings.Contains(g.log.String(), "r1")
	}()
	g.step <- struct{}{} // r0 written: the writer takes r1 for the Flush
	<-g.entered          // r1's write, held
	for range 1000 {     // (time for a Flush that returned early to say so)
		runtime.Gosched()
	}
	select {
	case <-flushed:
		t.Fatal("Flush returned while its line's write was held")
	default:
	}
	g.Open()
	if !<-flushed {
		t.Errorf("Flush returned before r1 was written:\n%s", g.log.String())
	}
	closeOrFail(t, h)
}

// Records that wait while the output is slow reach it together, in one
// write, and a lone record is written at once.
func TestWritesWhatWaitedTogether(t *testing.T) {
	g := newGate()
	h := New(g, 0, text)
	log := slog.New(h)
	log.Info("first")
	select {
	case <-g.entered: // written at once, and held there
	case <-time.After(bound):
		t.Fatal("a lone record was not written")
	}
	const n = 100
	for i := range n {
		log.Info("queued", "i", i)
	}
	g.Open()
	closeOrFail(t, h)
	if writes := 1 + len(g.entered); writes != 2 {
		t.Errorf("%d records took %d writes, want 2", n+1, writes)
	}
	lines := strings.Split(strings.TrimSuffix(g.log.String(), "\n"), "\n")
	if len(lines) != n+1 || lines[0] != "level=INFO msg=first" || lines[n] != "level=INFO msg=queued i=99" {
		t.Errorf("got %d lines, first %q, last %q", len(lines), lines[0], lines[len(lines)-1])
	}
}

// stamped is a writer that notes when each write began, and says when a
// write holds a line containing want.
type stamped struct {
	mu     sync.Mutex
	starts []time.Time
	text   strings.Builder
	want   string
	seen   chan struct{}
	once   sync.Once
}

func (w *stamped) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.starts = append(w.starts, time.Now())
	w.text.Write(p)
	if strings.Contains(string(p), w.want) {
		w.once.Do(func() { close(w.seen) })
	}
	return len(p), nil
}

// A steady stream of records, which the writer could write one by one,
// is written at most once every flushGap; the last record still goes out
// without a Flush.
func TestWritesAStreamOncePerGap(t *testing.T) {
	w := &stamped{want: "msg=last", seen: make(chan struct{})}
	// A buffer larger than every record the test can make: a half full
	// one is written at once, whatever the gap.
	h := New(w, 64<<20, text)
	log := slog.New(h)
	// The stream lasts 5 flushGaps of its own time: a pause of the test
	// (a busy machine) counts 10 ms at most, since no record came in it.
	// (On the clock alone, a test not run for 800 ms made 2 records, and
	// 2 writes, rightly; stall.sh 100 300 500 1500.)
	n, streamed := 0, time.Duration(0)
	start, next, prev := time.Now(), time.Now(), time.Now()
	for ; streamed < 5*flushGap && n < 1e5 && time.Since(start) < bound; n++ {
		for time.Now().Before(next) { // a steady stream: a record each 100 µs
			runtime.Gosched()
		}
		now := time.Now()
		streamed += min(now.Sub(prev), 10*time.Millisecond)
		next, prev = next.Add(100*time.Microsecond), now
		log.Info("stream", "i", n)
	}
	log.Info("last")
	select {
	case <-w.seen:
	case <-time.After(bound):
		t.Fatal("the last record was not written without a Flush")
	}
	closeOrFail(t, h)
	w.mu.Lock()
	defer w.mu.Unlock()
	for i := 1; i < len(w.starts); i++ {
		if d := w.starts[i].Sub(w.starts[i-1]); d < flushGap && i < len(w.starts)-1 {
			// (Close's write, the last, may come at any time.)
			t.Fatalf("write %d of %d came %v after the one before, want at least %v", i, len(w.starts), d, flushGap)
		}
	}
	if lines := strings.Count(w.text.String(), "\n"); lines < n+1 {
		t.Errorf("%d lines written of %d records", lines, n+1)
	}
	if len(w.starts) < 3 {
		t.Errorf("a stream of %d records over %v was written in %d writes; want one each %v", n+1, time.Since(start), len(w.starts), flushGap)
	}
	t.Logf("%d records in %d writes", n+1, len(w.starts))
}

// writes records each Write it is given.
type writes struct {
	mu sync.Mutex
	w  []string
}

func (c *writes) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.w = append(c.w, string(p))
	return len(p), nil
}

// Every write ends at the end of a record. A record cut across two writes
// (a buffer's first part, then the rest) let another writer's line land
// inside it: with --trace, trace lines inside log lines.
func TestNeverSplitsARecord(t *testing.T) {
	var c writes
	h := New(&c, 4096, func(w io.Writer) slog.Handler { return slog.NewTextHandler(w, nil) })
	log := slog.New(h)
	const n = 200
	for i := range n {
		log.Info("close", "remote", "127.0.0.11:47532", "reason", "eof", "i", i, "pad", strings.Repeat("x", 40))
		if i%16 == 0 {
			flushOrFail(t, h) // (the buffer holds 4096 bytes: about 30 lines)
		}
	}
	flushOrFail(t, h)
	log.Info("larger than the buffer", "pad", strings.Repeat("y", 5000)) // alone: taken
	closeOrFail(t, h)
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, w := range c.w {
		if !strings.HasSuffix(w, "\n") {
			t.Fatalf("write %d of %d ends inside a record: ...%q", i, len(c.w), w[max(0, len(w)-40):])
		}
	}
	if got := strings.Count(strings.Join(c.w, ""), "\n"); got != n+1 || h.Dropped() != 0 {
		t.Errorf("%d lines, %d dropped, want %d and 0", got, h.Dropped(), n+1)
	}
}

// A lone record is written at once, however long the gap between writes
// is, and the next one waits for the gap (here an hour: the test's Flush).
func TestLoneRecordAtOnce(t *testing.T) {
	g := newGate()
	g.Open()
	h := start(g, 0, time.Hour, text)
	log := slog.New(h)
	log.Info("r0")
	if !g.log.WaitFor("msg=r0", bound) {
		t.Fatal("a lone record was not written at once")
	}
	<-g.entered
	log.Info("r1")
	if n := len(g.entered); n != 0 || strings.Contains(g.log.String(), "r1") {
		t.Errorf("r1 written within the gap of r0's write")
	}
	flushOrFail(t, h)
	if got := g.log.String(); got != "level=INFO msg=r0\nlevel=INFO msg=r1\n" {
		t.Errorf("got %q", got)
	}
	closeOrFail(t, h)
}

// A lone record is written at once also after a Flush that found
// nothing to write: only a write begins the gap.
func TestLoneRecordAtOnceAfterEmptyFlush(t *testing.T) {
	g := newGate()
	g.Open()
	h := start(g, 0, time.Hour, text)
	flushOrFail(t, h)
	slog.New(h).Info("r0")
	if !g.log.WaitFor("msg=r0", bound) {
		t.Fatal("a lone record after an empty Flush waited for the gap")
	}
	closeOrFail(t, h)
}

// A buffer half full is written without waiting for the gap: the other
// half holds the lines that come while it is written. The gap then
// holds again.
func TestHalfFullWrittenAtOnce(t *testing.T) {
	g := newGate()
	g.Open()
	h := start(g, lines(8), time.Hour, text)
	log := slog.New(h)
	log.Info("r0") // written at once: the gap begins
	<-g.entered
	for round := 1; round <= 2; round++ {
		log.Info("r1") // wakes the writer, which waits out the gap
		for i := 0; i < 1e6 && len(h.q.wake) > 0; i++ {
			runtime.Gosched()
		}
		for range 100 { // (let it reach its wait)
			runtime.Gosched()
		}
		log.Info("r1")
		log.Info("r1")
		h.q.mu.Lock()
		urged := h.q.urged
		h.q.mu.Unlock()
		if len(g.entered) != 0 || urged {
			t.Fatal("3 lines of 8 written within the gap")
		}
		log.Info("r" + strconv.Itoa(round+1)) // the fourth: half full
		if !g.log.WaitFor("msg=r"+strconv.Itoa(round+1), bound) {
			t.Fatalf("a half-full buffer waited for the gap:\n%s", g.log.String())
		}
		<-g.entered
	}
	closeOrFail(t, h)
	if want := "level=INFO msg=r0\n" + strings.Repeat("level=INFO msg=r1\n", 3) + "level=INFO msg=r2\n" +
		strings.Repeat("level=INFO msg=r1\n", 3) + "level=INFO msg=r3\n"; g.log.String() != want || h.Dropped() != 0 {
		t.Errorf("got\n%s\nwant\n%s", g.log.String(), want)
	}
}

// While the output is stuck, the lines waiting never hold more than the
// buffer's size: the rest are dropped whole and counted, and those kept
// are whole lines.
func TestHeldBounded(t *testing.T) {
	g := newGate()
	defer g.Open()
	size := lines(10) + 5
	h := New(g, size, text)
	log := slog.New(h)
	log.Info("r0")
	<-g.entered
	for i := range 1000 {
		log.Info("r" + strconv.Itoa(i%10))
	}
	h.q.mu.Lock()
	held := len(h.q.fill)
	h.q.mu.Unlock()
	if held != lines(10) || h.Dropped() != 990 {
		t.Errorf("%d bytes held of at most %d, %d dropped; want %d and 990", held, size, h.Dropped(), lines(10))
	}
	g.Open()
	closeOrFail(t, h)
	want := "level=INFO msg=r0\n"
	for i := range 10 {
		want += "level=INFO msg=r" + strconv.Itoa(i) + "\n"
	}
	want += "level=WARN msg=\"log records dropped\" dropped=990\n"
	if got := g.log.String(); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

// A line longer than the buffer is written, alone, and its buffer is not
// kept for the lines after it.
func TestLongLineAloneNotKept(t *testing.T) {
	var c writes
	h := New(&c, 1024, text)
	log := slog.New(h)
	log.Info("long", "pad", strings.Repeat("y", 100_000))
	flushOrFail(t, h)
	if got := cap(h.q.out); got > 2*1024 {
		t.Errorf("a buffer of %d bytes kept after the long line", got)
	}
	closeOrFail(t, h)
	if len(c.w) != 1 || len(c.w[0]) < 100_000 || h.Dropped() != 0 {
		t.Errorf("%d writes, %d dropped; want the long line in one", len(c.w), h.Dropped())
	}
}

// A line that fastlog's quick path declines (it holds an error, which
// slog's handler writes) and that is then dropped is counted once, as
// any other: behind a line longer than the buffer that waits alone, and
// after Close. (The in-place path's "nothing appended" once counted it
// as dropped too, before slog's handler's line was dropped again.)
func TestDeclinedLineDroppedOnce(t *testing.T) {
	g, h, log := held(t)
	log.Info("long", "pad", strings.Repeat("y", lines(4))) // taken, alone
	log.Info("e", "err", errors.New("x"))                  // no room
	if got := h.Dropped(); got != 1 {
		t.Errorf("a line with an error behind a long one: Dropped() = %d, want 1", got)
	}
	g.Open()
	closeOrFail(t, h)
	if got := g.log.String(); !strings.HasSuffix(got, " dropped=1\n") {
		t.Errorf("got\n%s\nwant a report of 1 dropped last", got)
	}
	log.Info("e", "err", errors.New("x"))
	if got := h.Dropped(); got != 2 {
		t.Errorf("a line with an error after Close: Dropped() = %d in all, want 2", got)
	}
}

// BenchmarkConnLines: a churned connection's two lines, as shout serve
// logs them (fastlog's text), through the buffer to a writer that takes
// everything, flushed every 1,024 connections so that nothing is
// dropped: the formatting, the handoff, and the writer's share.
func BenchmarkConnLines(b *testing.B) { connLines(b, nowhere{}) }

// BenchmarkConnLinesPipe is BenchmarkConnLines to a pipe: "nowhere"
// takes every write and says it is a pipe (asynclog's own cost of its
// pieces), "os.Pipe" is one, which a goroutine reads (with the system
// calls).
func BenchmarkConnLinesPipe(b *testing.B) {
	b.Run("nowhere", func(b *testing.B) { connLines(b, nowherePipe{}) })
	b.Run("os.Pipe", func(b *testing.B) {
		r, w, err := os.Pipe()
		if err != nil {
			b.Fatal(err)
		}
		drained := make(chan struct{})
		go func() {
			defer close(drained)
			io.Copy(io.Discard, r)
		}()
		connLines(b, w)
		w.Close()
		<-drained
		r.Close()
	})
}

// connLines is BenchmarkConnLines to w.
func connLines(b *testing.B, w io.Writer) {
	h := New(w, 0, func(w io.Writer) slog.Handler { return fastlog.NewTextHandler(w, nil) })
	defer h.Close(context.Background())
	ctx := context.Background()
	n := 0
	for b.Loop() {
		open := slog.NewRecord(time.Now(), slog.LevelInfo, "open", 0)
		open.AddAttrs(slog.String("remote", "127.0.0.1:40312"), slog.String("local", "127.0.0.1:47555"))
		h.Handle(ctx, open)
		closed := slog.NewRecord(time.Now(), slog.LevelInfo, "close", 0)
		closed.AddAttrs(slog.String("remote", "127.0.0.1:40312"), slog.String("reason", "eof"), slog.Duration("duration", 6230*time.Microsecond),
			slog.Int64("bytes_in", 64), slog.Int64("bytes_out", 64))
		h.Handle(ctx, closed)
		if n++; n%1024 == 0 {
			h.Flush(ctx)
		}
	}
	h.Flush(ctx)
	if d := h.Dropped(); d > 0 {
		b.Fatalf("%d dropped: the benchmark outran the writer", d)
	}
}

// nowherePipe is nowhere that says it is a pipe.
type nowherePipe struct{ nowhere }

func (nowherePipe) Stat() (fs.FileInfo, error) { return pipeInfo{}, nil }

// nowhere takes every write, and is not io.Discard, which a handler may
// know and skip.
type nowhere struct{}

func (nowhere) Write(p []byte) (int, error) { return len(p), nil }

// exitChild, set in a child's environment, makes TestExitWhileWriting
// the child: it logs lines of 100 bytes to its stderr, which its parent
// does not read, and exits while the write is blocked.
const exitChild = "ASYNCLOG_TEST_EXIT_CHILD"

// lineOf100 is the i-th of the child's lines: 100 bytes with its newline.
func lineOf100(i int) string {
	s := fmt.Sprintf("level=INFO msg=line i=%06d pad=", i)
	return s + strings.Repeat("x", 99-len(s)) + "\n"
}

// A process that exits while its log is written to a pipe that is not
// read leaves in the pipe whole lines only: a write cut by the exit left
// half a line as the last thing its reader got (a line a JSON reader
// cannot parse, a log shipper takes for a line).
func TestExitWhileWriting(t *testing.T) {
	if pipeBuf == 0 {
		t.Skip("no PIPE_BUF here")
	}
	const n = 2000 // 200,000 bytes: more than a pipe holds
	if os.Getenv(exitChild) != "" {
		h := New(os.Stderr, 0, func(w io.Writer) slog.Handler { return plain{w} })
		log := slog.New(h)
		for i := range n {
			log.Info(lineOf100(i))
		}
		// The writer fills the pipe and blocks: Close gives up.
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		h.Close(ctx)
		os.Exit(0) // while the writer is blocked in its write
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^TestExitWhileWriting$")
	cmd.Env = append(os.Environ(), exitChild+"=1")
	cmd.Stderr = w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v", err)
	}
	got, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) == 0 || len(got) >= n*100 {
		t.Fatalf("the child wrote %d bytes; want some, not all of %d", len(got), n*100)
	}
	for i, l := range strings.SplitAfter(string(got), "\n") {
		if l == "" {
			break // after the last newline
		}
		if want := lineOf100(i); l != want {
			t.Fatalf("line %d of what the pipe held at exit (%d bytes): %q, want %q", i, len(got), l, want)
		}
	}
}

// plain is a handler that writes each record's message as it is: the
// child's lines, 100 bytes each.
type plain struct{ w io.Writer }

func (p plain) Enabled(context.Context, slog.Level) bool { return true }
func (p plain) Handle(_ context.Context, r slog.Record) error {
	_, err := io.WriteString(p.w, r.Message)
	return err
}
func (p plain) WithAttrs([]slog.Attr) slog.Handler { return p }
func (p plain) WithGroup(string) slog.Handler      { return p }

func TestPieceOf(t *testing.T) {
	tests := []struct {
		p    string
		size int
		want int
	}{
		{"", 8, 0},
		{"ab\n", 8, 3},
		{"ab\ncd\n", 6, 6},          // all fits
		{"ab\ncd\nef\n", 7, 6},      // two lines of three
		{"ab\ncdefghij\nk\n", 8, 3}, // the second line does not fit
		{"ab\ncd\nef\n", 6, 6},      // the last that fits ends at size
		{"abcdef\ngh\n", 7, 7},      // a first line of size bytes: alone
		{"abcdefghij\nk\n", 8, 11},  // a first line longer: alone
		{"abcdefghij", 8, 10},       // (no newline: all)
	}
	for _, tc := range tests {
		if got := pieceOf([]byte(tc.p), tc.size); got != tc.want {
			t.Errorf("pieceOf(%q, %d) = %d, want %d", tc.p, tc.size, got, tc.want)
		}
	}
}

// fakePipe is a writer that says it is a pipe, as an *os.File's Stat
// does, and keeps each write.
type fakePipe struct{ writes }

func (*fakePipe) Stat() (fs.FileInfo, error) { return pipeInfo{}, nil }

type pipeInfo struct{ fs.FileInfo }

func (pipeInfo) Mode() fs.FileMode { return fs.ModeNamedPipe | 0o600 }

// To a pipe, what waits goes in writes of whole lines of at most
// PIPE_BUF bytes, a longer line alone, every line once and in order.
func TestPipeWritesAtMostPipeBuf(t *testing.T) {
	if pipeBuf == 0 {
		t.Skip("no PIPE_BUF here")
	}
	var c fakePipe
	h := New(&c, 0, text)
	log := slog.New(h)
	const n = 3000
	for i := range n {
		log.Info("m", "i", i)
		if i == n/2 {
			log.Info("long", "pad", strings.Repeat("y", 3*pipeBuf))
		}
	}
	closeOrFail(t, h)
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.w) < 2 {
		t.Fatalf("%d writes, want pieces", len(c.w))
	}
	for i, w := range c.w {
		if !strings.HasSuffix(w, "\n") || len(w) > pipeBuf && strings.Count(w, "\n") > 1 {
			t.Fatalf("write %d of %d: %d bytes, %d lines; want whole lines of at most %d bytes, or one", i, len(c.w), len(w), strings.Count(w, "\n"), pipeBuf)
		}
	}
	lines := strings.Split(strings.TrimSuffix(strings.Join(c.w, ""), "\n"), "\n")
	if len(lines) != n+1 || h.Dropped() != 0 {
		t.Fatalf("%d lines, %d dropped; want %d and 0", len(lines), h.Dropped(), n+1)
	}
	for i, j := 0, 0; i < n; i, j = i+1, j+1 {
		if i == n/2+1 {
			j++ // the long line
		}
		if want := fmt.Sprintf("level=INFO msg=m i=%d", i); lines[j] != want {
			t.Fatalf("line %d: %q, want %q", j, lines[j], want)
		}
	}
}

// pipeGate is a gate that says it is a pipe.
type pipeGate struct{ *gate }

func (pipeGate) Stat() (fs.FileInfo, error) { return pipeInfo{}, nil }

// pipeHeld returns a Handler on a gate that says it is a pipe, with the
// writer held in its write of a first line (but where there is no
// PIPE_BUF: the test is skipped). What is logged next waits for the
// writer: one batch.
func pipeHeld(t *testing.T) (*gate, *Handler, *slog.Logger) {
	t.Helper()
	if pipeBuf == 0 {
		t.Skip("no PIPE_BUF here")
	}
	g := newGate()
	t.Cleanup(g.Open)
	h := start(pipeGate{g}, 0, time.Hour, text)
	log := slog.New(h)
	log.Info("first") // written at once, and held there
	<-g.entered
	return g, h, log
}

// Once Close has given up, the writer quits when its piece's write
// returns, writing none of the pieces after it.
func TestPipeCloseGivenUpWritesNoMorePieces(t *testing.T) {
	g, h, log := pipeHeld(t)
	for i := range 1000 { // many pieces
		log.Info("m", "i", i)
	}
	flushed := make(chan error, 1)
	go func() { flushed <- h.Flush(context.Background()) }()
	g.step <- struct{}{} // "first" written: the writer takes the rest for the Flush
	<-g.entered          // its first piece, held
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := h.Close(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Close with the writer stuck: %v, want Canceled", err)
	}
	g.Open()
	<-h.q.done
	<-flushed
	got := g.log.String()
	if n := strings.Count(got, "\n"); n < 2 || len(got)-len("level=INFO msg=first\n") > pipeBuf {
		t.Errorf("%d lines, %d bytes written; want the first and one piece after it, no more:\n%s", n, len(got), got)
	}
}

// To a pipe, each piece holds as many whole lines as fit in PIPE_BUF
// bytes: a piece of one line each took some 40 times the writes, each a
// system call and a wake-up of the reader, for a connection's lines.
func TestPipePiecesAsFullAsFit(t *testing.T) {
	g, h, log := pipeHeld(t)
	const n = 1000
	for i := range n { // one batch, for the Flush
		log.Info("m", "i", fmt.Sprintf("%04d", i))
	}
	g.Open()
	flushOrFail(t, h)
	line := len("level=INFO msg=m i=0000\n")
	full := pipeBuf / line * line // the bytes of a full piece
	if got, want := len(g.entered), (n*line+full-1)/full; got != want {
		t.Errorf("%d lines of %d bytes in %d writes, want %d of at most %d bytes", n, line, got, want, pipeBuf)
	}
	closeOrFail(t, h)
}
