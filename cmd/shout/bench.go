package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/alecthomas/kong"
	"golang.org/x/term"

	"shout/bench"
	"shout/endpoint"
)

type benchCmd struct {
	Addr string `arg:"" optional:"" default:"127.0.0.1:8080" help:"Server: host:port or tcp://host:port (TCP), udp://host:port, tls://host:port, unix:///path. A bare port is on 127.0.0.1. Default: ${default}."`

	Conns          int           `default:"50" help:"Connections (TCP, Unix) or sockets (UDP)."`
	Size           int           `default:"64" help:"Bytes per message, newline included (UDP: datagram size, a 20-digit sequence number included)."`
	Depth          int           `default:"1" help:"Messages in flight per connection (closed loop: each timed from its send, so a stall counts once a message in flight; --rate counts every message it held up)."`
	Duration       time.Duration `default:"5s" help:"How long to measure."`
	Warmup         time.Duration `default:"1s" help:"Unmeasured time before measuring."`
	Rate           float64       `placeholder:"MSG/S" help:"Open loop: this many messages per second in all, latency from when each was due (UDP: from its send, which never waits for the server). 0: closed loop."`
	Text           string        `enum:"utf8,ascii" default:"utf8" help:"Message text: utf8 (ASCII with Latin, Greek, Cyrillic, CJK, and ß ﬁ ŉ ΐ, whose uppercase is longer), or ascii."`
	Mode           string        `enum:"upper,simple,ascii,echo" default:"upper" help:"The reply to expect, computed apart from shout's engine: upper (golang.org/x/text's cases.Upper), simple (unicode.ToUpper, one rune for one), ascii (a-z only) or echo (the message as sent)."`
	Lang           string        `placeholder:"TAG" help:"Language tailoring of the expected reply (tr, az, el)."`
	Timeout        time.Duration `default:"5s" help:"A reply later than this after its message is lost; a TCP connection with no reply for this long, an error; at the end, how long owed replies are waited for. Not connecting: see --connect-timeout."`
	ConnectTimeout time.Duration `name:"connect-timeout" default:"5s" help:"How long each connect, and TLS handshake, may take (--churn's and --reconnect's too)."`
	SourceIPs      int           `name:"source-ips" default:"0" help:"Spread TCP connections and UDP sockets to a loopback IPv4 server over 127.0.0.1 to 127.0.0.N, against running out of ephemeral ports and per-address limits. 0: enough for at most 1,000 per address, and at least 16 (or one a connection, where there are fewer)."`
	JSON           bool          `name:"json" help:"Write the report to stdout as one line of JSON with every figure (the text goes to stderr)."`
	HTML           fileName      `name:"html" placeholder:"FILE" predictor:"file" help:"Also write the report as one HTML page with charts, which opens without a network."`
	Churn          bool          `help:"A new connection for each message (connect, send, half-close, reply, close): measures connections, and TLS handshakes, per second."`
	Reconnect      bool          `help:"When the server closes a connection, make a new one and go on (replicas restarting behind a load balancer); messages owed at a graceful close are sent again. TCP and Unix, no TLS."`

	tlsFlags `embed:""`
}

// Help is bench --help's text after its one line: what its exit status
// means, which a CI job gates on (README's Exit status says more).
func (cmd *benchCmd) Help() string {
	return "Exit status: 0 when every reply was checked and all was right; 1 when not (a reply wrong, late or lost, an error, less load than asked for: the report's last line says why), or the server could not be reached; 2 on a usage error; 128+N when signal N stopped it before it measured anything, or at once (a second Ctrl-C, SIGQUIT)."
}

