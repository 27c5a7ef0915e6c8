package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/alecthomas/kong"

	"shout/internal/shouttest"
	"shout/server"
)

// TestREADMEFlags checks that every flag the README documents for a
// command is one kong knows for it, so a field whose derived name differs
// from the documented one (SourceIPs became --source-i-ps) fails here.
func TestREADMEFlags(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var c cli
	parser, err := kong.New(&c, kong.Name("shout"), serveEnvars())
	if err != nil {
		t.Fatal(err)
	}
	sections := []struct{ cmd, from, to string }{
		{"serve", "## Serve", "## Talk to it"},
		{"connect", "## Talk to it", "## Measure it"},
		{"bench", "## Measure it", "## In a container"}, // podman's flags follow
	}
	flagRE := regexp.MustCompile("(?:^|[\\s`(])(--[a-z][a-z0-9-]*)")
	// Flags of other programs the sections name, and whose they are.
	others := map[string]string{"--foreground": "GNU timeout", "--allowed-unsafe-sysctls": "the kubelet"}
	for _, s := range sections {
		t.Run(s.cmd, func(t *testing.T) {
			text := string(readme)
			i, j := strings.Index(text, s.from), strings.Index(text, s.to)
			if i < 0 || j < i {
				t.Fatalf("README has no section %q before %q", s.from, s.to)
			}
			text = text[i:j]
			var node *kong.Node
			for _, n := range parser.Model.Children {
				if n.Name == s.cmd {
					node = n
				}
			}
			if node == nil {
				t.Fatalf("no command %q", s.cmd)
			}
			var known, envs []string
			for _, group := range node.AllFlags(false) {
				for _, f := range group {
					known = append(known, "--"+f.Name)
					envs = append(envs, f.Envs...)
				}
			}
			found := 0
			for _, m := range flagRE.FindAllStringSubmatch(text, -1) {
				found++
				name := m[1]
				if _, ok := others[name]; ok {
					continue
				}
				if !slices.Contains(known, name) {
					t.Errorf("the README documents %s for shout %s; kong knows %v", name, s.cmd, known)
					continue
				}
				env := "SHOUT_" + strings.ToUpper(strings.ReplaceAll(name[2:], "-", "_"))
				switch {
				case s.cmd != "serve":
					if len(envs) > 0 {
						t.Errorf("shout %s reads %v from the environment; only serve's flags are", s.cmd, envs)
					}
				case name != "--help" && !slices.Contains(envs, env):
					t.Errorf("%s: environment variable %s not among %v", name, env, envs)
				}
			}
			if found == 0 {
				t.Errorf("no flags found in the README's %q section", s.from)
			}
		})
	}
}

// Variables set for the server do not reach the client commands, whose
// flags share names with serve's: with SHOUT_CERT and SHOUT_KEY exported
// for shout serve, shout connect to a plain address failed ("--ca, --cert,
// --key and --insecure are for tls:// addresses"), and SHOUT_MODE changed
// what bench expected. (SHOUT_CA and SHOUT_INSECURE name no serve flag,
// but connect's and bench's TLS flags are one embedded struct, which a
// kong that kept them apart from the command's own would leave with
// variables.)
func TestServeEnvironmentLeavesClientsAlone(t *testing.T) {
	addr := shouttest.Start(t, &server.Server{})
	t.Setenv("SHOUT_CERT", "server.pem")
	t.Setenv("SHOUT_KEY", "server.key")
	t.Setenv("SHOUT_CA", "ca.pem")
	t.Setenv("SHOUT_INSECURE", "true")
	t.Setenv("SHOUT_MODE", "echo")
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"connect", addr}, strings.NewReader("hi\n"), &stdout, &stderr)
	if code != 0 || stdout.String() != "HI\n" {
		t.Errorf("connect: status %d, stdout %q, stderr %q; want 0, \"HI\\n\"", code, stdout.String(), stderr.String())
	}
	stdout.Reset()
	stderr.Reset()
	code = run(context.Background(), []string{"bench", addr, "--conns", "1", "--duration", "1s", "--warmup", "0"},
		strings.NewReader(""), &stdout, &stderr)
	if code != 0 || !strings.Contains(stdout.String(), "mode upper") {
		t.Errorf("bench: status %d, stdout %q, stderr %q; want 0 and mode upper", code, stdout.String(), stderr.String())
	}
}

