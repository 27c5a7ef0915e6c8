package main

import (
	"context"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

// commands are the programs this test binary also is, on $PATH.
var commands = map[string]func(){"shout": main}

// TestMain makes this test binary also the shout command, on $PATH, for
// the scripts and the process tests.
func TestMain(m *testing.M) {
	for _, s := range []os.Signal{syscall.SIGHUP, syscall.SIGINT} {
		if commands[filepath.Base(os.Args[0])] == nil && signal.Ignored(s) {
			// go test run under nohup (or by a runner that ignores
			// SIGHUP), or this test binary run as a script's background
			// job (cmd &, which starts with SIGINT ignored; go test
			// itself catches SIGINT, so its tests never do): the shout
			// processes the tests start would ignore it too, as an
			// ignored signal stays so through exec. The tests of a
			// SIGHUP that stops bench waited 10 s for its notice, and
			// those of a second Ctrl-C saw bench exit 130 a second later
			// rather than be stopped by the signal. A signal this
			// process catches is reset by exec: they start as under a
			// terminal. (Not in shout itself, started by a test ignoring
			// it on purpose.)
			signal.Notify(make(chan os.Signal, 1), s)
		}
	}
	// Here and in the shout processes the tests start: an error that
	// names a setting but hides it from flagText is a bug, loud in the
	// test that shows it (a status 2 and this text in place of the error).
	namesLost = func(err error) { panic(err) }
	testscript.Main(m, commands)
}

func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{Dir: "testdata/script", Cmds: scriptCmds})
}

// A usage error points to the help of the command it was made in: it
// pointed to shout's own, which lists the commands and not their flags.
func TestUsageErrorPointsToTheCommandsHelp(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"serve", "--bogus"}, "Run 'shout serve --help' for usage.\n"},
		{[]string{"bench", "127.0.0.1:1", "--conns", "x"}, "Run 'shout bench --help' for usage.\n"},
		{[]string{"connect", "--timeout", "x"}, "Run 'shout connect --help' for usage.\n"},
		{[]string{"nosuchcommand"}, "Run 'shout --help' for usage.\n"},
	} {
		var stdout, stderr strings.Builder
		if code := run(context.Background(), tc.args, strings.NewReader(""), &stdout, &stderr); code != 2 || !strings.HasSuffix(stderr.String(), tc.want) {
			t.Errorf("shout %s: status %d, %q; want 2 and %q", strings.Join(tc.args, " "), code, stderr.String(), tc.want)
		}
	}
}

// shout help takes one command: a second, or anything after the one, is a
// usage error that says what to type. shout help serve connect printed
// serve's help alone, status 0, connect taken as an address of serve's.
func TestHelpTakesOneCommand(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string // stderr's first line, or stdout's for status 0
	}{
		{[]string{"help", "serve", "connect"}, 2, `shout: help takes one command, and "connect" is a second: shout help serve, then shout help connect`},
		{[]string{"help", "bench", "127.0.0.1:8080"}, 2, `shout: help takes one command, and nothing after it ("127.0.0.1:8080"): shout help bench`},
		{[]string{"help", "nosuch", "connect"}, 2, "shout: unknown command nosuch: the commands are serve, connect, bench, version, completion and help"},
		// No command named: it said "unexpected argument nosuch", as of
		// an argument one too many, and of an address the same.
		{[]string{"nosuch"}, 2, "shout: unknown command nosuch: the commands are serve, connect, bench, version, completion and help"},
		{[]string{"help", "nosuch"}, 2, "shout: unknown command nosuch: the commands are serve, connect, bench, version, completion and help"},
		{[]string{"127.0.0.1:8080"}, 2, "shout: 127.0.0.1:8080 is no command: an address goes after one (shout serve 127.0.0.1:8080, shout connect 127.0.0.1:8080)"},
		// An address as Parse offers it for what was given (a URL pasted
		// whole): it said "unknown command http://127.0.0.1:8080/".
		{[]string{"http://127.0.0.1:8080/"}, 2, "shout: http://127.0.0.1:8080/ is no command: an address goes after one (shout serve tcp://127.0.0.1:8080, shout connect tcp://127.0.0.1:8080)"},
		// A tls:// address to serve needs a certificate, which is said:
		// shout serve tls://127.0.0.1:8080 alone says it needs one.
		{[]string{"https://127.0.0.1:8080/"}, 2, "shout: https://127.0.0.1:8080/ is no command: an address goes after one (shout serve tls://127.0.0.1:8080 --tls-self-signed, or with --cert and --key; shout connect tls://127.0.0.1:8080)"},
		{[]string{"tls://[::1]:8443"}, 2, "shout: tls://[::1]:8443 is no command: an address goes after one (shout serve tls://[::1]:8443 --tls-self-signed, or with --cert and --key; shout connect tls://[::1]:8443)"},
		{[]string{"TCP4:127.0.0.1:8080/"}, 2, "shout: TCP4:127.0.0.1:8080/ is no command: an address goes after one (shout serve tcp://127.0.0.1:8080, shout connect tcp://127.0.0.1:8080)"},
		{[]string{"/tmp/s.sock"}, 2, "shout: /tmp/s.sock is no command: an address goes after one (shout serve unix:///tmp/s.sock, shout connect unix:///tmp/s.sock)"},
		{[]string{"tcp:127.0.0.1:8080/"}, 2, "shout: tcp:127.0.0.1:8080/ is no command: an address goes after one (shout serve tcp://127.0.0.1:8080, shout connect tcp://127.0.0.1:8080)"},
		// (An address offered that is refused in turn, a socket path too
		// long for a socket: none is offered.)
		{[]string{"/" + strings.Repeat("s", 200)}, 2, "shout: unknown command /" + strings.Repeat("s", 200) + ": the commands are serve, connect, bench, version, completion and help"},
		// A web URL without its port: the scheme's (it said "unknown command").
		{[]string{"https://localhost/"}, 2, "shout: https://localhost/ is no command: an address goes after one (shout serve tls://localhost:443 --tls-self-signed, or with --cert and --key; shout connect tls://localhost:443)"},
		// A listener's in socat's syntax: for serve, which is offered
		// both (it said "unknown command").
		{[]string{"TCP-LISTEN:8080"}, 2, "shout: TCP-LISTEN:8080 is no command: a listener's address goes after serve (shout serve tcp://127.0.0.1:8080; tcp://:8080 listens on every interface, as socat does)"},
		{[]string{"OPENSSL-LISTEN:8443"}, 2, "shout: OPENSSL-LISTEN:8443 is no command: a listener's address goes after serve (shout serve tls://127.0.0.1:8443 --tls-self-signed, or with --cert and --key; tls://:8443 listens on every interface, as socat does)"},
		// (One refused in turn: nothing offered.)
		{[]string{"TCP-LISTEN:99999"}, 2, "shout: unknown command TCP-LISTEN:99999: the commands are serve, connect, bench, version, completion and help"},
		{[]string{"servee"}, 2, `shout: unexpected argument servee, did you mean "serve"?`}, // kong's, which says it
		// A host name, as an IP address is (it said "unknown command
		// example.com"); a name without a dot may be a word mistyped.
		{[]string{"example.com"}, 2, "shout: example.com is no command: an address goes after one, with its port (shout serve example.com:8080, shout connect example.com:8080; 8080 is serve's default)"},
		{[]string{"Bücher.example"}, 2, "shout: Bücher.example is no command: an address goes after one, with its port (shout serve Bücher.example:8080, shout connect Bücher.example:8080; 8080 is serve's default)"},
		{[]string{"host.example."}, 2, "shout: host.example. is no command: an address goes after one, with its port (shout serve host.example.:8080, shout connect host.example.:8080; 8080 is serve's default)"},
		{[]string{"nosuch"}, 2, "shout: unknown command nosuch: the commands are serve, connect, bench, version, completion and help"},
		{[]string{"no_such.name"}, 2, "shout: unknown command no_such.name: the commands are serve, connect, bench, version, completion and help"},
		{[]string{"1.2.3"}, 2, "shout: unknown command 1.2.3: the commands are serve, connect, bench, version, completion and help"},
		{[]string{"serve.d"}, 2, `shout: unexpected argument serve.d, did you mean "serve"?`}, // a name close to a command's: kong's
		{[]string{"..."}, 2, "shout: unknown command ...: the commands are serve, connect, bench, version, completion and help"},
		{[]string{"help", "connect"}, 0, "Usage: shout connect [<addr>] [flags]"},
	} {
		var stdout, stderr strings.Builder
		code := run(context.Background(), tc.args, strings.NewReader(""), &stdout, &stderr)
		out := stderr.String()
		if tc.code == 0 {
			out = stdout.String()
		}
		if first, _, _ := strings.Cut(out, "\n"); code != tc.code || first != tc.want {
			t.Errorf("shout %s: status %d, %q; want %d and %q", strings.Join(tc.args, " "), code, first, tc.code, tc.want)
		}
	}
}