func (cmd *benchCmd) Run(std *stdio, kctx *kong.Context) error {
	ep, err := dialTarget(cmd.Addr, servePort(kctx.Model))
	if err != nil {
		return err
	}
	// The same refusals as serve; bench computes its expected replies
	// without shout's engine.
	if _, err := transformer(cmd.Mode, cmd.Lang); err != nil {
		return err
	}
	if err := cmd.check(ep); err != nil {
		return err
	}
	cfg := bench.Config{
		Endpoint: ep, Conns: cmd.Conns, Size: cmd.Size, Depth: cmd.Depth,
		Duration: cmd.Duration, Warmup: cmd.Warmup, Rate: cmd.Rate, Text: cmd.Text,
		Mode: cmd.Mode, Lang: cmd.Lang, Timeout: cmd.Timeout, SourceIPs: cmd.SourceIPs,
		ConnectTimeout: cmd.ConnectTimeout,
		Churn:          cmd.Churn, Reconnect: cmd.Reconnect,
	}
	if cmd.SourceIPs > 1 && !cfg.CanSpread() {
		// It was taken, and did nothing.
		return usagef("--source-ips is for TCP, tls:// and udp:// to a loopback IPv4 address, such as 127.0.0.1:8080")
	}
	if ep.TLS {
		var err error
		if cfg.TLS, err = cmd.tlsConfig(std.ctx, std.stderr); err != nil {
			return pemError(err)
		}
	}
	if cmd.Warmup == 0 {
		cfg.Warmup = -1
	}
	if f, ok := std.stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		cfg.Progress = std.stderr
	}
	// A usage error, refused before the settings are printed, as the
	// others are: it needs the messages made, which Run would make.
	if err := bench.CheckReplies(cfg); err != nil {
		var large *bench.ReplyTooLargeError
		if !errors.As(err, &large) {
			return err
		}
		or := ""
		if large.ASCIIFits { // (not with --lang tr or az: "i" is "İ")
			or = ", or --text ascii"
		}
		return usagef("--size %d: the reply to a datagram of %s text in mode %s is up to %d bytes, more than a UDP datagram carries (%d): no server could send it; use a smaller --size%s", large.Size, large.Text, large.ModeName(), large.Longest, large.Most, or)
	}
	// Open the page's file now: a typo in its path should not cost a run.
	var page *htmlFile
	if cmd.HTML != "" {
		if page, err = openHTML(string(cmd.HTML)); err != nil {
			return usagef("--html: %v", err)
		}
	}
	// Ctrl-C (or SIGTERM, or SIGHUP: a closed terminal, whose run's
	// report goes to a file) ends the run early with the report of what
	// was measured; a second one, once the first is seen, or SIGQUIT,
	// stops shout at once. Caught before the settings are written:
	// whoever reads them may signal at once. SIGQUIT is taken from main's
	// catchQuit, for --json's last line and the --html page. SIGHUP only
	// if it was not ignored at start: catching it would undo nohup.
	// SIGHUP has a channel of its own: os/signal drops a signal whose
	// channel is full, and a closing terminal's burst of SIGHUPs, which
	// this passes over, took the place of the Ctrl-C that came with it.
	sigs := make(chan os.Signal, 1)
	hups := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGQUIT)
	if !signal.Ignored(syscall.SIGHUP) {
		signal.Notify(hups, syscall.SIGHUP)
	}
	// Once a signal has begun the stop, shout catches them to its exit:
	// a relay's copies of it (see echoes) may come after the report,
	// and with the default action back one would kill shout as it
	// exits, status 130 rather than the report's.
	var signalled atomic.Bool
	defer func() {
		if !signalled.Load() {
			signal.Stop(sigs)
			signal.Stop(hups)
		}
	}()
	defer takeQuit()() // (before the Stop)
	ctx, cancel := context.WithCancel(std.ctx)
	defer cancel()
	finished := make(chan struct{})
	defer close(finished)
	// The end of stdout is the report's, or a second signal's: whichever
	// takes it first. A signal that comes while the report is written
	// cuts it short; one that comes before has bench write no report.
	var endTaken atomic.Bool
	started := time.Now() // for --json's line without a report; a report has its own
	stopNow := func(s os.Signal, why string) {
		if endTaken.CompareAndSwap(false, true) {
			page.discard() // not left empty: there is no report
			if cmd.JSON {
				writeJSONError(std.stdout, started, "stopped at once by "+why+", without a report")
			}
		}
		stopBySignal(s.(syscall.Signal))
	}
	caught := make(chan os.Signal, 1)
	go func() {
		var s os.Signal
		select {
		case s = <-sigs:
		case s = <-hups:
		case <-ctx.Done():
			return
		}
		// The echo window (see echoes) counts from here.
		beganAt := signalClock()
		signalled.Store(true)
		if s == syscall.SIGQUIT {
			stopNow(s, "SIGQUIT")
		}
		caught <- s
		again := "Ctrl-C again"
		if s != os.Interrupt {
			again = "Ctrl-C"
		}
		// The notice is written apart, and the run stopped once it is: a
		// slow write (a stalled terminal, a full pipe) must not hold back
		// the signals that come meanwhile, each timed as it comes. Read
		// after the notice, a relay's copy was taken for a second Ctrl-C;
		// timed from the notice's end, a person's second, for a copy.
		noticed := make(chan struct{})
		go func() {
			fmt.Fprintf(std.stderr, "shout: %s: stopping; what was measured is reported once the replies owed have come (at most %v), at once if the time measured was up; %s to stop at once\n", s, cmd.Timeout, again)
			close(noticed)
			cancel()
		}()
		// Not by leaving the second to Go's default, which is to ignore
		// it if it was ignored when shout started. A second SIGHUP is
		// no one asking again: a closing terminal may send two (the
		// shell's to its jobs, the kernel's to the foreground); nor is
		// a second SIGTERM (see hurries).
		began, told := s, false
		for {
			select {
			case <-hups:
				continue
			case s := <-sigs:
				if echoes(began, signalClock().Sub(beganAt), s) {
					continue // a relay's copy says nothing
				}
				if !hurries(began, s) {
					if !told {
						go func() {
							<-noticed // the answer comes after what it answers
							fmt.Fprintf(std.stderr, "shout: %s again: already stopping; Ctrl-C to stop at once\n", s)
						}()
						told = true
					}
					continue
				}
				why := "a second " + s.String()
				if s == syscall.SIGQUIT {
					why = "SIGQUIT"
				}
				stopNow(s, why)
			case <-finished:
			}
			return
		}
	}()
	// With --json standard output is the JSON alone, for jq and
	// > run.json; the text a person reads goes to stderr.
	text := std.stdout
	if cmd.JSON {
		text = std.stderr
	}
	var header bytes.Buffer
	cfg.Settings().WriteHeader(&header)
	if err := writeSettings(std, cmd.JSON, header.Bytes()); err != nil {
		page.discard()
		return err
	}
	rep, err := bench.Run(ctx, cfg)
	if !endTaken.CompareAndSwap(false, true) {
		select {} // a second signal is stopping shout
	}
	// With --json the last line is JSON even when there is no report: a
	// pipeline's jq reads why.
	noReport := func(e error) error {
		page.discard()
		if cmd.JSON {
			writeJSONError(std.stdout, started, flagText(e))
		}
		return e
	}
	select {
	case s := <-caught:
		// Nothing counted (a Ctrl-C as the first message was due) is
		// nothing measured too: "no message was sent" would be a failure.
		if err != nil || rep.MeasuredS == 0 || rep.Empty() {
			// 128 + the signal, as a shell reports a program it stopped.
			return noReport(&exitError{code: 128 + int(s.(syscall.Signal)), msg: "interrupted before anything was measured"})
		}
	default:
		if err != nil {
			return noReport(timeoutFlag(err, "--connect-timeout", cmd.ConnectTimeout))
		}
	}
	rep.NameSettings(flagName) // the report names --mode, not Mode
	rep.Version, rep.Revision = buildVersion()
	rep.WriteText(text)
	if cmd.JSON {
		line, _ := json.Marshal(rep)
		fmt.Fprintf(std.stdout, "%s\n", line)
	}
	if page != nil {
		if err := page.write(rep); err != nil {
			return fmt.Errorf("--html: %w", err)
		}
	}
	if !rep.OK() {
		return &exitError{code: 1}
	}
	return nil
}