// A bad value from the environment is named as such: in a manifest that
// sets SHOUT_MODE, an error saying only "--mode" sends one looking for a
// flag nobody gave. Given on the command line, the flag is the one named.
func TestServeUsageErrorNamesEnvar(t *testing.T) {
	for _, tc := range []struct {
		env, val string
		args     []string
		want     string
	}{
		{"SHOUT_MODE", "foo", []string{"serve", "127.0.0.1:0"}, `got "foo" (from SHOUT_MODE)`},                                           // kong's check
		{"SHOUT_IDLE_TIMEOUT", "-1s", []string{"serve", "127.0.0.1:0"}, "--idle-timeout must not be negative (from SHOUT_IDLE_TIMEOUT)"}, // shout's
		// Said as shout says it, not kong's `(from envar SHOUT_MAX_CONNS="abc")`, the value twice.
		{"SHOUT_MAX_CONNS", "abc", []string{"serve", "127.0.0.1:0"}, `got "abc" (from SHOUT_MAX_CONNS)` + "\n"},
		{"SHOUT_IDLE_TIMEOUT", "1x", []string{"serve", "127.0.0.1:0"}, `"1x" is not a duration: its units are ns, us, ms, s, m and h (from SHOUT_IDLE_TIMEOUT)` + "\n"},
		{"SHOUT_MODE", "foo", []string{"serve", "--mode", "bar", "127.0.0.1:0"}, `got "bar"` + "\n"},
		{"SHOUT_MODE", "foo", []string{"serve", "--mode=bar", "127.0.0.1:0"}, `got "bar"` + "\n"},
	} {
		t.Run(tc.env+"="+tc.val+" "+strings.Join(tc.args, " "), func(t *testing.T) {
			t.Setenv(tc.env, tc.val)
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), tc.args, strings.NewReader(""), &stdout, &stderr)
			if code != 2 || !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("status %d, stderr %q; want 2 and %q", code, stderr.String(), tc.want)
			}
		})
	}
}

// A serve variable set to the empty string is taken as not set, for
// every flag: SHOUT_MODE=${MODE} with MODE unset, or a manifest's
// `value: ""`, failed with `--mode must be one of … but got ""` (and an
// empty duration or count likewise), while an empty SHOUT_CERT or
// SHOUT_ADMIN already meant the default.
func TestServeEmptyEnvarIsUnset(t *testing.T) {
	parser, err := kong.New(&cli{}, kong.Name("shout"), serveEnvars())
	if err != nil {
		t.Fatal(err)
	}
	var env []string
	for _, n := range parser.Model.Children {
		for _, f := range n.Flags {
			for _, e := range f.Envs {
				env = append(env, e+"=")
			}
		}
	}
	if len(env) < 10 {
		t.Fatalf("only %d variables for serve's flags: %v", len(env), env)
	}
	p := startServe(t, env, "tcp://127.0.0.1:0")
	c, err := net.DialTimeout("tcp", p.addrs["tcp"], bound)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(bound))
	if _, err := c.Write([]byte("straße\n")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len("STRASSE\n"))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "STRASSE\n" {
		t.Errorf("reply %q, %v; want the default mode's \"STRASSE\\n\"", got, err)
	}
}

// serve --help names each flag's variable whatever the environment holds:
// one set empty, taken as not set, vanished from the help, just where one
// looks to see why setting it did nothing.
func TestServeHelpNamesEmptyEnvar(t *testing.T) {
	t.Setenv("SHOUT_MODE", "")
	helpSays(t, "serve", "($SHOUT_MODE)")
}

// serve --help says how to listen on every interface: a learner whose
// client runs on another machine (a VM's host, a phone) found only that
// a bare port is on 127.0.0.1, and got "connection refused" there.
func TestServeHelpSaysEveryInterface(t *testing.T) {
	helpSays(t, "serve", "A bare port is on 127.0.0.1, this machine only; :port is every interface")
}

