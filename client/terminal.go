package client

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"shout/internal/escape"

	"github.com/ergochat/readline"
	"golang.org/x/term"
)

// Terminal is the interactive client on a terminal: a prompt with line
// editing and history; each non-blank line is sent, and what the server
// sends is printed as it arrives, above the prompt, which is drawn again
// with the line being typed.
type Terminal struct {
	// Addr names the server in the prompt and in messages.
	Addr string
	// Dial connects again: after the server closed, if Reconnect is set;
	// over UDP, for each line after the first, so that a late reply can
	// be told from the next line's.
	Dial      func() (net.Conn, error)
	Reconnect bool
	// Timeout is how long to wait for a reply before saying there is none
	// (a late reply is printed when it comes). For UDP it is the wait
	// before each retry. Zero means 2 s.
	Timeout time.Duration
	// Retries is how many times a UDP line is sent again without a reply.
	Retries int
	// HistoryFile keeps the lines typed, across sessions; empty: none.
	HistoryFile string
	// Trace writes every socket call to Err as it happens, as Trace does,
	// above the prompt and in order with what the server sends.
	Trace bool
	// Raw shows what the server sends as it is, escape sequences and all.
	// By default control characters are shown as cat -v shows them, so
	// that a server cannot clear the screen or move the cursor.
	Raw bool
	// In is the terminal the user types on; nil means os.Stdin.
	In *os.File
	// Out is the screen; Err gets the messages (usually the same screen).
	Out, Err io.Writer
}

// historyLimit is how many lines the history file keeps.
const historyLimit = 1000

// DefaultHistoryFile is $XDG_STATE_HOME/shout/history, or
// ~/.local/state/shout/history.
func DefaultHistoryFile() string {
	dir := os.Getenv("XDG_STATE_HOME")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return ""
		}
		dir = filepath.Join(home, ".local", "state")
	}
	return filepath.Join(dir, "shout", "history")
}

// typed is a line the user typed, or how typing ended (err: io.EOF for
// Ctrl-D, readline.ErrInterrupt for Ctrl-C).
type typed struct {
	line string
	err  error
}

// session is what the stream and datagram loops share: the line editor,
// the screen and the user's lines.
type session struct {
	t       *Terminal
	tty     *tty
	rl      *readline.Instance
	input   chan typed
	signals chan os.Signal
	done    chan struct{}
	history []string // the file's last lines when the session began, then the session's
	loaded  int      // how many of history came from the file

	vis    visible
	escape []byte // --raw: an ESC held back until what follows it comes

	// The editor's key handling and its redraw for a write must not run
	// at once (they share its line buffer), so while the editor reads a
	// line, what is to be printed waits in pending and a wakeRune put
	// among the keys has the editor print it between two keys.
	outMu    sync.Mutex
	inEditor bool
	pending  []pendingWrite
	woken    bool // a wakeRune is on its way
	midLine  bool // what was printed last on the terminal does not end in a newline
	errApart bool // messages go to a file, not the terminal (2>err.log)

	// A paste goes into the line in one piece, not a key at a time (see
	// filterKey): pasted is what the next pasteKey puts in; searching,
	// that the editor may be searching the history (Ctrl-R), where what
	// is typed goes to the search, and a paste goes in key by key as ever.
	// Both belong to the editor's goroutine.
	pasted    []rune
	searching bool

	holdLines <-chan struct{} // see holdLines
}

// holdLines, set by a test, holds readLines at each line (or end) the
// editor gives until it is closed, as a busy machine that leaves it
// without CPU does.
var holdLines <-chan struct{}

// wakeRune, among the keys, tells the editor to print what is pending;
// redrawRune, to draw the prompt and the line being typed again (after a
// stop). They are private-use characters no keyboard sends.
const (
	wakeRune   = '\U0010FFFD'
	redrawRune = '\U0010FFFC'
)

type pendingWrite struct {
	w io.Writer
	p []byte
}