// A file's name where a command goes (shout notes.txt, shout main.go)
// is an unknown command, not a host name: it was answered as an address,
// "notes.txt is no command: an address goes after one, with its port
// (shout serve notes.txt:8080, ...)". A name no file has stays a host's.
func TestFileNameIsNoHostName(t *testing.T) {
	t.Chdir(t.TempDir())
	for _, name := range []string{"notes.txt", "main.go", "README.md"} {
		if err := os.WriteFile(name, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct{ arg, want string }{
		{"notes.txt", "shout: unknown command notes.txt: the commands are serve, connect, bench, version, completion and help"},
		{"main.go", "shout: unknown command main.go: the commands are serve, connect, bench, version, completion and help"},
		{"README.md", "shout: unknown command README.md: the commands are serve, connect, bench, version, completion and help"},
		{"example.com", "shout: example.com is no command: an address goes after one, with its port (shout serve example.com:8080, shout connect example.com:8080; 8080 is serve's default)"},
	} {
		var stdout, stderr strings.Builder
		code := run(context.Background(), []string{tc.arg}, strings.NewReader(""), &stdout, &stderr)
		if first, _, _ := strings.Cut(stderr.String(), "\n"); code != 2 || first != tc.want {
			t.Errorf("shout %s: status %d, %q; want 2 and %q", tc.arg, code, first, tc.want)
		}
	}
}

// An empty argument (shout "", a variable unset in a script) is a usage
// error, anywhere: it panicked, slice bounds out of range, in the look
// for a flag's value.
func TestEmptyArgumentIsAUsageError(t *testing.T) {
	for _, args := range [][]string{{""}, {"serve", ""}, {"connect", "127.0.0.1:1", ""}, {"bench", "--conns", ""}, {"-v", ""}, {"help", ""}} {
		var stdout, stderr strings.Builder
		code := -1
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("shout %q panicked: %v", args, r)
				}
			}()
			code = run(context.Background(), args, strings.NewReader(""), &stdout, &stderr)
		}()
		if first, _, _ := strings.Cut(stderr.String(), "\n"); code != 2 || !strings.HasPrefix(first, "shout: ") {
			t.Errorf("shout %q: status %d, %q; want 2 and a usage error", args, code, first)
		}
	}
}

// An empty argument is named so: it was "unexpected argument , did you
// mean one of …" for no command, and "unexpected argument " after one.
func TestEmptyArgumentSaysSo(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{""}, `shout: unknown command "": the commands are serve, connect, bench, version, completion and help`},
		{[]string{"help", ""}, `shout: unknown command "": the commands are serve, connect, bench, version, completion and help`},
		{[]string{"connect", "127.0.0.1:1", ""}, `shout: unexpected argument "" (an empty one)`},
	} {
		var stdout, stderr strings.Builder
		code := run(context.Background(), tc.args, strings.NewReader(""), &stdout, &stderr)
		if first, _, _ := strings.Cut(stderr.String(), "\n"); code != 2 || first != tc.want {
			t.Errorf("shout %q: status %d, %q; want 2 and %q", tc.args, code, first, tc.want)
		}
	}
}