// helpSays fails t unless command's --help says want, its words wrapped
// anyhow.
func helpSays(t *testing.T, command, want string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{command, "--help"}, strings.NewReader(""), &stdout, &stderr)
	help := strings.Join(strings.Fields(stdout.String()), " ")
	if code != 0 || !strings.Contains(help, want) {
		t.Errorf("status %d, %s --help without %q:\n%s%s", code, command, want, stdout.String(), stderr.String())
	}
}

// A flag given that does nothing with the addresses or flags given is a
// usage error, as the TLS and PROXY flags without their addresses are:
// it was taken and ignored (--source-rate to a TCP-only server,
// --retries over TCP, --ca with --insecure). Left to its default, or set
// empty in the environment, it is not given. (An address given twice,
// refused after, shows the flags passed.)
func TestFlagsThatWouldDoNothing(t *testing.T) {
	const passed = "is given twice"
	const tlsOnly = "--ca, --cert, --key and --insecure are for tls:// addresses"
	tcp := []string{"tcp://127.0.0.1:1", "tcp://127.0.0.1:1"}
	udp := []string{"udp://127.0.0.1:1", "udp://127.0.0.1:1"}
	unix := []string{"unix:///nonexistent/s", "unix:///nonexistent/s"}
	for _, tc := range []struct {
		env  []string // name, value
		args []string
		want string
	}{
		{nil, append([]string{"serve", "--source-rate", "100"}, tcp...), "--source-rate is for UDP addresses, and there is none"},
		{nil, append([]string{"serve", "--source-rate", "100"}, udp...), passed},
		{nil, append([]string{"serve", "--source-rate", "100", "udp://127.0.0.1:1", "tcp://127.0.0.1:1"}, tcp...), passed},
		{[]string{"SHOUT_SOURCE_RATE", "100"}, append([]string{"serve"}, tcp...), "--source-rate is for UDP addresses, and there is none (from SHOUT_SOURCE_RATE)"},
		{[]string{"SHOUT_SOURCE_RATE", ""}, append([]string{"serve"}, tcp...), passed},
		{nil, append([]string{"serve", "--max-conns-per-ip", "3"}, unix...), "--max-conns-per-ip is for TCP and tls:// addresses, and there is none"},
		{nil, append([]string{"serve", "--max-conns-per-ip", "3"}, udp...), "--max-conns-per-ip is for TCP and tls:// addresses"},
		{nil, append([]string{"serve", "--max-conns-per-ip", "3"}, tcp...), passed},
		{nil, append([]string{"serve", "--idle-timeout", "1m"}, udp...), "--idle-timeout is for TCP, tls:// and Unix addresses, and there is none"},
		{nil, append([]string{"serve", "--max-conns", "5"}, udp...), "--max-conns is for TCP, tls:// and Unix addresses"},
		{nil, append([]string{"serve", "--write-timeout", "1s"}, udp...), "--write-timeout is for TCP, tls:// and Unix addresses"},
		{nil, append([]string{"serve", "--linger", "0"}, udp...), "--linger is for TCP, tls:// and Unix addresses"},
		{nil, append([]string{"serve", "--engine", "goroutine"}, udp...), "--engine is for TCP, tls:// and Unix addresses"},
		{nil, append([]string{"serve", "--idle-timeout", "1m"}, unix...), passed},
		{nil, append([]string{"serve", "--reuse-port"}, unix...), "--reuse-port is for TCP and UDP addresses, and there is none"},
		{nil, append([]string{"serve", "--reuse-port"}, udp...), passed},
		// Off asks for nothing, which every address does: a script's
		// --reuse-port=$REUSE, a shared SHOUT_REUSE_PORT=false.
		{nil, append([]string{"serve", "--reuse-port=false"}, unix...), passed},
		{[]string{"SHOUT_REUSE_PORT", "false"}, append([]string{"serve"}, unix...), passed},
		{nil, append([]string{"serve", "--handshake-timeout", "1s"}, tcp...), "--handshake-timeout is for tls:// addresses and --proxy-protocol, and there is neither"},
		{nil, append([]string{"serve", "--handshake-timeout", "1s", "--proxy-protocol", "--proxy-from", "127.0.0.1"}, tcp...), passed},
		{nil, []string{"connect", "--retries", "3", "127.0.0.1:1"}, "--retries is for udp:// addresses"},
		{nil, []string{"connect", "--retries", "3", "unix:///nonexistent/s"}, "--retries is for udp:// addresses"},
		{nil, []string{"connect", "--ca", "/nonexistent/ca.pem", "--insecure", "tls://127.0.0.1:1"}, "--ca or --insecure, not both"},
		{nil, []string{"bench", "--ca", "/nonexistent/ca.pem", "--insecure", "tls://127.0.0.1:1"}, "--ca or --insecure, not both"},
		// client.TLSOptions' errors, which name its fields (TLSOptions.Cert), by the flags.
		{nil, []string{"connect", "--cert", "/nonexistent/c.pem", "tls://127.0.0.1:1"}, "--cert and --key go together"},
		{nil, []string{"bench", "--ca", "/nonexistent/ca.pem", "tls://127.0.0.1:1"}, "--ca: open /nonexistent/ca.pem: no such file"},
		// connect's and bench's TLS flags (one embedded tlsFlags), each of
		// them, to each address that is not tls://.
		{nil, []string{"connect", "--ca", "/nonexistent/ca.pem", "127.0.0.1:1"}, tlsOnly},
		{nil, []string{"connect", "--cert", "/nonexistent/c.pem", "127.0.0.1:1"}, tlsOnly},
		{nil, []string{"connect", "--key", "/nonexistent/k.pem", "udp://127.0.0.1:1"}, tlsOnly},
		{nil, []string{"connect", "--insecure", "unix:///nonexistent/s"}, tlsOnly},
		{nil, []string{"bench", "--ca", "/nonexistent/ca.pem", "udp://127.0.0.1:1"}, tlsOnly},
		{nil, []string{"bench", "--cert", "/nonexistent/c.pem", "unix:///nonexistent/s"}, tlsOnly},
		{nil, []string{"bench", "--key", "/nonexistent/k.pem", "127.0.0.1:1"}, tlsOnly},
		{nil, []string{"bench", "--insecure", "127.0.0.1:1"}, tlsOnly},
	} {
		t.Run(strings.Join(append(slices.Clone(tc.env), tc.args...), " "), func(t *testing.T) {
			if tc.env != nil {
				t.Setenv(tc.env[0], tc.env[1])
			}
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), tc.args, strings.NewReader(""), &stdout, &stderr)
			if code != 2 || !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("status %d, stderr %q; want 2 and %q", code, stderr.String(), tc.want)
			}
		})
	}
}