// check refuses flags that cannot go together, or values out of range,
// before anything is dialed.
func (cmd *benchCmd) check(ep endpoint.Endpoint) error {
	switch {
	case cmd.Conns < 1:
		return usagef("--conns must be at least 1")
	case cmd.Size < 2:
		return usagef("--size must be at least 2 (a character and a newline)")
	case ep.Network == "udp" && cmd.Size > bench.MaxPayload(ep):
		return usagef("--size: a UDP datagram to %s carries at most %d,%03d bytes", ep.Address, bench.MaxPayload(ep)/1000, bench.MaxPayload(ep)%1000)
	case ep.Network == "udp" && cmd.Size < 21:
		return usagef("--size: a UDP message is a 20-digit sequence number and at least one byte, 21 in all")
	case cmd.Size > bench.MaxSize:
		return usagef("--size must be at most 64 MiB (%d bytes): bench holds each message and its reply whole", bench.MaxSize)
	case cmd.Depth < 1 || cmd.Depth > bench.MaxDepth:
		return usagef("--depth must be from 1 to %d", bench.MaxDepth)
	case float64(cmd.Conns)*float64(cmd.Depth+1)*float64(cmd.Size) > bench.MaxHeld: // (in int64 it could wrap)
		// Each connection holds a write of up to --depth messages and the
		// reply it is reading.
		return usagef("--conns × (--depth + 1) × --size is more than bench will hold in memory (%d GiB)", bench.MaxHeld>>30)
	case math.IsNaN(cmd.Rate) || math.IsInf(cmd.Rate, 0):
		return usagef("--rate must be a number of messages per second")
	case cmd.Rate < 0:
		return usagef("--rate must not be negative")
	case cmd.Rate > 0 && float64(max(cmd.Conns, 1))/cmd.Rate > 1e9:
		// Each connection's interval in nanoseconds must fit in 64 bits.
		return usagef("--rate is too low: a connection would send once in more than 30 years")
	case cmd.Rate > 0 && float64(max(cmd.Conns, 1))/cmd.Rate < 1e-9:
		// Each connection's interval must be at least a nanosecond.
		return usagef("--rate is too high: a connection would send more than one message a nanosecond (at most 1e9 × --conns)")
	case cmd.Duration <= 0:
		return usagef("--duration must be more than 0")
	case cmd.Warmup < 0:
		return usagef("--warmup must not be negative")
	case cmd.Timeout <= 0:
		return usagef("--timeout must be more than 0")
	case cmd.ConnectTimeout <= 0:
		return usagef("--connect-timeout must be more than 0")
	case cmd.Reconnect && (ep.Network == "udp" || ep.TLS || cmd.Churn):
		return usagef("--reconnect is for TCP and Unix sockets, without TLS or --churn")
	case cmd.Churn && ep.Network == "udp":
		return usagef("--churn is for TCP, TLS and Unix sockets: UDP has no connections")
	case cmd.Churn && (cmd.Rate > 0 || cmd.Depth > 1):
		return usagef("--churn sends one message per connection, in a closed loop: no --rate or --depth")
	case cmd.Rate > 0 && cmd.Depth > 1:
		// Open loop: it was taken and ignored.
		return usagef("--depth is for the closed loop: with --rate, messages go when they are due, however many are in flight")
	case !ep.TLS && cmd.tlsGiven():
		return usagef("--ca, --cert, --key and --insecure are for tls:// addresses")
	case cmd.SourceIPs < 0 || cmd.SourceIPs > 255: // 127.0.0.1 to 127.0.0.255
		return usagef("--source-ips must be from 1 to 255, or 0 for as many as the connections need")
	}
	return nil
}