// An address typed as nc and telnet take it, host and port apart, is a
// usage error that says what to type: it said only "unexpected argument
// 8080" (connect, bench) or that the host had no port (serve).
func TestHostAndPortApartSaysWhatToType(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string // "" for no hint
	}{
		{[]string{"connect", "127.0.0.1", "8080"}, "did you mean 127.0.0.1:8080?"},
		{[]string{"connect", "--timeout", "1s", "localhost", "8080"}, "did you mean localhost:8080?"},
		{[]string{"connect", "::1", "8080"}, "did you mean [::1]:8080?"},
		{[]string{"connect", "[::1]", "8080"}, "did you mean [::1]:8080?"},
		{[]string{"connect", "udp://127.0.0.1", "8080"}, "did you mean udp://127.0.0.1:8080?"},
		{[]string{"bench", "127.0.0.1", "8080"}, "did you mean 127.0.0.1:8080?"},
		{[]string{"serve", "127.0.0.1", "8080"}, "did you mean 127.0.0.1:8080?"},
		{[]string{"serve", "::1", "0"}, "did you mean [::1]:0?"},
		// A flag's value that is the port too: the port is the argument
		// kong meant, not that value, which has no host before it.
		{[]string{"bench", "--conns", "8", "127.0.0.1", "8"}, "did you mean 127.0.0.1:8?"},
		{[]string{"connect", "--retries", "1", "udp://localhost", "1"}, "did you mean udp://localhost:1?"},
		// Not a host and a port: kong's word, or the address's, alone.
		{[]string{"connect", "8080", "9090"}, ""},
		{[]string{"connect", "127.0.0.1", "http"}, ""},
		{[]string{"connect", "127.0.0.1", "--timeout", "1s", "8080"}, ""},
		{[]string{"connect", "unix:///tmp/s", "8080"}, ""},
		// x is no port: 127.0.0.1 is offered with serve's own.
		{[]string{"serve", "127.0.0.1", "x"}, `did you mean "127.0.0.1:8080"?`},
	} {
		var stdout, stderr strings.Builder
		code := run(context.Background(), tc.args, strings.NewReader(""), &stdout, &stderr)
		first, _, _ := strings.Cut(stderr.String(), "\n")
		if code != 2 || (tc.want == "") == strings.Contains(first, "did you mean") || !strings.HasSuffix(first, tc.want) {
			t.Errorf("shout %s: status %d, %q; want 2 and a first line ending %q", strings.Join(tc.args, " "), code, first, tc.want)
		}
	}
}

// A URL's password is never said back, by any command's error: it ends
// up in a CI log or a ticket. It is written xxxxx, as net/url's
// URL.Redacted writes it, and the error helps as it did. Kong's errors,
// shout's hints and endpoint's said it whole, and offered it bracketed as
// a host: did you mean tcp://[user:secret@127.0.0.1]:1?
func TestPasswordNotSaidBack(t *testing.T) {
	usageErrors(t, []usageError{
		{[]string{"tcp://user:secret@127.0.0.1:1"}, "shout: tcp://user:xxxxx@127.0.0.1:1 is no command: an address goes after one (shout serve tcp://127.0.0.1:1, shout connect tcp://127.0.0.1:1)"},
		{[]string{"user:secret@127.0.0.1:1"}, "shout: user:xxxxx@127.0.0.1:1 is no command: an address goes after one (shout serve 127.0.0.1:1, shout connect 127.0.0.1:1)"},
		{[]string{"connect", "tls://user:secret@127.0.0.1:1"}, `shout: bad address "tls://user:xxxxx@127.0.0.1:1": a URL's user "user:xxxxx@" is not part of an address (did you mean "tls://127.0.0.1:1"?)`},
		{[]string{"bench", "tcp://user:secret@127.0.0.1"}, `shout: bad address "tcp://user:xxxxx@127.0.0.1": a URL's user "user:xxxxx@" is not part of an address (shout takes tcp://HOST:PORT); serve's default port is 8080: did you mean "tcp://127.0.0.1:8080"?`},
		{[]string{"serve", "udp://user:secret@127.0.0.1:1"}, `shout: bad address "udp://user:xxxxx@127.0.0.1:1": a URL's user "user:xxxxx@" is not part of an address (did you mean "udp://127.0.0.1:1"?)`},
		{[]string{"connect", "tcp://user:secret@127.0.0.1", "1"}, "shout: unexpected argument 1: host and port go in one argument: did you mean tcp://127.0.0.1:1?"},
		{[]string{"connect", "user:secret@127.0.0.1", "1"}, "shout: unexpected argument 1: host and port go in one argument: did you mean 127.0.0.1:1?"},
		{[]string{"serve", "user:secret@127.0.0.1", "1"}, `shout: bad address "user:xxxxx@127.0.0.1": a URL's user "user:xxxxx@" is not part of an address (shout takes HOST:PORT); host and port go in one argument: did you mean 127.0.0.1:1?`},
		{[]string{"connect", "127.0.0.1:1", "tcp://user:secret@127.0.0.1:1"}, "shout: unexpected argument tcp://user:xxxxx@127.0.0.1:1"},
		// A flag's value after "=": the value is what is said back.
		{[]string{"connect", "--timeout=user:secret@127.0.0.1", "127.0.0.1:1"}, `shout: --timeout: "user:xxxxx@127.0.0.1" is not a duration, such as 2s, 500ms or 1m30s`},
		{[]string{"help", "connect", "tcp://user:secret@127.0.0.1:1"}, `shout: help takes one command, and nothing after it ("tcp://user:xxxxx@127.0.0.1:1"): shout help connect`},
		{[]string{"serve", "--admin", "user:secret@127.0.0.1:1", "--admin-pprof", "127.0.0.1:0"}, `shout: --admin: bad address "user:xxxxx@127.0.0.1:1": a URL's user "user:xxxxx@" is not part of an address (did you mean "127.0.0.1:1"?)`},
	})
	// Nor one of serve's variables (a manifest's).
	t.Setenv("SHOUT_MAX_CONNS", "tcp://user:secret@127.0.0.1:1")
	usageErrors(t, []usageError{
		{[]string{"serve"}, `shout: --max-conns: expected a whole number (in decimal) but got "tcp://user:xxxxx@127.0.0.1:1" (from SHOUT_MAX_CONNS)`},
	})
}