// write prints p on w, through the editor, which redraws the prompt.
func (s *session) write(w io.Writer, p []byte) {
	s.outMu.Lock()
	defer s.outMu.Unlock()
	s.writeLocked(w, p)
}

// writeLine prints p, lines, as write does, but on a line of its own:
// on the terminal, after a newline if what was printed last did not end
// in one.
func (s *session) writeLine(w io.Writer, p []byte) {
	s.outMu.Lock()
	defer s.outMu.Unlock()
	if s.errApart {
		// The terminal's line is not the file's: no empty line in the
		// file, and the terminal still mid-line.
		mid := s.midLine
		s.writeLocked(w, p)
		s.midLine = mid
		return
	}
	if s.midLine {
		p = append([]byte{'\n'}, p...)
	}
	s.writeLocked(w, p)
}

// writeLocked is write; s.outMu must be held.
func (s *session) writeLocked(w io.Writer, p []byte) {
	if len(p) == 0 {
		return
	}
	s.midLine = p[len(p)-1] != '\n'
	if !s.inEditor {
		w.Write(p)
		return
	}
	s.pending = append(s.pending, pendingWrite{w, p})
	if !s.woken {
		s.woken = true
		s.tty.inject(string(wakeRune))
	}
}

// flushPending prints what waits; s.outMu must be held, and the editor
// must not be handling a key.
func (s *session) flushPending() {
	for _, pw := range s.pending {
		pw.w.Write(pw.p)
	}
	s.pending, s.woken = nil, false
}

// pasteKey, given to the editor in place of a character typed, has it
// put in what the characters typed with it (a paste) are, at once: see
// filterKey and listen. It is Shift-Tab, a key the editor does nothing
// with but call its Listener (and end a history search, which is why
// there is no paste during one). This leans on the editor's key loop as
// ergochat/readline v0.1.3 has it; TestPasteGoesInAtOnce and the
// terminal tests TestConnectTerminalLongLinePaste and
// TestConnectTerminalPasteMidLineAndSearch check it.
const pasteKey = readline.MetaShiftTab

// filterKey runs in the editor, between keys.
//
// A character typed with more behind it, already read (a paste), goes
// into the line with them at once, not one by one: for each character
// the editor measures its whole line, on the screen, and a paste of one
// long line was quadratic (64 KB took minutes of CPU). So the editor
// gets pasteKey, and listen puts them in the line, which the editor
// then draws again whole (a few times for a long paste, as it comes in
// pieces), where it drew each character after the last. Keys are read
// one at a time, in step with the editor (tty.Read), so what follows r
// in the tty's queue is what the editor would have read next.
func (s *session) filterKey(r rune) (rune, bool) {
	if !s.searching && inLine(r) {
		if more := s.tty.takeText(); len(more) > 0 {
			s.pasted = append([]rune{r}, more...)
			return pasteKey, true
		}
	}
	switch r {
	case wakeRune:
		s.outMu.Lock()
		s.flushPending()
		s.outMu.Unlock()
		return r, false
	case redrawRune: // the editor draws the line again for any key it is not given
		return r, false
	case readline.CharCtrlZ:
		// Raw mode makes it a key, not the terminal's SIGTSTP: sent here,
		// it stops shout as kill -TSTP does (not the editor's suspend,
		// which waits for a SIGCONT that never comes where shout does not
		// stop; see stoppable).
		suspendSelf()
		return r, false
	}
	return r, true
}

// listen runs in the editor after each key it handled, with the line
// and the cursor's place in it (before the first key: nil, 0, 0). After
// pasteKey it puts what was pasted in the line, at the cursor, as the
// editor would have one key at a time, and draws the line again.
func (s *session) listen(line []rune, pos int, key rune) ([]rune, int, bool) {
	if key == pasteKey && s.pasted != nil {
		p := s.pasted
		s.pasted = nil
		return slices.Insert(line, pos, p...), pos + len(p), true
	}
	s.pasted = nil
	// Ctrl-R and Ctrl-S search the history; what is typed, a backspace
	// or a Tab go to the search; any other key ends it, as does the end
	// of the line (ReadLine returns; the next begins with key 0).
	switch {
	case key == readline.CharBckSearch || key == readline.CharFwdSearch:
		s.searching = true
	case key == readline.CharBackspace || key == readline.CharCtrlH || key == readline.CharTab || key >= ' ':
	default:
		s.searching = false
	}
	return nil, 0, false
}

