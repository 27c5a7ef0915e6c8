package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"github.com/alecthomas/kong"
	"golang.org/x/term"

	"shout/client"
	"shout/endpoint"
	"shout/internal/certs"
)

type connectCmd struct {
	Addr string `arg:"" optional:"" default:"127.0.0.1:8080" help:"Server: host:port or tcp://host:port (TCP), udp://host:port, tls://host:port, unix:///path. A bare port is on 127.0.0.1. Default: ${default}."`

	Timeout     time.Duration `default:"2s" help:"UDP: wait this long for each reply before sending again. TCP in a pipe: leave after this long without a byte from the server, once input ends, or while the server takes none of it (0, in a pipe only: wait for the server as long as it takes). On a terminal: say that a line got no reply within this long (\"no reply within 2s\"), and show its reply when it comes."`
	Retries     int           `default:"2" help:"UDP: send a line again this many times before reporting it lost."`
	DialTimeout time.Duration `default:"10s" help:"Give up connecting after this long. 0: wait as long as the system does."`
	Reconnect   bool          `help:"On a terminal: when the server closes, connect again instead of leaving."`
	History     string        `placeholder:"FILE" predictor:"file" help:"History file on a terminal (default $XDG_STATE_HOME/shout/history, or ~/.local/state/shout/history; \"-\" for none). Off a terminal it is not used, and said so."`
	Raw         bool          `help:"On a terminal (the prompt, or standard output a terminal): show what the server sends as it is, escape sequences and all (by default control characters are shown as ^X, as cat -v does)."`
	Trace       bool          `help:"Print every socket call to stderr as it happens (connect, send, recv, half-close, close; over UDP sendto, recvfrom, each timeout and retry), on lines that begin with \"trace \"."`

	tlsFlags `embed:""`
}

// tlsFlags are connect's and bench's flags for a tls:// server, as
// client.TLSOptions.
type tlsFlags struct {
	CA       string `placeholder:"FILE" predictor:"file" help:"tls://: the authorities (PEM) that may sign the server's certificate. Default: the system's."`
	Cert     string `placeholder:"FILE" predictor:"file" help:"tls://: a client certificate (PEM), for servers that require one (mTLS)."`
	Key      string `placeholder:"FILE" predictor:"file" help:"tls://: the key of --cert (PEM)."`
	Insecure bool   `help:"tls://: accept any server certificate (for trying things out)."`
}

// tlsGiven reports whether any of the flags was given: they are refused
// for an address that is not tls://.
func (f tlsFlags) tlsGiven() bool {
	return f.CA != "" || f.Cert != "" || f.Key != "" || f.Insecure
}

// tlsConfig is the flags' tls.Config. A wait to read --ca (a pipe with
// no writer yet, which shout gives 10 s) is said on stderr once it has
// lasted pemWaitNotice: connect and bench, which have no log, were
// silent meanwhile, and the user saw nothing happen.
func (f tlsFlags) tlsConfig(ctx context.Context, stderr io.Writer) (*tls.Config, error) {
	ctx = certs.WithWaitNotice(ctx, pemWaitNotice, func(msg string, timeout time.Duration) {
		msg = noticeFlag(msg)
		if timeout > 0 {
			msg += fmt.Sprintf("; giving up after %v", timeout)
		}
		sayError(stderr, msg)
	})
	return client.TLSOptions(f).ConfigContext(ctx)
}

// noticeFlag is msg, a certs wait notice ("waiting for TLSOptions.CA
// FILE: ..."), with the setting it names said by its flag, as errors are
// (flagText): the notice's text is a string, not a named.Error.
func noticeFlag(msg string) string {
	for setting, flag := range flagNames {
		if rest, ok := strings.CutPrefix(msg, "waiting for "+setting+" "); ok {
			return "waiting for " + flag + " " + rest
		}
	}
	return msg
}