// A password that %q escapes ("\"", "\\", a tab) is hidden too: kong's
// errors and shout's say a flag's value quoted, and the password went out
// whole, only the value as typed being looked for.
func TestPasswordNotSaidBackQuoted(t *testing.T) {
	usageErrors(t, []usageError{
		{[]string{"connect", "--timeout", `u:se"cret@x`, "127.0.0.1:1"}, `shout: --timeout: "u:xxxxx@x" is not a duration, such as 2s, 500ms or 1m30s`},
		{[]string{"bench", "--conns=u:se\tcret@x", "127.0.0.1:1"}, `shout: --conns: expected a whole number (in decimal) but got "u:xxxxx@x"`},
	})
	t.Setenv("SHOUT_MAX_CONNS", `tcp://u:se\cret@127.0.0.1:1`)
	usageErrors(t, []usageError{
		{[]string{"serve"}, `shout: --max-conns: expected a whole number (in decimal) but got "tcp://u:xxxxx@127.0.0.1:1" (from SHOUT_MAX_CONNS)`},
	})
}

// A file's name is said as it is, ':' and '@' and all: it is no URL, and
// a file named a:b@c.pem was said to be a:xxxxx@c.pem, a file the user
// does not have.
func TestFileNameNotTakenForPassword(t *testing.T) {
	t.Chdir(t.TempDir())
	if err := os.WriteFile("a:b@c.pem", []byte("no PEM\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SHOUT_CLIENT_CA", "a:b@c.pem")
	usageErrors(t, []usageError{
		{[]string{"connect", "--ca", "a:b@c.pem", "tls://127.0.0.1:1"}, "shout: --ca a:b@c.pem: no PEM certificate in it"},
		{[]string{"connect", "--ca=a:b@c.pem", "tls://127.0.0.1:1"}, "shout: --ca a:b@c.pem: no PEM certificate in it"},
		{[]string{"serve", "tls://127.0.0.1:0", "--tls-self-signed"}, "shout: --client-ca a:b@c.pem: no PEM certificate in it (from SHOUT_CLIENT_CA)"},
		// An address given for a file, by mistake, is one.
		{[]string{"connect", "--ca", "tls://u:secret@127.0.0.1:1", "tls://127.0.0.1:1"}, "shout: --ca: open tls://u:xxxxx@127.0.0.1:1: no such file or directory"},
	})
}

// An address where a command goes, without its port, or with its port
// apart (as nc takes it), says what was meant, with serve's port, 8080,
// where none was given: it said "unknown command tcp://localhost", as of
// a word no command is close to, where one with its port was told to go
// after a command.
func TestAddressWithoutCommandSaysWhatToType(t *testing.T) {
	usageErrors(t, []usageError{
		{[]string{"tcp://localhost"}, "shout: tcp://localhost is no command: an address goes after one, with its port (shout serve tcp://localhost:8080, shout connect tcp://localhost:8080; 8080 is serve's default)"},
		{[]string{"localhost"}, "shout: localhost is no command: an address goes after one, with its port (shout serve localhost:8080, shout connect localhost:8080; 8080 is serve's default)"},
		{[]string{"127.0.0.1"}, "shout: 127.0.0.1 is no command: an address goes after one, with its port (shout serve 127.0.0.1:8080, shout connect 127.0.0.1:8080; 8080 is serve's default)"},
		{[]string{"::1"}, "shout: ::1 is no command: an address goes after one, with its port (shout serve [::1]:8080, shout connect [::1]:8080; 8080 is serve's default)"},
		{[]string{"[::1]"}, "shout: [::1] is no command: an address goes after one, with its port (shout serve [::1]:8080, shout connect [::1]:8080; 8080 is serve's default)"},
		{[]string{"udp://[::1]"}, "shout: udp://[::1] is no command: an address goes after one, with its port (shout serve udp://[::1]:8080, shout connect udp://[::1]:8080; 8080 is serve's default)"},
		{[]string{"tls://localhost"}, "shout: tls://localhost is no command: an address goes after one, with its port (shout serve tls://localhost:8080 --tls-self-signed, or with --cert and --key; shout connect tls://localhost:8080; 8080 is serve's default)"},
		{[]string{"tcp://user:secret@127.0.0.1"}, "shout: tcp://user:xxxxx@127.0.0.1 is no command: an address goes after one, with its port (shout serve tcp://127.0.0.1:8080, shout connect tcp://127.0.0.1:8080; 8080 is serve's default)"},
		{[]string{"127.0.0.1", "8080"}, "shout: 127.0.0.1 8080 is no command: an address goes after one, host and port in one argument (shout serve 127.0.0.1:8080, shout connect 127.0.0.1:8080)"},
		{[]string{"udp://localhost", "9000"}, "shout: udp://localhost 9000 is no command: an address goes after one, host and port in one argument (shout serve udp://localhost:9000, shout connect udp://localhost:9000)"},
		// With its port: as it was.
		{[]string{"localhost:8080"}, "shout: localhost:8080 is no command: an address goes after one (shout serve localhost:8080, shout connect localhost:8080)"},
		{[]string{"udp://127.0.0.1:8080"}, "shout: udp://127.0.0.1:8080 is no command: an address goes after one (shout serve udp://127.0.0.1:8080, shout connect udp://127.0.0.1:8080)"},
		// A word no command is close to is no address, however it could
		// name a host.
		{[]string{"nosuch"}, "shout: unknown command nosuch: the commands are serve, connect, bench, version, completion and help"},
		{[]string{"tcp://localhost:99999"}, "shout: unknown command tcp://localhost:99999: the commands are serve, connect, bench, version, completion and help"},
	})
}

// An address without its port, given to connect or bench, is offered
// with serve's default port: it said only "missing port in address".
func TestClientAddressWithoutPortOffersServesPort(t *testing.T) {
	usageErrors(t, []usageError{
		{[]string{"connect", "tcp://localhost"}, `shout: bad address "tcp://localhost": want host:port, [ipv6]:port or a scheme (missing port in address); serve's default port is 8080: did you mean "tcp://localhost:8080"?`},
		{[]string{"connect", "localhost"}, `shout: bad address "localhost": want host:port, [ipv6]:port or a scheme (missing port in address); serve's default port is 8080: did you mean "localhost:8080"?`},
		{[]string{"bench", "::1"}, `shout: bad address "::1": want host:port, [ipv6]:port or a scheme (missing port in address; an IPv6 address goes in brackets before its port: [::1]:PORT); serve's default port is 8080: did you mean "[::1]:8080"?`},
		{[]string{"connect", "udp://127.0.0.1"}, `shout: bad address "udp://127.0.0.1": want host:port, [ipv6]:port or a scheme (missing port in address); serve's default port is 8080: did you mean "udp://127.0.0.1:8080"?`},
		{[]string{"bench", "tls://[::1]"}, `shout: bad address "tls://[::1]": want host:port, [ipv6]:port or a scheme (missing port in address); serve's default port is 8080: did you mean "tls://[::1]:8080"?`},
		// An address offered already is the one: not serve's port
		// besides (did you mean "tcp://localhost:80"?; ... did you mean
		// "tcp://localhost:8080"?).
		{[]string{"connect", "http://localhost"}, `shout: bad address "http://localhost": unknown scheme "http" (did you mean "tcp://localhost:80"?)`},
		{[]string{"bench", "tcp://u@localhost:1"}, `shout: bad address "tcp://u@localhost:1": a URL's user "u@" is not part of an address (did you mean "tcp://localhost:1"?)`},
		// Not a port left out: as it was. "-" is no host: "-:8080" was
		// offered, and refused in turn as "unknown flag -:".
		{[]string{"connect", "-"}, `shout: bad address "-": want host:port, [ipv6]:port or a scheme (missing port in address)`},
		{[]string{"connect", "a:b:c"}, `shout: bad address "a:b:c": want host:port, [ipv6]:port or a scheme (too many colons in address)`},
		{[]string{"connect", "tcp://localhost/"}, `shout: bad address "tcp://localhost/": want host:port, [ipv6]:port or a scheme (missing port in address)`},
	})
}

// serve given an address without its port is offered serve's default
// port, as connect and bench are: shout serve 127.0.0.1 said only
// "missing port in address", and a learner who typed the host alone was
// left to guess the syntax.
func TestServeAddressWithoutPortOffersItsPort(t *testing.T) {
	usageErrors(t, []usageError{
		{[]string{"serve", "127.0.0.1"}, `shout: bad address "127.0.0.1": want host:port, [ipv6]:port or a scheme (missing port in address); serve's default port is 8080: did you mean "127.0.0.1:8080"?`},
		{[]string{"serve", "udp://localhost"}, `shout: bad address "udp://localhost": want host:port, [ipv6]:port or a scheme (missing port in address); serve's default port is 8080: did you mean "udp://localhost:8080"?`},
		{[]string{"serve", "::1"}, `shout: bad address "::1": want host:port, [ipv6]:port or a scheme (missing port in address; an IPv6 address goes in brackets before its port: [::1]:PORT); serve's default port is 8080: did you mean "[::1]:8080"?`},
		{[]string{"serve", "127.0.0.1:9000", "[::1]"}, `shout: bad address "[::1]": want host:port, [ipv6]:port or a scheme (missing port in address); serve's default port is 8080: did you mean "[::1]:8080"?`},
		// Host and port apart: joined, as before.
		{[]string{"serve", "127.0.0.1", "9000"}, `shout: bad address "127.0.0.1": want host:port, [ipv6]:port or a scheme (missing port in address); host and port go in one argument: did you mean 127.0.0.1:9000?`},
	})
}

// An IPv6 address typed without brackets whose last group reads as a
// port (::1:9000, as 127.0.0.1:9000 is typed) is not offered with serve's
// port besides: "did you mean [::1:9000]:8080?" picked the reading a
// learner hardly meant, an address no machine has, where the error names
// both; where a command goes, the port is the one typed.
func TestIPv6WithoutBracketsKeepsItsPort(t *testing.T) {
	usageErrors(t, []usageError{
		{[]string{"connect", "::1:9000"}, `shout: bad address "::1:9000": want host:port, [ipv6]:port or a scheme (missing port in address; an IPv6 address goes in brackets before its port: [::1:9000]:PORT, or [::1]:9000 if 9000 is the port)`},
		{[]string{"bench", "udp://fe80::1:9000"}, `shout: bad address "udp://fe80::1:9000": want host:port, [ipv6]:port or a scheme (missing port in address; an IPv6 address goes in brackets before its port: [fe80::1:9000]:PORT, or [fe80::1]:9000 if 9000 is the port)`},
		{[]string{"serve", "::1:9000"}, `shout: bad address "::1:9000": want host:port, [ipv6]:port or a scheme (missing port in address; an IPv6 address goes in brackets before its port: [::1:9000]:PORT, or [::1]:9000 if 9000 is the port)`},
		{[]string{"::1:9000"}, "shout: ::1:9000 is no command: an address goes after one, an IPv6 address in brackets (shout serve [::1]:9000, shout connect [::1]:9000)"},
		{[]string{"udp://::1:9000"}, "shout: udp://::1:9000 is no command: an address goes after one, an IPv6 address in brackets (shout serve udp://[::1]:9000, shout connect udp://[::1]:9000)"},
		// No port in it: serve's, as before.
		{[]string{"connect", "::1"}, `shout: bad address "::1": want host:port, [ipv6]:port or a scheme (missing port in address; an IPv6 address goes in brackets before its port: [::1]:PORT); serve's default port is 8080: did you mean "[::1]:8080"?`},
		{[]string{"connect", "2001:db8::1"}, `shout: bad address "2001:db8::1": want host:port, [ipv6]:port or a scheme (missing port in address; an IPv6 address goes in brackets before its port: [2001:db8::1]:PORT); serve's default port is 8080: did you mean "[2001:db8::1]:8080"?`},
	})
}

// A port typed after another mark than ":" (a Chinese input method's
// full-width "：", a comma, a space in one argument, a dot) is offered
// after ":": 127.0.0.1：9000 was offered serve's port besides,
// "127.0.0.1：9000:8080", a name no lookup finds, and said to be no
// command where a command goes.
func TestPortAfterAnotherMarkOffered(t *testing.T) {
	const missing = `want host:port, [ipv6]:port or a scheme (missing port in address)`
	usageErrors(t, []usageError{
		{[]string{"connect", "127.0.0.1：9000"}, `shout: bad address "127.0.0.1：9000": ` + missing + `; a port goes after ":", not "：": did you mean "127.0.0.1:9000"?`},
		{[]string{"connect", "localhost,9000"}, `shout: bad address "localhost,9000": ` + missing + `; a port goes after ":", not ",": did you mean "localhost:9000"?`},
		{[]string{"bench", "127.0.0.1 9000"}, `shout: bad address "127.0.0.1 9000": ` + missing + `; a port goes after ":", not " ": did you mean "127.0.0.1:9000"?`},
		{[]string{"connect", "udp://127.0.0.1.9000"}, `shout: bad address "udp://127.0.0.1.9000": ` + missing + `; a port goes after ":", not ".": did you mean "udp://127.0.0.1:9000"?`},
		{[]string{"serve", "[::1]：9000"}, `shout: bad address "[::1]：9000": want host:port, [ipv6]:port or a scheme (missing port in address); a port goes after ":", not "：": did you mean "[::1]:9000"?`},
		{[]string{"serve", "127.0.0.1/9000"}, `shout: bad address "127.0.0.1/9000": ` + missing + `; a port goes after ":", not "/": did you mean "127.0.0.1:9000"?`},
		{[]string{"connect", "127.0.0.1，9000"}, `shout: bad address "127.0.0.1，9000": ` + missing + `; a port goes after ":", not "，": did you mean "127.0.0.1:9000"?`},
		{[]string{"connect", "Localhost_9000"}, `shout: bad address "Localhost_9000": ` + missing + `; a port goes after ":", not "_": did you mean "Localhost:9000"?`},
		// A scheme Parse does not take: nothing offered with it.
		{[]string{"connect", "foo://127.0.0.1：9000"}, `shout: bad address "foo://127.0.0.1：9000": unknown scheme "foo" (want tcp://, udp://, tls:// or unix://)`},
		{[]string{"127.0.0.1：9000"}, `shout: 127.0.0.1：9000 is no command: an address goes after one, its port after ":" (shout serve 127.0.0.1:9000, shout connect 127.0.0.1:9000)`},
		// No port after the mark, or a name before a dot: serve's port,
		// or nothing, as before.
		{[]string{"connect", "127.0.0.1,x"}, `shout: bad address "127.0.0.1,x": ` + missing + `; serve's default port is 8080: did you mean "127.0.0.1,x:8080"?`},
		{[]string{"connect", "example.com"}, `shout: bad address "example.com": ` + missing + `; serve's default port is 8080: did you mean "example.com:8080"?`},
		{[]string{"connect", "10.0.0.9000"}, `shout: bad address "10.0.0.9000": ` + missing + `; serve's default port is 8080: did you mean "10.0.0.9000:8080"?`},
	})
}

// An address is offered only if the command would take it: connect was
// offered 127.0.0.1:0 for 127.0.0.1：0, which it then refused (port 0 is
// for listening), and serve 127.0.0.1:8080 localhost was offered
// localhost:8080, then refused as given twice. Where the offer would be
// refused, what is wrong is said without it.
func TestOfferedAddressIsTaken(t *testing.T) {
	const missing = `want host:port, [ipv6]:port or a scheme (missing port in address)`
	cases := []usageError{
		{[]string{"connect", "127.0.0.1：0"}, `shout: bad address "127.0.0.1：0": ` + missing + `; a port goes after ":", not "："`},
		{[]string{"bench", "localhost,00"}, `shout: bad address "localhost,00": ` + missing + `; a port goes after ":", not ","`},
		{[]string{"serve", "127.0.0.1:8080", "localhost"}, `shout: bad address "localhost": ` + missing},
		{[]string{"serve", "127.0.0.1:8080", "udp://127.0.0.1"}, `shout: bad address "udp://127.0.0.1": ` + missing},
		{[]string{"serve", "127.0.0.1:8080", "localhost,8080"}, `shout: bad address "localhost,8080": ` + missing + `; a port goes after ":", not ","`},
		{[]string{"serve", "127.0.0.1：9000", "localhost:9000"}, `shout: bad address "127.0.0.1：9000": ` + missing + `; a port goes after ":", not "："`}, // a later one's too
		{[]string{"serve", "--admin", "127.0.0.1：9000", "127.0.0.1:9000"}, `shout: --admin: bad address "127.0.0.1：9000": ` + missing + `; a port goes after ":", not "："`},
		// Taken, so offered as before: another port, or another network.
		{[]string{"connect", "127.0.0.1：1"}, `shout: bad address "127.0.0.1：1": ` + missing + `; a port goes after ":", not "：": did you mean "127.0.0.1:1"?`},
		{[]string{"serve", "127.0.0.1:9000", "localhost"}, `shout: bad address "localhost": ` + missing + `; serve's default port is 8080: did you mean "localhost:8080"?`},
		{[]string{"serve", "udp://127.0.0.1:8080", "tcp://localhost"}, `shout: bad address "tcp://localhost": ` + missing + `; serve's default port is 8080: did you mean "tcp://localhost:8080"?`},
		{[]string{"serve", "--admin", "127.0.0.1：9090", "127.0.0.1:9000"}, `shout: --admin: bad address "127.0.0.1：9090": ` + missing + `; a port goes after ":", not "：": did you mean "127.0.0.1:9090"?`},
	}
	if runtime.GOOS == "linux" { // where a wildcard's port is the port on every address
		cases = append(cases, usageError{[]string{"serve", ":8080", "127.0.0.1"}, `shout: bad address "127.0.0.1": ` + missing})
	}
	usageErrors(t, cases)
}

// A port typed after another mark than ":" that is past the highest
// port is said to be so, not offered with serve's port besides:
// 127.0.0.1：70000 was offered "127.0.0.1：70000:8080", a name no lookup
// finds, the port typed lost in it.
func TestPortAfterAnotherMarkPastHighest(t *testing.T) {
	const missing = `want host:port, [ipv6]:port or a scheme (missing port in address)`
	usageErrors(t, []usageError{
		{[]string{"connect", "127.0.0.1：70000"}, `shout: bad address "127.0.0.1：70000": ` + missing + `; a port goes after ":", not "：", and 70000 is past 65535, the highest port`},
		{[]string{"serve", "localhost,65536"}, `shout: bad address "localhost,65536": ` + missing + `; a port goes after ":", not ",", and 65536 is past 65535, the highest port`},
		{[]string{"bench", "udp://[::1]：99999999999999999999"}, `shout: bad address "udp://[::1]：99999999999999999999": ` + missing + `; a port goes after ":", not "：", and 99999999999999999999 is past 65535, the highest port`},
		{[]string{"serve", "--admin", "127.0.0.1：70000", "0"}, `shout: --admin: bad address "127.0.0.1：70000": ` + missing + `; a port goes after ":", not "：", and 70000 is past 65535, the highest port`},
	})
}

// An unknown one-letter flag, typed as wrk, hey or nc take it, says what
// shout takes instead; kong offered any flag within two edits of it,
// which for one letter is any other ("shout bench -d 10": did you mean
// "-h"?), and named --ca for wrk's -c.
func TestUnknownShortFlagSaysWhatToType(t *testing.T) {
	usageErrors(t, []usageError{
		{[]string{"bench", "-c", "100", "-d", "10s"}, `shout: unknown flag -c: did you mean "--conns"? (wrk's and hey's -c)`},
		{[]string{"bench", "-c100"}, `shout: unknown flag -c: did you mean "--conns"? (wrk's and hey's -c)`},
		{[]string{"bench", "--conns", "8", "-d", "10"}, `shout: unknown flag -d: did you mean "--duration"? (wrk's -d; with a unit: 10s)`},
		{[]string{"bench", "-n", "1000"}, "shout: unknown flag -n: bench runs for --duration, not for a count of messages (ab's and hey's -n)"},
		{[]string{"connect", "-u", "127.0.0.1:8080"}, "shout: unknown flag -u: UDP is said in the address: udp://127.0.0.1:8080 (nc's -u)"},
		{[]string{"serve", "-p", "9000"}, "shout: unknown flag -p: the port is in the address, an argument: shout serve 9000 (on 127.0.0.1), or HOST:9000"},
		// No peer's: the same letter in the other case, or nothing.
		{[]string{"serve", "-V"}, `shout: unknown flag -V, did you mean "-v"?`},
		{[]string{"bench", "-t", "4"}, "shout: unknown flag -t"},
		{[]string{"connect", "-4", "127.0.0.1:8080"}, "shout: unknown flag -4"},
		// Before its command: misplaced's word (serve takes -v).
		{[]string{"-v", "serve"}, "shout: unknown flag -v before the command: it goes after one that takes it (shout serve -v)"},
	})
}

// A duration without a unit, as wrk's -d and ncat's -w take seconds, is a
// usage error that names the duration meant; Go's "missing unit" left the
// user to guess the syntax.
func TestDurationWithoutUnitSaysWhatToType(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string // "" for no hint
	}{
		{[]string{"bench", "--duration", "10"}, `"10" has no unit: did you mean 10s?`},
		{[]string{"connect", "--timeout=0.5"}, `"0.5" has no unit: did you mean 0.5s?`},
		{[]string{"serve", "--idle-timeout", "300"}, `"300" has no unit: did you mean 300s?`},
		{[]string{"connect", "--timeout=-5"}, ""}, // no duration to mean: none may be negative
	} {
		var stdout, stderr strings.Builder
		code := run(context.Background(), tc.args, strings.NewReader(""), &stdout, &stderr)
		first, _, _ := strings.Cut(stderr.String(), "\n")
		if code != 2 || (tc.want == "") == strings.Contains(first, "did you mean") || !strings.HasSuffix(first, tc.want) {
			t.Errorf("shout %s: status %d, %q; want 2 and a first line ending %q", strings.Join(tc.args, " "), code, first, tc.want)
		}
	}
}