// inLine says whether the editor puts r in the line as it is when typed
// (and in a search, the search's text), so that a paste of such runes
// can go in at once. Controls, which are keys, are not; nor are the
// runes that stand for keys (negative), wakeRune and redrawRune.
func inLine(r rune) bool {
	return r >= ' ' && r != 0x7f && !(r >= 0x80 && r < 0xa0) && r != utf8.RuneError &&
		r != wakeRune && r != redrawRune
}

// Run talks to c until the user leaves (Ctrl-D, Ctrl-C) or, over a
// stream, the server closes (unless Reconnect). It returns the exit
// status: 0, or 1 if the server closed, a UDP line got no reply or
// lines typed were left unsent.
func (t *Terminal) Run(c net.Conn) int {
	defer func() {
		if c != nil {
			c.Close()
		}
	}()
	cfg := *t // the defaults go in a copy: the caller's Terminal stays as set
	t = &cfg
	if t.Timeout <= 0 {
		t.Timeout = defaultTimeout
	}
	in := t.In
	if in == nil {
		in = os.Stdin
	}
	udp := isDatagram(c)
	// (The address escaped: a Unix socket's name may hold ESC.)
	prompt := escape.Printable(t.Addr) + "> "
	if udp {
		prompt = escape.Printable(t.Addr) + " (udp)> "
	}
	s := &session{t: t, input: make(chan typed), done: make(chan struct{}), holdLines: holdLines}
	// Caught before the terminal goes raw, so that none comes while it
	// is raw with nothing to restore it: one that comes before the
	// session runs waits for it. SIGQUIT too: Go's default would leave
	// the terminal raw, below every goroutine's stack.
	s.signals = make(chan os.Signal, 1)
	signal.Notify(s.signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT)
	tt, err := openTTY(in, t.Out)
	if err != nil {
		signal.Stop(s.signals)
		fmt.Fprintf(t.Err, "shout: terminal: %v\n", err)
		return 1
	}
	s.tty = tt
	errOut := onScreen(tt, t.Err)
	_, onTerminal := errOut.(*ttyWriter)
	s.errApart = !onTerminal
	s.rl, err = readline.NewFromConfig(&readline.Config{
		Prompt:                 prompt,
		HistoryLimit:           historyLimit,
		DisableAutoSaveHistory: true,
		InterruptPrompt:        "\n",
		EOFPrompt:              "\n",
		Stdin:                  tt,
		Stdout:                 tt,
		Stderr:                 errOut,
		FuncIsTerminal:         func() bool { return true },
		FuncMakeRaw:            func() error { return nil }, // raw all along
		FuncExitRaw:            func() error { return nil },
		FuncGetSize:            tt.size,
		FuncFilterInputRune:    s.filterKey,
		Listener:               s.listen,
	})
	if err != nil {
		signal.Stop(s.signals)
		tt.restore()
		fmt.Fprintf(t.Err, "shout: terminal: %v\n", err)
		return 1
	}
	s.loadHistory()
	if t.Trace {
		c = Trace(c, traceWriter{s})
	}
	endStops := s.watchStops()
	linesDone := make(chan struct{})
	defer func() {
		signal.Stop(s.signals)
		endStops()
		close(s.done)
		s.rl.Close()
		// The editor erases its prompt as it stops.
		select {
		case <-linesDone:
		case <-time.After(time.Second):
		}
		// What was said for the editor to print and it has not (a wake
		// not yet handled: an editor left without CPU on a busy machine
		// is given a second to stop) is printed now: it held the
		// session's last words, "closed the connection", and shout left
		// with status 1 without saying why.
		s.outMu.Lock()
		s.inEditor = false
		s.flushPending()
		s.outMu.Unlock()
		tt.restore()
		if err := s.saveHistory(); err != nil {
			fmt.Fprintf(s.t.Err, "shout: history not saved: %s\n", escape.Printable(err.Error())) // (it names the file)
		}
	}()
	go func() { defer close(linesDone); s.readLines() }()
	if udp {
		return s.datagrams(c)
	}
	conn := c
	c = nil // closed by the stream loop
	return s.stream(conn)
}