// writeSettings writes the settings line as the run starts, and with it
// tries standard output: one that cannot be written (> /dev/full, a full
// disk) fails the start, not the end of a run it cannot report. (A
// descriptor not open is none: Go's runtime opens /dev/null on a closed
// 0, 1 or 2 as the program starts, on Unix.) With --json the line goes to stderr, and stdout, which
// is the JSON's alone, is tried by tryJSONOut.
func writeSettings(std *stdio, asJSON bool, line []byte) error {
	if !asJSON {
		_, err := std.stdout.Write(line)
		return err
	}
	if err := tryJSONOut(std.stdout); err != nil {
		return err
	}
	std.stderr.Write(line) // a stderr that cannot take it costs no JSON
	return nil
}

// tryJSONOut tries w, --json's stdout, adding no byte to the JSON (a
// space that tried it led the JSON). A write of nothing reaches the file,
// and /dev/full refuses it, but a pipe with no
// reader left and a full disk take it. A pipe whose reader is gone gets
// the space, which nobody reads, and its SIGPIPE ends bench now, not
// after its run; a regular file is asked whether a byte at its end
// would go (roomAtEnd).
func tryJSONOut(w io.Writer) error {
	if _, err := w.Write(nil); err != nil {
		return err
	}
	f := file(w)
	if f == nil {
		return nil
	}
	fi, err := f.Stat()
	switch {
	case err != nil:
	case fi.Mode()&os.ModeNamedPipe != 0 && readerGone(f):
		_, err := io.WriteString(w, " ")
		return err
	case fi.Mode().IsRegular():
		return roomAtEnd(f, fi.Size())
	}
	return nil
}