func (cmd *connectCmd) Run(std *stdio, kctx *kong.Context) error {
	ep, err := dialTarget(cmd.Addr, servePort(kctx.Model))
	if err != nil {
		return err
	}
	// The prompt reads keys from standard input and draws on standard
	// output: both must be the terminal. With either redirected (> out.txt,
	// | tee log) the prompt's escape codes would fill the file and the user
	// would type blind; the stream mode writes replies as plain lines, and
	// the terminal's own echo shows what is typed.
	in, _ := std.stdin.(*os.File)
	out := file(std.stdout)
	terminal := in != nil && term.IsTerminal(int(in.Fd())) && out != nil && term.IsTerminal(int(out.Fd()))
	if err := cmd.check(ep, terminal, std.given); err != nil {
		return err
	}
	if !terminal && std.given["history"] && cmd.History != "" && cmd.History != "-" {
		// Said, not refused (as --reconnect is): history changes nothing
		// of what is sent, and a line given to a pipe and a terminal
		// alike must work in both; but left silent, a user looks in the
		// file for lines that never went there. (ssh's "Pseudo-terminal
		// will not be allocated" likewise.)
		notTerminal := "standard input"
		if in != nil && term.IsTerminal(int(in.Fd())) {
			notTerminal = "standard output"
		}
		// (The name escaped, as a PEM file's is: stderr may be the terminal.)
		sayError(std.stderr, fmt.Sprintf("--history %s: not used: %s is not a terminal, and only the prompt keeps a history", cmd.History, notTerminal))
	}
	connect := func(ctx context.Context) (net.Conn, error) { return client.Dial(ctx, ep, cmd.DialTimeout) }
	if ep.TLS {
		cfg, err := cmd.tlsConfig(std.ctx, std.stderr)
		if err != nil {
			return pemError(err)
		}
		connect = func(ctx context.Context) (net.Conn, error) { return client.DialTLS(ctx, ep, cmd.DialTimeout, cfg) }
	}
	dial := func() (net.Conn, error) {
		c, err := connect(context.Background())
		if err != nil {
			return nil, flagged{err} // the prompt says it
		}
		return c, nil
	}
	c, err := connect(std.ctx)
	if err != nil {
		return timeoutFlag(err, "--dial-timeout", cmd.DialTimeout)
	}
	if terminal {
		history := cmd.History
		switch history {
		case "":
			history = client.DefaultHistoryFile()
		case "-":
			history = ""
		}
		// The prompt traces itself: its trace lines go above the prompt.
		// The prompt leaves on SIGQUIT as on SIGTERM, the terminal
		// restored: it catches the signal itself. (Until it does, a
		// SIGQUIT is not acted on: no stack dump, no exit with the
		// terminal raw. Elsewhere main's catchQuit stops connect.)
		defer takeQuit()()
		t := &client.Terminal{
			Addr: ep.Address, Dial: dial, Reconnect: cmd.Reconnect,
			Timeout: cmd.Timeout, Retries: cmd.Retries, HistoryFile: history,
			Trace: cmd.Trace, Raw: cmd.Raw, In: in, Out: std.stdout, Err: std.stderr,
		}
		if code := t.Run(c); code != 0 {
			return &exitError{code: code}
		}
		return nil
	}
	c = cmd.traced(c, std)
	defer c.Close()
	// Standard output a terminal (input from a pipe or a file) shows what
	// the server sends as the prompt does: raw, the server's escape
	// sequences would drive the terminal. A file or a pipe gets the bytes
	// unchanged.
	stdout := std.stdout
	var shown *client.Visible
	if f := file(std.stdout); f != nil && !cmd.Raw && term.IsTerminal(int(f.Fd())) {
		shown = &client.Visible{W: std.stdout}
		stdout = shown
	}
	flush := func() {
		if shown != nil {
			shown.Flush()
		}
	}
	if ep.Network == "udp" {
		redial := func() (net.Conn, error) {
			c, err := dial()
			return cmd.traced(c, std), err
		}
		res, err := client.Datagrams(c, redial, std.stdin, stdout, std.stderr, cmd.Timeout, cmd.Retries)
		flush()
		if err != nil {
			return err
		}
		if msg := res.Problem(); msg != "" {
			return &exitError{code: 1, msg: msg}
		}
		return nil
	}
	res, err := client.Pipe(c, std.stdin, stdout, cmd.Timeout)
	flush()
	if err != nil {
		return err
	}
	if !res.Complete() {
		if f := file(std.stdout); f != nil && res.MidLine {
			// The error goes on a line of its own, not after a reply cut
			// short: on the terminal, and where it follows the reply in
			// one file or pipe (2>&1 | tee log), which gets the newline
			// from stderr, the server's bytes on stdout unchanged.
			switch {
			case term.IsTerminal(int(f.Fd())):
				fmt.Fprintln(f)
			case sameFile(f, std.stderr):
				fmt.Fprintln(std.stderr)
			}
		}
		msg := res.Problem(ep.Address, cmd.Timeout)
		switch {
		case res.Closed && res.Received == 0 && res.Sent > 0 && ep.Network == "tcp" && !ep.TLS:
			msg += "; " + client.SilentClose(ep.Address)
		case res.Closed && res.TLSAlert && ep.Network == "tcp" && !ep.TLS:
			msg += "; " + client.AlertBack(ep.Address)
		}
		return &exitError{code: 1, msg: msg}
	}
	return nil
}