// A value that is no duration is a usage error in words, naming the flag
// and the value once, and what a duration looks like: it said `--duration:
// expected duration but got "abc": time: invalid duration "abc"`, Go's
// package and the value twice; and of one too long for Go's durations,
// "invalid" as of "abc".
func TestBadDurationSaysWhatADurationIs(t *testing.T) {
	for _, tc := range []struct {
		value, want string
	}{
		{"abc", `is not a duration, such as 2s, 500ms or 1m30s`},
		{" 1s", `is not a duration, such as 2s, 500ms or 1m30s`},
		{"10x", `is not a duration: its units are ns, us, ms, s, m and h`},
		{"1e3s", `is not a duration: its units are ns, us, ms, s, m and h`},
		{"9999999h", `is too long: at most 2562047h47m16.854775807s`},
		// One past the most: "at most 2562047h" said less than what is taken.
		{"2562047h47m16.854775808s", `is too long: at most 2562047h47m16.854775807s`},
		// Go takes one sign: these said "is too long".
		{"--1s", `is not a duration, such as 2s, 500ms or 1m30s`},
		{"+-1s", `is not a duration, such as 2s, 500ms or 1m30s`},
		{"-5", `has no unit, such as 2s, 500ms or 1m30s`},
	} {
		var stdout, stderr strings.Builder
		code := run(context.Background(), []string{"bench", "--duration=" + tc.value, "127.0.0.1:1"}, strings.NewReader(""), &stdout, &stderr)
		first, _, _ := strings.Cut(stderr.String(), "\n")
		quoted := strconv.Quote(tc.value)
		if code != 2 || !strings.HasPrefix(first, "shout: --duration: "+quoted+" ") || strings.Count(first, quoted) != 1 ||
			!strings.Contains(first, tc.want) || strings.Contains(first, "time:") {
			t.Errorf("--duration=%q: status %d, %q; want 2, the flag, the value once and %q", tc.value, code, first, tc.want)
		}
	}
}