// A connect that runs out of its timeout names the flag: with --dial-timeout
// 1ns it said only "timed out".
func TestConnectTimeoutNamesItsFlag(t *testing.T) {
	addr := shouttest.Start(t, &server.Server{})
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"connect", "--dial-timeout", "1ns", addr}, "shout: connect " + addr + ": timed out (--dial-timeout 1ns)\n"},
		{[]string{"bench", "--connect-timeout", "1ns", "--duration", "1s", "--warmup", "0", addr}, "shout: connect " + addr + ": timed out (--connect-timeout 1ns)\n"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), tc.args, strings.NewReader("hi\n"), &stdout, &stderr)
		if code != 1 || stderr.String() != tc.want {
			t.Errorf("shout %s: status %d, stderr %q; want 1 and %q", strings.Join(tc.args, " "), code, stderr.String(), tc.want)
		}
	}
}

// bench --help says what its exit status means, which a CI job gates on:
// it was in the README alone, and a reader of the help could not tell
// whether a run with a reply lost, or less load than asked for, fails.
func TestBenchHelpSaysExitStatus(t *testing.T) {
	for _, want := range []string{"Exit status: 0 when every reply was checked and all was right; 1 when not", "; 2 on a usage error;", "; 128+N when signal N stopped it"} {
		helpSays(t, "bench", want)
	}
}
