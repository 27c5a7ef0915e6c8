package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"shout/internal/shouttest"
)

// integration skips a slow test that starts real parts unless
// SHOUT_INTEGRATION is set (.ci/run sets it).
func integration(t *testing.T) {
	t.Helper()
	if os.Getenv("SHOUT_INTEGRATION") == "" {
		t.Skip("slow, with real parts: set SHOUT_INTEGRATION=1 to run (.ci/run does)")
	}
}

// haproxyUp asks HAProxy's stats socket whether every server of backend
// is up, and returns the states it read.
func haproxyUp(t *testing.T, socket, backend string, servers int) (bool, string) {
	c, err := net.DialTimeout("unix", socket, bound)
	if err != nil {
		return false, err.Error()
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(bound))
	fmt.Fprintf(c, "show stat\n")
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	up := 0
	for _, line := range strings.Split(b.String(), "\n") {
		f := strings.Split(line, ",")
		if len(f) > 17 && f[0] == backend && f[1] != "BACKEND" && f[1] != "FRONTEND" && f[17] == "UP" {
			up++
		}
	}
	return up == servers, b.String()
}

// A rolling restart of three replicas behind a real HAProxy (health
// checks on /readyz, PROXY v2), under a checked bench run with
// --reconnect: no reply wrong, none lost, no error. In an open loop at
// 1 msg/s too, where most connections have nothing to send while the
// replicas restart, and HAProxy closes them idle: "1 of 30 connections
// served a reply while measuring, 29 did not", status 1.
func TestRollingRestartBehindHAProxy(t *testing.T) {
	integration(t)
	for _, load := range []struct {
		name string
		args []string
	}{
		{"closed loop", []string{"--depth", "4"}},
		{"open loop at 1 per second", []string{"--rate", "1"}},
	} {
		t.Run(load.name, func(t *testing.T) { rollingRestart(t, load.args) })
	}
}

// rollingRestart is TestRollingRestartBehindHAProxy under a bench run
// whose load bench's flags load give.
func rollingRestart(t *testing.T, load []string) {
	haproxy := shouttest.Tool(t, "haproxy", "haproxy")
	ips := []string{"127.0.0.11", "127.0.0.12", "127.0.0.13"}
	// Each replica's service and admin addresses: port 0 at the first
	// start, which it says; a restart takes the same ones, as a real
	// replica's does. (Ports on 127.0.0.11-13, where no connection from
	// 127.0.0.1 can hold them.)
	addrs, admins := make([]string, len(ips)), make([]string, len(ips))
	replica := func(i int) *serveProc {
		p := startServe(t, nil, "tcp://"+addrs[i], "--admin="+admins[i], "--proxy-protocol", "--proxy-from=127.0.0.1",
			"--shutdown-timeout=5s", "--max-conns-per-ip=0")
		u, err := url.Parse(adminOf(p))
		if err != nil {
			t.Fatal(err)
		}
		addrs[i], admins[i] = p.addr("tcp"), u.Host
		return p
	}
	procs := make([]*serveProc, len(ips))
	for i, ip := range ips {
		addrs[i], admins[i] = ip+":0", ip+":0"
		procs[i] = replica(i)
	}
	binds, fronts, files := haproxyFrontends(t, 1)
	socket := filepath.Join(t.TempDir(), "haproxy.sock")
	// HAProxy logs each check whose result changed, and each server's
	// change of state, to its stderr, which the test reads: waitUp
	// waits for such a line, then asks again.
	cfg := fmt.Sprintf(`global
  stats socket %s level admin
  log stderr format raw local0
defaults
  log global
  option log-health-checks
  mode tcp
  timeout connect 2s
  timeout client 30s
  timeout server 30s
  retries 3
  option redispatch
frontend shout
  bind %s
  default_backend replicas
backend replicas
  balance roundrobin
  option httpchk GET /readyz
  default-server check inter 100ms fall 1 rise 1 send-proxy-v2
`, socket, binds[0])
	for i := range ips {
		_, adminPort, _ := net.SplitHostPort(admins[i])
		cfg += fmt.Sprintf("  server r%d %s port %s\n", i+1, addrs[i], adminPort)
	}
	var hpLog shouttest.Log
	startHAProxy(t, haproxy, cfg, files, &hpLog)
	waitUp := func(what string) {
		t.Helper()
		for deadline := time.Now().Add(bound); ; {
			logged := len(hpLog.String())
			ok, stat := haproxyUp(t, socket, "replicas", len(ips))
			if ok {
				return
			}
			if !hpLog.WaitPast(logged, time.Until(deadline)) {
				t.Fatalf("%s: HAProxy does not see every replica up within %v:\n%s\n%s", what, bound, stat, hpLog.String())
			}
		}
	}
	waitUp("at start")

	bench := startBench(t, append([]string{fronts[0], "--reconnect", "--conns", "30",
		"--duration", "10m", "--warmup", "0", "--timeout", "5s", "--json"}, load...)...)
	bench.settings()
	for i, ip := range ips {
		// Wait until this replica serves part of the load, then restart it.
		procs[i].waitLog("msg=open")
		procs[i].cmd.Process.Signal(syscall.SIGTERM)
		if code := procs[i].wait(); code != 0 {
			t.Errorf("replica %s exited %d:\n%s", ip, code, procs[i].logText())
		}
		procs[i] = replica(i)
		waitUp("after restarting " + ip)
	}
	bench.cmd.Process.Signal(syscall.SIGINT)
	out, code := bench.rest()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var rep struct {
		Messages, Mismatches, Lost, Errors, Reconnects, Resent int64
		FirstMismatch                                          string `json:"first_mismatch"`
		FirstError                                             string `json:"first_error"`
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &rep); err != nil {
		t.Fatalf("bench's last line is not its JSON: %v\n%s", err, out)
	}
	t.Logf("%d messages, %d reconnects, %d resent", rep.Messages, rep.Reconnects, rep.Resent)
	if code != 0 || rep.Messages == 0 || rep.Mismatches != 0 || rep.Lost != 0 || rep.Errors != 0 || rep.Reconnects == 0 {
		t.Errorf("bench exited %d: %d messages, %d wrong, %d lost, %d errors, %d reconnects; want 0 of each but messages and reconnects\n%s",
			code, rep.Messages, rep.Mismatches, rep.Lost, rep.Errors, rep.Reconnects, out)
	}
}