// A --rate past one message a nanosecond a connection is refused: the
// drivers cannot schedule it (see bench.Config.Rate).
func TestRateTooHighRefused(t *testing.T) {
	var stdout, stderr strings.Builder
	code := run(context.Background(), []string{"bench", "--rate=1e11", "--conns=2", "127.0.0.1:1"}, strings.NewReader(""), &stdout, &stderr)
	first, _, _ := strings.Cut(stderr.String(), "\n")
	want := "shout: --rate is too high: a connection would send more than one message a nanosecond (at most 1e9 × --conns)"
	if code != 2 || first != want {
		t.Errorf("status %d, %q; want 2 and %q", code, first, want)
	}
}

// A --rate that is no number says so in words: kong said `expected a
// float but got "abc" (string)`, Go's names for the types.
func TestRateNotANumberSaysSo(t *testing.T) {
	for _, v := range []string{"abc", "1,000", ""} {
		var stdout, stderr strings.Builder
		code := run(context.Background(), []string{"bench", "--rate=" + v, "127.0.0.1:1"}, strings.NewReader(""), &stdout, &stderr)
		first, _, _ := strings.Cut(stderr.String(), "\n")
		want := "shout: --rate: expected a number, such as 1000 or 2.5, but got " + strconv.Quote(v)
		if code != 2 || first != want {
			t.Errorf("--rate=%q: status %d, %q; want 2 and %q", v, code, first, want)
		}
	}
	// Digits grouped as Go's literals group them, as --conns takes them.
	var stdout, stderr strings.Builder
	if code := run(context.Background(), []string{"bench", "--rate=1_000.5", "--duration=0s", "127.0.0.1:1"}, strings.NewReader(""), &stdout, &stderr); !strings.Contains(stderr.String(), "--duration must be more than 0") {
		t.Errorf("--rate=1_000.5: status %d, %q; want it taken", code, stderr.String())
	}
}