// check refuses flags that do not fit the address, or standard input
// and output being a terminal or not, and values out of range.
func (cmd *connectCmd) check(ep endpoint.Endpoint, terminal bool, given map[string]bool) error {
	switch {
	case negativeNumber.MatchString(cmd.History):
		// --history -1 is someone's "no history" (or a size), not a file
		// they mean: it was saved to ./-1 without a word.
		return usagef("--history takes a file, not a number: \"-\" keeps no history (a file named %s: --history ./%s)", cmd.History, cmd.History)
	case cmd.Reconnect && (!terminal || ep.Network == "udp"):
		// In a pipe, what the server had not answered when it closed
		// cannot be told apart from what it never read.
		return usagef("--reconnect is for the prompt on a terminal, over TCP, TLS or a Unix socket")
	case cmd.Timeout < 0:
		return usagef("--timeout must not be negative")
	case cmd.Timeout == 0 && ep.Network == "udp": // every datagram would be lost at once
		return usagef("--timeout must be more than 0 over UDP")
	case cmd.Timeout == 0 && terminal:
		// The prompt must say when a line got no reply, and Ctrl-D must
		// leave: 0 there took 2 s without a word.
		return usagef("--timeout must be more than 0 at the prompt (0, waiting for the server as long as it takes, is for a pipe)")
	case given["retries"] && ep.Network != "udp":
		return usagef("--retries is for udp:// addresses: TCP, TLS and Unix sockets deliver every line or fail")
	case cmd.Retries < 0:
		return usagef("--retries must not be negative")
	case cmd.Retries > client.MaxRetries:
		return usagef("--retries must be at most %d", client.MaxRetries)
	case cmd.DialTimeout < 0:
		return usagef("--dial-timeout must not be negative")
	case !ep.TLS && cmd.tlsGiven():
		return usagef("--ca, --cert, --key and --insecure are for tls:// addresses")
	}
	return nil
}

// traced is c as --trace asks in a pipe: every socket call written to
// stderr. (At the prompt client.Terminal traces, above the prompt.)
func (cmd *connectCmd) traced(c net.Conn, std *stdio) net.Conn {
	if !cmd.Trace || c == nil {
		return c
	}
	return client.Trace(c, std.stderr)
}

// sameFile reports whether w is the file f is, as 2>&1 makes stderr.
func sameFile(f *os.File, w io.Writer) bool {
	g, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	if err != nil {
		return false
	}
	gi, err := g.Stat()
	return err == nil && os.SameFile(fi, gi)
}

// dialTarget is the server that connect and bench talk to. Port 0 is for
// listening, where the system picks a free port: dialled, it is refused
// as if a server had stopped there, which says nothing of why. So is a
// listener's address in socat's syntax (TCP-LISTEN:8080). One without
// its port (tcp://localhost) is offered with port, serve's default: it
// was told only "missing port in address".
func dialTarget(addr, port string) (endpoint.Endpoint, error) {
	eps, err := endpoint.Parse(addr, "tcp")
	if _, local := endpoint.Listener(err); local != "" {
		// Parse offers a listener's two: every interface, which is no
		// address to connect to, and this machine.
		return endpoint.Endpoint{}, usagef("bad address %q: a listener's address in socat's syntax, for shout serve (did you mean %q?)", addr, local)
	}
	if err != nil {
		taken := func(meant string) bool { _, err := dialTarget(meant, ""); return err == nil }
		return endpoint.Endpoint{}, portOffered(err, addr, port, taken)
	}
	e := eps[0]
	if e.Network != "unix" {
		if _, port, _ := net.SplitHostPort(e.Address); strings.Trim(port, "0") == "" {
			return endpoint.Endpoint{}, usagef("bad address %q: port 0 is for listening (the system picks a free one): give the port of the server's \"listening on\" line", addr)
		}
	}
	return e, nil
}

// timeoutFlag is err, a failure to connect, with the flag whose timeout
// it ran out, if it did: "timed out" said nothing of --dial-timeout 1ns.
func timeoutFlag(err error, flag string, timeout time.Duration) error {
	var ce *client.ConnError
	if !errors.As(err, &ce) || ce.Op == "send" || ce.Op == "receive" ||
		!(errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded)) {
		return err
	}
	return fmt.Errorf("%w (%s %v)", err, flag, timeout)
}
