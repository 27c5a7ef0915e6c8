//go:build unix

package certs

import (
	"context"
	"os"
	"syscall"
	"testing"
	"time"
)

// A read that Go's poller cannot wait on (a pipe on macOS) has no time
// limit, and its notice says so, timeout 0: it said 10 s, and the read
// went on waiting past them. A pipe whose descriptors block stands in
// for one: os.NewFile leaves such a descriptor out of the poller too.
func TestWaitNoticeOfAReadWithNoLimit(t *testing.T) {
	var fds [2]int
	if err := syscall.Pipe(fds[:]); err != nil {
		t.Fatal(err)
	}
	r, w := os.NewFile(uintptr(fds[0]), "r"), os.NewFile(uintptr(fds[1]), "w")
	defer r.Close()
	defer w.Close()
	if r.SetReadDeadline(time.Now().Add(time.Hour)) == nil {
		t.Skip("the poller waits on a blocking pipe here")
	}
	limits := make(chan time.Duration, 4)
	ctx := WithWaitNotice(context.Background(), 0, func(_ string, timeout time.Duration) { limits <- timeout })
	wt := newWaiter(ctx, "--cert", "p.pem")
	defer wt.stop()
	said := make(chan time.Duration, 1)
	go func() {
		defer w.Close() // the read's end, once the notice came
		select {
		case l := <-limits:
			said <- l
		case <-time.After(10 * time.Second):
			said <- -1
		}
	}()
	if _, err := readPEMFile(ctx, wt, r, false, true); err != nil {
		t.Fatal(err)
	}
	if l := <-said; l != 0 {
		t.Errorf("notice said timeout %v; want 0, none (-1: no notice)", l)
	}
}
