package client

import (
	"bytes"
	"io"
	"os"
	"strconv"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/term"
	"golang.org/x/text/width"
)

// tty is the user's terminal as the line editor sees it. It stays in raw
// mode for the whole session, so that nothing typed between two prompts
// is echoed or lost, and one goroutine reads it into a queue that only
// the line editor consumes.
//
// The editor asks the terminal where the cursor is before each prompt
// (a DSR query) and waits for the answer. A terminal that never answers
// (expect, a plain pseudo-terminal) would hang it, so tty answers itself:
// it sees every byte written to the screen and keeps the cursor's column.
type tty struct {
	f     *os.File
	r     *os.File // f, or f opened again for Go's poller (readable)
	state *term.State

	mu     sync.Mutex
	cond   *sync.Cond
	queue  []byte // read from the terminal (and our own answers), not yet taken
	closed bool

	out    io.Writer         // the screen
	col    int               // the cursor's column, from 1
	sizeOf func() (int, int) // the terminal's size, if not f's (a test's)

	pending []byte // an incomplete escape sequence or character written to out

	// holding: the terminal is given back for a stop (cook) and not yet
	// taken again (raw). What is written meanwhile (the editor can still
	// be drawing as shout stops, and draws before raw mode is back as it
	// runs again) waits in held, so that it does not land on the shell's
	// terminal, cooked: keys typed on a prompt drawn then would be cooked
	// too (a Ctrl-D read as a NUL).
	holding bool
	held    []heldWrite
	heldLen int
}

// heldWrite is a write the stop held back: out, as write made it, for w.
type heldWrite struct {
	w   io.Writer
	out []byte
}

// maxHeld bounds what a stop holds back; past it, what was held and what
// follows is written at once, as if there were no stop.
const maxHeld = 1 << 20

var aLongTimeAgo = time.Unix(1, 0)

// openTTY puts f in raw mode and starts reading it.
func openTTY(f *os.File, out io.Writer) (*tty, error) {
	state, err := term.MakeRaw(int(f.Fd()))
	if err != nil {
		return nil, err
	}
	t := &tty{f: f, r: readable(f), state: state, out: out, col: 1}
	t.cond = sync.NewCond(&t.mu)
	go t.readLoop()
	return t, nil
}

func (t *tty) readLoop() {
	if t.r != t.f {
		defer t.r.Close()
	}
	buf := make([]byte, 4096)
	for {
		n, err := t.r.Read(buf)
		t.mu.Lock()
		t.queue = append(t.queue, buf[:n]...)
		if err != nil {
			t.closed = true
		}
		t.cond.Broadcast()
		stop := t.closed
		t.mu.Unlock()
		if stop {
			return
		}
	}
}

// Read gives the line editor what was typed.
func (t *tty) Read(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for len(t.queue) == 0 && !t.closed {
		t.cond.Wait()
	}
	if len(t.queue) == 0 {
		return 0, io.EOF
	}
	// One byte at a time: the editor reads ahead into a buffer of its
	// own, and behind a large paste it would not reach the answer to its
	// cursor query (see write) until it had stashed more keys than it
	// holds, and panicked.
	n := copy(p[:min(len(p), 1)], t.queue)
	t.queue = t.queue[n:]
	return n, nil
}

// takeText takes, from the front of what was typed and not yet read,
// the runes that go in the line as they are (inLine), whole ones only.
func (t *tty) takeText() []rune {
	t.mu.Lock()
	defer t.mu.Unlock()
	var rs []rune
	i := 0
	for i < len(t.queue) {
		r, n := utf8.DecodeRune(t.queue[i:])
		if !inLine(r) {
			break
		}
		rs = append(rs, r)
		i += n
	}
	t.queue = t.queue[i:]
	return rs
}

// inject puts s among the keys typed, after those already there.
func (t *tty) inject(s string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.queue = append(t.queue, s...)
	t.cond.Broadcast()
}

// size is the terminal's width and height, -1 if unknown.
func (t *tty) size() (int, int) {
	if t.sizeOf != nil {
		return t.sizeOf()
	}
	w, h, err := term.GetSize(int(t.f.Fd()))
	if err != nil {
		return -1, -1
	}
	return w, h
}

