package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"shout/admin"
)

// Whoever opens connections to the admin port by the hundred, and holds
// them, does not take the descriptors the server's clients need: the
// admin listener serves admin.MaxConns at once, the rest wait unaccepted,
// and a client of the main listener is served at once, with no accept
// failing. The process's descriptor limit is lowered, once it serves, to
// a few more than the admin's cap needs.
func TestServeAdminConnectionsLeaveDescriptorsForClients(t *testing.T) {
	for _, engine := range []string{"loop", "goroutine"} {
		t.Run(engine, func(t *testing.T) {
			p := startServe(t, nil, "--admin=127.0.0.1:0", "--engine", engine, "127.0.0.1:0")
			url := adminOf(p)
			addr := p.addr("tcp")
			if got := exchange(t, "tcp", addr, "warm\n"); got != "WARM\n" { // the loops' descriptors are made
				t.Fatalf("got %q", got)
			}
			pid := p.cmd.Process.Pid
			fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
			if err != nil {
				t.Skipf("cannot count the server's descriptors: %v", err)
			}
			// Room for the admin's connections and a few clients, not for
			// every connection asked of the admin port.
			lim := unix.Rlimit{Cur: uint64(len(fds) + admin.MaxConns + 20)}
			lim.Max = lim.Cur
			if err := unix.Prlimit(pid, unix.RLIMIT_NOFILE, &lim, nil); err != nil {
				t.Skipf("cannot lower the server's descriptor limit: %v", err)
			}
			adminAddr := strings.TrimSuffix(strings.TrimPrefix(url, "http://"), "/")
			for range admin.MaxConns + 40 {
				c, err := net.DialTimeout("tcp", adminAddr, bound)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
			}
			// The cap reached, or (without one) the descriptors all taken.
			if _, ok := p.log.WaitForAny(bound, "admin listener: as many connections open", "http: Accept error"); !ok {
				t.Fatalf("neither the admin's cap nor its running out of descriptors logged:\n%s", p.logText())
			}
			if got := exchange(t, "tcp", addr, "still served\n"); got != "STILL SERVED\n" {
				t.Fatalf("got %q", got)
			}
			if log := p.logText(); strings.Contains(log, "accept failed") || strings.Contains(log, "http: Accept error") {
				t.Fatalf("connections to the admin port took the descriptors clients need:\n%s", log)
			}
		})
	}
}

// Once the connections that filled the admin listener close, it answers
// again.
func TestServeAdminServesAgainAfterItsCap(t *testing.T) {
	p := startServe(t, nil, "--admin=127.0.0.1:0", "127.0.0.1:0")
	url := adminOf(p)
	adminAddr := strings.TrimSuffix(strings.TrimPrefix(url, "http://"), "/")
	var idle []net.Conn
	for range admin.MaxConns + 5 {
		c, err := net.DialTimeout("tcp", adminAddr, bound)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		idle = append(idle, c)
	}
	p.waitLog("admin listener: as many connections open")
	for _, c := range idle {
		c.Close()
	}
	if code, _ := httpGet(t, url+"healthz"); code != http.StatusOK {
		t.Errorf("/healthz says %d once the idle connections closed, want 200", code)
	}
}

// A process out of descriptors (its main port flooded past its limit)
// still answers probes and scrapes on the admin port: /healthz says 200,
// for it is alive and a kubelet must not kill it; /readyz says 503, so
// that new clients go elsewhere, until descriptors are free again; and
// /metrics answers with what it can gather. The admin port's connections
// waited unaccepted, with those of the main port, and every probe failed.
func TestServeAdminOutOfDescriptors(t *testing.T) {
	p := startServe(t, nil, "--admin=127.0.0.1:0", "127.0.0.1:0")
	url := adminOf(p)
	addr := p.addr("tcp")
	if got := exchange(t, "tcp", addr, "warm\n"); got != "WARM\n" { // the loops' descriptors are made
		t.Fatalf("got %q", got)
	}
	pid := p.cmd.Process.Pid
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Skipf("cannot count the server's descriptors: %v", err)
	}
	const room = 8
	lim := unix.Rlimit{Cur: uint64(len(fds) + room)}
	lim.Max = lim.Cur
	if err := unix.Prlimit(pid, unix.RLIMIT_NOFILE, &lim, nil); err != nil {
		t.Skipf("cannot lower the server's descriptor limit: %v", err)
	}
	var flood []net.Conn
	defer func() {
		for _, c := range flood {
			c.Close()
		}
	}()
	for range 2 * room {
		c, err := net.DialTimeout("tcp", addr, bound)
		if err != nil {
			t.Fatal(err)
		}
		flood = append(flood, c)
	}
	p.waitLog("accept failed; retrying")

	if code, body := httpGet(t, url+"healthz"); code != http.StatusOK {
		t.Errorf("/healthz out of descriptors: %d %q, want 200", code, body)
	}
	if code, body := httpGet(t, url+"readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "out of open files") {
		t.Errorf("/readyz out of descriptors: %d %q, want 503, saying why", code, body)
	}
	if code, body := httpGet(t, url+"metrics"); code != http.StatusOK || !strings.Contains(body, "\nshout_connections_open{") {
		t.Errorf("/metrics out of descriptors: %d, %d bytes, want 200 and shout's metrics:\n%s", code, len(body), body)
	}

	for _, c := range flood {
		c.Close()
	}
	flood = nil
	code := 0
	// Until the server has closed them: bounded in time, not in tries (a
	// thousand asks took about a second, short on a loaded machine).
	for end := time.Now().Add(bound); code != http.StatusOK && time.Now().Before(end); {
		code, _ = httpGet(t, url+"readyz")
	}
	if code != http.StatusOK {
		t.Errorf("/readyz once the clients left: %d, want 200\n%s", code, p.logText())
	}
}
