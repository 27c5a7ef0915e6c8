//go:build unix

package client

import (
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/term"
)

// A terminal that reports no width (a pseudo-terminal nobody sized:
// expect's, script's, a container's before its first resize) is asked
// once a write, as a sized one is: asked again for every character while
// the answer was 0, a 64 KiB reply cost 65,000 ioctls, 47 times the time
// it takes on a sized terminal. The test compares the two, each at its
// fastest of a few tries, and allows 5 times.
func TestTTYWriteAsksUnsizedTerminalOnce(t *testing.T) {
	open := func(sized bool) *os.File {
		ptmx, tty0, err := pty.Open()
		if err != nil {
			t.Skip(err)
		}
		t.Cleanup(func() { ptmx.Close(); tty0.Close() })
		if sized {
			if err := pty.Setsize(ptmx, &pty.Winsize{Rows: 24, Cols: 80}); err != nil {
				t.Skip(err)
			}
		} else if w, _, err := term.GetSize(int(tty0.Fd())); err != nil || w != 0 {
			t.Skipf("a new pseudo-terminal's width: %d, %v; want 0", w, err)
		}
		return tty0
	}
	p := []byte(strings.Repeat("x", 64<<10))
	fastest := func(f *os.File) time.Duration {
		tt := &tty{f: f, out: io.Discard, col: 1}
		tt.cond = sync.NewCond(&tt.mu)
		best := time.Duration(1<<63 - 1)
		for range 5 {
			start := time.Now()
			tt.Write(p)
			best = min(best, time.Since(start))
		}
		return best
	}
	sized, unsized := fastest(open(true)), fastest(open(false))
	if unsized > 5*sized {
		t.Errorf("64 KiB on an unsized terminal took %v, on a sized one %v: its width was asked for each character", unsized, sized)
	}
}