// A listener's address in socat's syntax given to connect or bench: it
// was offered "tcp://:8080", every interface, a listener's address, beside
// "tcp://127.0.0.1:8080"; a connection is offered this machine's, and
// told the form is serve's.
func TestConnectToListenerAddress(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"connect", "TCP-LISTEN:8080"}, `shout: bad address "TCP-LISTEN:8080": a listener's address in socat's syntax, for shout serve (did you mean "tcp://127.0.0.1:8080"?)`},
		{[]string{"connect", "UDP-LISTEN:9000,fork"}, `shout: bad address "UDP-LISTEN:9000,fork": a listener's address in socat's syntax, for shout serve (did you mean "udp://127.0.0.1:9000"?)`},
		{[]string{"bench", "OPENSSL-LISTEN:8443"}, `shout: bad address "OPENSSL-LISTEN:8443": a listener's address in socat's syntax, for shout serve (did you mean "tls://127.0.0.1:8443"?)`},
	} {
		var stdout, stderr strings.Builder
		code := run(context.Background(), tc.args, strings.NewReader(""), &stdout, &stderr)
		if first, _, _ := strings.Cut(stderr.String(), "\n"); code != 2 || first != tc.want {
			t.Errorf("shout %s: status %d, %q; want 2 and %q", strings.Join(tc.args, " "), code, first, tc.want)
		}
	}
}

// usageError is a command line and the first line of stderr it should
// give, with status 2.
type usageError struct {
	args []string
	want string
}

// usageErrors runs each command line and checks its status and first
// line of stderr.
func usageErrors(t *testing.T, cases []usageError) {
	t.Helper()
	for _, tc := range cases {
		var stdout, stderr strings.Builder
		code := run(context.Background(), tc.args, strings.NewReader(""), &stdout, &stderr)
		first, _, _ := strings.Cut(stderr.String(), "\n")
		if code != 2 || first != tc.want {
			t.Errorf("shout %s: status %d, %q; want 2 and %q", strings.Join(tc.args, " "), code, first, tc.want)
		}
	}
}