// restore leaves raw mode and stops the editor's reads. The goroutine
// reading the terminal may stay blocked until a key is pressed, if the
// terminal cannot be interrupted; by then the process has left. In the
// background (a stopped shout killed by its shell) it leaves the terminal
// alone, as cook does: it gave it back as it stopped, what is there now
// is another job's, and changing it would stop shout again (SIGTTOU).
func (t *tty) restore() {
	t.mu.Lock()
	t.closed = true
	t.cond.Broadcast()
	t.release()
	t.mu.Unlock()
	t.r.SetReadDeadline(aLongTimeAgo)
	if t.foreground() {
		term.Restore(int(t.f.Fd()), t.state)
	}
}

// Write puts p on the screen with each "\n" made "\r\n" (raw mode does
// not), keeps count of the cursor's column and answers the editor's
// cursor position queries.
func (t *tty) Write(p []byte) (int, error) { return t.write(t.out, p) }

// write writes p to w, a stream that shows on the terminal, as Write does.
func (t *tty) write(w io.Writer, p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]byte, 0, len(p)+8)
	width, asked := 0, false // the terminal's, asked once a write, when a character needs it (0 or -1: unknown)
	data := append(t.pending, p...)
	t.pending = nil
	for i := 0; i < len(data); {
		b := data[i]
		switch {
		case b == '\n':
			if i == 0 || data[i-1] != '\r' {
				out = append(out, '\r')
			}
			out = append(out, '\n')
			t.col = 1
			i++
		case b == '\r':
			out = append(out, b)
			t.col = 1
			i++
		case b == '\b':
			out = append(out, b)
			t.col = max(t.col-1, 1)
			i++
		case b == 0x1b:
			n, final, param := csi(data[i:])
			if n == 0 { // not complete yet
				t.pending = bytes.Clone(data[i:])
				i = len(data)
				continue
			}
			seq := data[i : i+n]
			i += n
			switch {
			case final == 'n' && param == "6": // where is the cursor? Answered ahead of what was typed
				t.queue = append([]byte("\x1b[1;"+strconv.Itoa(t.col)+"R"), t.queue...)
				t.cond.Broadcast()
				continue // the terminal need not answer too
			case final == 'G':
				t.col = max(atoi(param, 1), 1)
			case final == 'H':
				t.col = 1
				if _, c, ok := bytes.Cut([]byte(param), []byte(";")); ok {
					t.col = max(atoi(string(c), 1), 1)
				}
			}
			out = append(out, seq...)
		case b < 0x20 || b == 0x7f:
			out = append(out, b)
			i++
		default:
			r, n := rune(b), 1 // printable ASCII, one column
			if b >= utf8.RuneSelf {
				r, n = utf8.DecodeRune(data[i:])
				if r == utf8.RuneError && n <= 1 && !utf8.FullRune(data[i:]) {
					t.pending = bytes.Clone(data[i:])
					i = len(data)
					continue
				}
			}
			out = append(out, data[i:i+n]...)
			i += n
			if r < utf8.RuneSelf {
				t.col++
			} else {
				t.col += runeWidth(r)
			}
			if !asked {
				width, _ = t.size()
				asked = true
			}
			if width > 0 && t.col > width+1 {
				t.col -= width
			}
		}
	}
	if t.holding {
		t.held = append(t.held, heldWrite{w, out})
		if t.heldLen += len(out); t.heldLen > maxHeld {
			t.release()
		}
		return len(p), nil
	}
	if _, err := w.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

// hold holds back what is written until release; t.mu must be held.
func (t *tty) hold() { t.holding = true }

// release writes what hold held back, in order, and holds no more; t.mu
// must be held.
func (t *tty) release() {
	held := t.held
	t.held, t.heldLen, t.holding = nil, 0, false
	for _, h := range held {
		h.w.Write(h.out)
	}
}

// csi measures the escape sequence at the start of b: its length (0 if
// b ends before it does), its final byte and its parameters.
func csi(b []byte) (n int, final byte, param string) {
	if len(b) < 2 {
		return 0, 0, ""
	}
	if b[1] != '[' {
		return 2, b[1], ""
	}
	for i := 2; i < len(b); i++ {
		if b[i] >= 0x40 && b[i] <= 0x7e {
			return i + 1, b[i], string(b[2:i])
		}
	}
	return 0, 0, ""
}

func atoi(s string, def int) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		return def
	}
	return n
}

// runeWidth is how many columns r takes, as the line editor counts them.
func runeWidth(r rune) int {
	if unicode.In(r, unicode.Mn, unicode.Me, unicode.Cc, unicode.Cf) {
		return 0
	}
	switch width.LookupRune(r).Kind() {
	case width.EastAsianWide, width.EastAsianFullwidth:
		return 2
	}
	return 1
}
