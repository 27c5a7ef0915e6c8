package server_test

import (
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"shout/internal/shouttest"
	"shout/server"
)

// A process out of file descriptors keeps serving: the accept that failed
// is logged and retried, and the connection that waited is served once a
// descriptor is free.
func TestAcceptOutOfDescriptorsRetries(t *testing.T) {
	var log shouttest.Log
	addr := shouttest.Start(t, &server.Server{Logger: log.Logger()})
	serving(t, addr)
	c, restore := dialOutOfDescriptors(t, addr, &log)
	defer restore()
	restore()
	// Worded as net words Accept's error, whichever driver accepted.
	if want := "accept tcp " + addr + ": accept4: too many open files"; !strings.Contains(log.String(), want) {
		t.Errorf("the failure is logged as\n%s\nwant it to say %q", log.String(), want)
	}
	io.WriteString(c, "still here")
	got := make([]byte, 10)
	c.SetDeadline(time.Now().Add(bound))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "STILL HERE" {
		t.Fatalf("got %q, %v", got, err)
	}
}

// However many event loops find a listener out of descriptors, each
// retry is logged once, as the goroutine driver's one accept loop logs
// it, not once by each loop.
func TestAcceptOutOfDescriptorsLoggedOncePerRetry(t *testing.T) {
	for range 5 {
		if outOfDescriptorsLoggedOncePerRetry(t) {
			return
		}
		t.Logf("a descriptor came free while the process was out of them; again, with a new server")
	}
	t.Fatal("five times a descriptor came free while the process was out of them")
}

// outOfDescriptorsLoggedOncePerRetry is one try of the test above. It
// reports false if the client was served while the process was out of
// descriptors: one came free that an earlier test, or the race
// detector's runtime, held, and the backoff began again.
func outOfDescriptorsLoggedOncePerRetry(t *testing.T) bool {
	var log shouttest.Log
	prev := runtime.GOMAXPROCS(4) // four loops, made as Serve starts
	restoreProcs := sync.OnceFunc(func() { runtime.GOMAXPROCS(prev) })
	t.Cleanup(restoreProcs)
	addr := shouttest.Start(t, &server.Server{Logger: log.Logger()})
	serving(t, addr) // the loops are made
	restoreProcs()
	c, restore := dialOutOfDescriptors(t, addr, &log)
	defer restore()
	// A retry that finds a descriptor come free serves c, and the
	// backoff ends there.
	served := "msg=open remote=" + c.LocalAddr().String() + " "
	if _, ok := log.WaitForAny(bound, "retry_in=40ms", served); !ok {
		t.Fatalf("no fourth retry logged:\n%s", log.String())
	}
	// What was logged while out of descriptors: once they are given
	// back, an accept resets the backoff, and a loop that tries again
	// before the last of them is free begins a new one.
	logged := log.String()
	restore()
	if strings.Contains(logged, served) {
		c.Close()
		return false
	}
	c.SetDeadline(time.Now().Add(bound))
	exchange(t, c, "still here", "STILL HERE")
	for _, d := range []string{"5ms", "10ms", "20ms"} {
		n := 0
		for line := range strings.Lines(logged) {
			if strings.Contains(line, "accept failed; retrying") && strings.Contains(line, "retry_in="+d+"\n") {
				n++
			}
		}
		if n != 1 {
			t.Errorf("the retry in %s is logged %d times, want once:\n%s", d, n, logged)
		}
	}
	return true
}

// serving waits until addr answers over TCP and UDP: starting to serve
// takes descriptors too, which a test that runs out of them must not race.
func serving(t *testing.T, addr string) {
	t.Helper()
	exchange(t, dial(t, addr), "a", "A")
	if got := exchangeUDP(t, addr, "u"); got != "U" {
		t.Fatalf("datagram: got %q, want %q", got, "U")
	}
}

// dialOutOfDescriptors runs the process out of descriptors
// (outOfDescriptors) and dials addr, and returns that connection once the
// server has logged that it could not accept it. A descriptor that comes
// free meanwhile lets the accept through: one that was open while the
// descriptors were taken and was closed after (the race detector's
// runtime opens files of /proc now and then). Then it gives the
// descriptors back and tries again, at most five times.
func dialOutOfDescriptors(t *testing.T, addr string, log *shouttest.Log) (net.Conn, func()) {
	t.Helper()
	for range 5 {
		restore := outOfDescriptors(t)
		c := dial(t, addr)
		served := "msg=open remote=" + c.LocalAddr().String() + " "
		got, ok := log.WaitForAny(bound, "accept failed; retrying", served)
		switch {
		case !ok:
			t.Fatalf("no accept failure logged, and the connection not served:\n%s", log.String())
		case got != served:
			return c, restore
		}
		t.Logf("a descriptor came free before the server's accept; again")
		restore()
		c.Close()
	}
	t.Fatalf("five times a descriptor came free before the server's accept:\n%s", log.String())
	return nil, nil
}

// outOfDescriptors lowers the process's descriptor limit and takes every
// descriptor but one, which a test's client socket is to take. restore
// gives them back, and is safe to call twice.
func outOfDescriptors(t *testing.T) (restore func()) {
	t.Helper()
	return outOfDescriptorsBut(t, 1)
}

// outOfDescriptorsBut is outOfDescriptors leaving free descriptors
// (at most 15) rather than one.
func outOfDescriptorsBut(t *testing.T, free int) (restore func()) {
	t.Helper()
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	var fillers []*os.File
	restore = sync.OnceFunc(func() {
		for _, f := range fillers {
			f.Close()
		}
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
			t.Errorf("restoring the descriptor limit: %v", err)
		}
	})
	t.Cleanup(restore) // if it skips or fails before returning
	top := 0
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot list descriptors: %v", err)
	}
	for _, e := range ents {
		if n, err := strconv.Atoi(e.Name()); err == nil {
			top = max(top, n)
		}
	}
	lim := old
	lim.Cur = uint64(top + 16)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Skipf("cannot lower the descriptor limit: %v", err)
	}
	// Take every descriptor but free.
	for range 10000 {
		f, err := os.Open(os.DevNull)
		if err != nil {
			if !errors.Is(err, syscall.EMFILE) {
				t.Fatal(err)
			}
			break
		}
		fillers = append(fillers, f)
	}
	for _, f := range fillers[len(fillers)-free:] {
		f.Close()
	}
	fillers = fillers[:len(fillers)-free]
	return restore
}
