package client

import (
	"bytes"
	"io"
	"strings"
	"sync"
	"testing"
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