// byteAtEnd tries f, a regular file, with a byte written at its end and
// cut off again, and puts its offset back. Bytes another writer appends
// to the file meanwhile (tee -a, a second bench >> one log) are cut off
// with it, and a file that grows but does not shrink (chattr +a) keeps
// the byte: roomAtEnd asks without writing where the system can.
func byteAtEnd(f *os.File) error {
	at, err := f.Seek(0, io.SeekCurrent)
	if err != nil {
		return nil
	}
	end, err := f.Seek(0, io.SeekEnd) // (where >> writes too)
	if err != nil {
		return nil
	}
	_, err = f.Write([]byte{' '})
	if err == nil {
		err = f.Truncate(end)
	}
	if _, serr := f.Seek(at, io.SeekStart); err == nil {
		err = serr
	}
	return err
}

// writeJSONError writes --json's last line for a run without a report:
// with "ok" false, as a report not all right has it, so that a script
// that asks .ok == false, not only jq -e .ok, sees the failure; and, as
// a report does, when the run started and which shout made it.
func writeJSONError(w io.Writer, started time.Time, msg string) {
	v, rev := buildVersion()
	line, _ := json.Marshal(struct {
		OK       bool      `json:"ok"`
		Error    string    `json:"error"`
		Started  time.Time `json:"started"`
		Version  string    `json:"shout_version"`
		Revision string    `json:"shout_revision,omitempty"`
	}{false, msg, started.Round(0), v, rev})
	fmt.Fprintf(w, "%s\n", line)
}

// htmlFile is the --html page's file, opened before the run.
type htmlFile struct {
	f       *os.File
	created bool // by shout, so removed if no report comes
}

// openHTML opens path for writing without truncating it, so a run that
// fails before it has a report leaves an existing file as it was.
func openHTML(path string) (*htmlFile, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o666)
	if err == nil {
		return &htmlFile{f: f, created: true}, nil
	}
	if !errors.Is(err, fs.ErrExist) {
		return nil, err
	}
	if f, err = os.OpenFile(path, os.O_WRONLY, 0); err != nil {
		return nil, err
	}
	return &htmlFile{f: f}, nil
}

// write replaces the file's content with rep's page. Only a regular
// file has content to replace: a pipe (--html /dev/stdout, a shell's
// >(gzip > page.html.gz)) refuses to be truncated, and takes the page as
// it is.
func (h *htmlFile) write(rep *bench.Report) error {
	if fi, err := h.f.Stat(); err != nil || fi.Mode().IsRegular() {
		if err := h.f.Truncate(0); err != nil {
			h.f.Close()
			return err
		}
	}
	w := bufio.NewWriter(h.f)
	err := rep.WriteHTML(w)
	if err == nil {
		err = w.Flush()
	}
	if cerr := h.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// discard closes the file, and removes it if shout created it.
func (h *htmlFile) discard() {
	if h == nil {
		return
	}
	h.f.Close()
	if h.created {
		os.Remove(h.f.Name())
	}
}