// readLines reads what the user types, all the time, so that every line
// typed goes out in order however fast it comes.
func (s *session) readLines() {
	defer func() {
		// The editor can panic (on a paste it cannot hold, say); leave as
		// after any other failure, the terminal restored by Run.
		if r := recover(); r != nil {
			select {
			case s.input <- typed{err: fmt.Errorf("line editor: %v", r)}:
			case <-s.done:
			}
		}
	}()
	for {
		s.outMu.Lock()
		s.inEditor = true
		s.outMu.Unlock()
		line, err := s.rl.ReadLine()
		if s.holdLines != nil {
			<-s.holdLines
		}
		s.outMu.Lock()
		s.inEditor = false
		s.flushPending()
		s.outMu.Unlock()
		select {
		case s.input <- typed{line, err}:
		case <-s.done:
			return
		}
		if errors.Is(err, io.EOF) {
			// Not before the editor is done: Run waits for that, and the
			// terminal's reads end only once Run has restored it.
			go s.afterEOF()
			return
		}
		if err != nil {
			return
		}
		if strings.TrimSpace(line) != "" {
			s.rl.SaveToHistory(line)
		}
	}
}

// afterEOF reads the keys typed while the session waits for the replies
// owed after Ctrl-D: Ctrl-C still leaves at once. (The terminal is raw,
// so it sends no signal; nothing read the key, and the session waited
// out --timeout.)
func (s *session) afterEOF() {
	var b [1]byte
	for {
		if _, err := s.tty.Read(b[:]); err != nil {
			return
		}
		if b[0] == 0x03 {
			select {
			case s.input <- typed{err: readline.ErrInterrupt}:
			case <-s.done:
			}
			return
		}
	}
}

// remember keeps line for the history file.
func (s *session) remember(line string) { s.history = append(s.history, line) }

// userLeft says whether the user is leaving, and with which status if so.
func (s *session) userLeft(in typed) (code int, left bool) {
	if in.err == nil {
		return 0, false
	}
	if errors.Is(in.err, io.EOF) || errors.Is(in.err, readline.ErrInterrupt) {
		return 0, true
	}
	s.say("%v", in.err)
	return 1, true
}

// notSent says, as the user leaves with status code, that the n lines
// typed and still waiting to go out are not sent (why: what kept them);
// it returns the status to leave with: at least 1 if n > 0.
func (s *session) notSent(n int, why string, code int) int {
	if n == 0 {
		return code
	}
	s.say("%s not sent%s", linesText(n), why)
	return max(code, 1)
}

// signalStatus is the status to leave with on signal sig.
func signalStatus(sig os.Signal) int {
	if sig == syscall.SIGINT {
		return 0
	}
	return 1
}

// show prints what the server sent, above the prompt.
func (s *session) show(p []byte) {
	var out []byte
	if s.t.Raw {
		out = append(s.escape, p...)
		s.escape = nil
		if len(out) > 0 && out[len(out)-1] == 0x1b { // the editor chokes on a lone ESC
			s.escape = []byte{0x1b}
			out = out[:len(out)-1]
		}
	} else {
		out = s.vis.append(nil, p, false)
	}
	if len(out) == 0 {
		return
	}
	s.write(s.rl, out)
}

