package client

import (
	"bytes"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/ergochat/readline"
)

// What is written while a stop holds the screen (from cook to raw) waits,
// in order, screen and messages alike, and comes out at release: the
// editor drew its prompt on the shell's cooked terminal as shout ran
// again, before raw mode was back (TestConnectTerminalStop then failed
// now and then: a Ctrl-D typed on that prompt was read as a NUL).
func TestTTYHoldsWritesDuringAStop(t *testing.T) {
	var screen bytes.Buffer
	tt := &tty{out: &screen, col: 1}
	tt.cond = sync.NewCond(&tt.mu)
	errs := &ttyWriter{tt, &screen}

	tt.Write([]byte("before\n"))
	tt.mu.Lock()
	tt.hold() // as cook does
	tt.mu.Unlock()
	tt.Write([]byte("> prompt"))
	errs.Write([]byte("a message\n"))
	if got := screen.String(); got != "before\r\n" {
		t.Fatalf("during the stop the screen got %q, want only what came before it", got)
	}
	tt.mu.Lock()
	tt.release() // as raw does
	tt.mu.Unlock()
	tt.Write([]byte("after"))
	if got, want := screen.String(), "before\r\n> prompta message\r\nafter"; got != want {
		t.Errorf("after the stop the screen has %q, want %q", got, want)
	}

	// A stop that would hold more than maxHeld lets it all out, in order.
	screen.Reset()
	tt.mu.Lock()
	tt.hold()
	tt.mu.Unlock()
	line := strings.Repeat("x", 1023) + "\n"
	for range maxHeld/len(line) + 2 {
		tt.Write([]byte(line))
	}
	if screen.Len() == 0 || tt.holding || len(tt.held) != 0 {
		t.Errorf("past maxHeld: %d bytes on the screen, holding %v with %d writes", screen.Len(), tt.holding, len(tt.held))
	}
	if strings.Count(screen.String(), "\r\n") != screen.Len()/1025 {
		t.Errorf("past maxHeld the lines came out mangled")
	}
}

// Putting a large reply on the screen asks the terminal its size once a
// write, whatever it answers: asked once a character, 64 KiB cost 65,000
// ioctls, and after the first fix still did on a terminal nobody had
// given a size (0 columns: expect's, script's, a container's before its
// first resize).
func TestTTYWriteAsksSizeOnceAWrite(t *testing.T) {
	for _, width := range []int{0, -1, 80} {
		asked := 0
		tt := &tty{out: io.Discard, col: 1, sizeOf: func() (int, int) { asked++; return width, 24 }}
		tt.cond = sync.NewCond(&tt.mu)
		tt.Write([]byte(strings.Repeat("héllo wörld 哈\n", 4096)))
		if asked != 1 {
			t.Errorf("a terminal %d columns wide was asked its size %d times in one write, want once", width, asked)
		}
	}
}

// BenchmarkTTYWrite is a 64 KiB reply of text put on the screen: what
// shout connect costs a large reply on a terminal.
func BenchmarkTTYWrite(b *testing.B) {
	tt := &tty{out: io.Discard, col: 1}
	tt.cond = sync.NewCond(&tt.mu)
	p := []byte(strings.Repeat(strings.Repeat("héllo wörld ", 10)+"\n", 64<<10/121))
	b.SetBytes(int64(len(p)))
	for b.Loop() {
		tt.Write(p)
	}
}

// A character typed with more text behind it, already read (a paste),
// goes to the editor as pasteKey, and the editor's Listener puts them all
// in the line at the cursor: one at a time, a long pasted line cost the
// editor quadratic time. What is not text (a key's escape sequence, a
// control, a private rune, half a character) ends the paste, and is left
// for the editor to read in turn; while the editor searches the history
// (Ctrl-R), what is typed goes to the search, key by key.
func TestPasteGoesInAtOnce(t *testing.T) {
	tt := &tty{}
	tt.cond = sync.NewCond(&tt.mu)
	s := &session{tty: tt}
	s.listen(nil, 0, 0) // as the editor does before a line

	key := func(r rune, queue string) rune {
		t.Helper()
		tt.queue = []byte(queue)
		got, ok := s.filterKey(r)
		if !ok {
			t.Fatalf("filterKey(%q) dropped the key", r)
		}
		return got
	}
	listen := func(line string, pos int, k rune) (string, int, bool) {
		l, p, ok := s.listen([]rune(line), pos, k)
		return string(l), p, ok
	}

	if k := key('a', "b哈c\x1b[D"); k != pasteKey || string(tt.queue) != "\x1b[D" {
		t.Fatalf("filterKey = %q, left %q; want pasteKey, and the escape sequence left", k, tt.queue)
	}
	if line, pos, ok := listen("12", 1, pasteKey); line != "1ab哈c2" || pos != 5 || !ok {
		t.Errorf("after the paste the line is %q, cursor at %d (%v); want %q at 5", line, pos, ok, "1ab哈c2")
	}
	// A real Shift-Tab is left alone.
	if _, _, ok := listen("x", 1, pasteKey); ok {
		t.Errorf("a Shift-Tab typed changed the line")
	}

	for _, queue := range []string{"", "\r", "\x1b[A", "\x7f", "\xe5\x93", string(wakeRune) + "b"} {
		if k := key('a', queue); k != 'a' || string(tt.queue) != queue {
			t.Errorf("before %q: filterKey = %q, left %q; want the key as it is and all left", queue, k, tt.queue)
		}
	}
	if k := key('\t', "ab"); k != '\t' {
		t.Errorf("a Tab before text became %q", k)
	}
	if k := key('a', "b\xe5\x93"); k != pasteKey || string(tt.queue) != "\xe5\x93" {
		t.Errorf("before half a character: filterKey = %q, left %q; want pasteKey, the half left", k, tt.queue)
	}
	s.listen(nil, 0, pasteKey)

	// Searching the history: text and backspaces go to the search.
	for _, k := range []rune{readline.CharBckSearch, 'x', readline.CharBackspace, readline.CharFwdSearch} {
		s.listen(nil, 0, k)
		if k := key('a', "bc"); k != 'a' {
			t.Fatalf("while searching, filterKey = %q; want the key as it is", k)
		}
	}
	s.listen(nil, 0, readline.CharLineEnd) // ends the search
	if k := key('a', "bc"); k != pasteKey {
		t.Errorf("after the search, filterKey = %q; want pasteKey", k)
	}
	s.listen(nil, 0, readline.CharBckSearch)
	s.listen(nil, 0, 0) // the next line
	if k := key('a', "bc"); k != pasteKey {
		t.Errorf("on the line after a search, filterKey = %q; want pasteKey", k)
	}
}