// say prints a message, "shout: ...", on a line of its own, escaped
// (escape.Printable): what it says may hold what shout did not choose
// (a Unix socket's name, a history file's, an error's text), which would
// drive the terminal.
func (s *session) say(format string, a ...any) {
	s.writeLine(s.rl.Stderr(), []byte("shout: "+escape.Printable(fmt.Sprintf(format, a...))+"\n"))
}

// traceWriter takes Trace's lines and prints each above the prompt, on
// a line of its own, in turn with what the server sends.
type traceWriter struct{ s *session }

func (w traceWriter) Write(p []byte) (int, error) {
	w.s.writeLine(w.s.rl.Stderr(), bytes.Clone(p))
	return len(p), nil
}

// dial connects again with t.Dial, traced if t.Trace.
func (s *session) dial() (net.Conn, error) {
	c, err := s.t.Dial()
	if err != nil || !s.t.Trace {
		return c, err
	}
	return Trace(c, traceWriter{s}), nil
}

// loadHistory reads the history file's last lines into the editor.
// Only a regular file is kept: a FIFO held the open until something
// wrote to it, the prompt never came, and neither Ctrl-C (a key, the
// terminal raw) nor SIGTERM (caught, for the prompt's loop not running
// yet) ended it; a device has no lines to keep (and --history /dev/null
// asks for none).
func (s *session) loadHistory() {
	if s.t.HistoryFile == "" {
		return
	}
	if fi, err := os.Stat(s.t.HistoryFile); err == nil && !fi.Mode().IsRegular() {
		if s.t.HistoryFile != os.DevNull {
			s.say("history %s is not a regular file: not read, and not saved", s.t.HistoryFile)
		}
		s.t.HistoryFile = "" // (t is Run's copy)
		return
	}
	f, err := os.Open(s.t.HistoryFile)
	if err != nil {
		return
	}
	defer f.Close()
	s.history = lastLines(f, historyLimit)
	s.loaded = len(s.history)
	for _, line := range s.history {
		s.rl.SaveToHistory(line)
	}
}

// lastLines reads r's lines, however long, and returns its last n that
// are not blank. (A bufio.Scanner stopped at a line over 64 KiB, and the
// history saved from what it had read lost every line after.)
func lastLines(r io.Reader, n int) []string {
	var lines []string
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadString('\n')
		if line = strings.TrimSuffix(line, "\n"); strings.TrimSpace(line) != "" {
			if len(lines) == 2*n {
				lines = append(lines[:0], lines[n:]...)
			}
			lines = append(lines, line)
		}
		if err != nil {
			return lines[max(len(lines)-n, 0):]
		}
	}
}

// saveHistory adds the session's lines to the history file as it is now,
// under a lock, keeping its last historyLimit: another shout connect may
// have added its own since this one began, and they are kept.
func (s *session) saveHistory() error {
	if s.t.HistoryFile == "" || len(s.history) == s.loaded {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(s.t.HistoryFile), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(s.t.HistoryFile, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	unlock := lockHistory(f)
	defer unlock()
	lines := append(lastLines(f, historyLimit), s.history[s.loaded:]...)
	var b strings.Builder
	for _, line := range lines[max(len(lines)-historyLimit, 0):] {
		b.WriteString(line + "\n")
	}
	if err := f.Truncate(0); err != nil {
		return err
	}
	_, err = f.WriteAt([]byte(b.String()), 0)
	return err
}

// onScreen is w, where messages go, as the line editor is to write to
// it: through tt if it is a terminal (the user's, raw); as it is if not
// (2>err.log), so that a file gets lines, not the raw terminal's "\r\n".
func onScreen(tt *tty, w io.Writer) io.Writer {
	if f, ok := w.(*os.File); ok && !term.IsTerminal(int(f.Fd())) {
		return w
	}
	return &ttyWriter{tt, w}
}

// ttyWriter writes to w, a stream that shows on the terminal, keeping
// the terminal's cursor column.
type ttyWriter struct {
	t *tty
	w io.Writer
}

func (w *ttyWriter) Write(p []byte) (int, error) { return w.t.write(w.w, p) }
