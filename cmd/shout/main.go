// Command shout is an always-on, concurrent TCP and UDP server that
// answers every message with its uppercase, the client that talks to it,
// and a load generator that measures it. Run shout --help.
package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/netip"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/alecthomas/kong"
	"github.com/posener/complete"
	"github.com/willabides/kongplete"
	"golang.org/x/net/idna"

	"shout/endpoint"
	"shout/internal/certs"
	"shout/internal/escape"
)

func main() {
	catchQuit() // first: a SIGQUIT that comes as shout starts must not dump its stacks
	os.Exit(run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

type cli struct {
	Serve   serveCmd   `cmd:"" help:"Serve uppercase over TCP, UDP and Unix sockets (default 127.0.0.1:8080, TCP and UDP)."`
	Connect connectCmd `cmd:"" help:"Talk to an uppercase or echo server: a prompt on a terminal, a stream in a pipe."`
	Bench   benchCmd   `cmd:"" help:"Load a server, check every reply, report throughput and latency percentiles."`
	Version versionCmd `cmd:"" help:"Print shout's version."`

	Completion completionCmd `cmd:"" help:"Print the script that completes shout's commands and flags in bash, zsh or fish (see the README)."`
	Help       helpCmd       `cmd:"" help:"Print shout's help, or a command's: shout help serve is shout serve --help."`

	VersionFlag kong.VersionFlag `name:"version" env:"-" help:"Print shout's version."`
}

// serveEnvars reads shout serve's flags from the environment as well
// (--max-conns as SHOUT_MAX_CONNS): a server in a container is set up so.
// connect and bench take only their flags: they share names with serve's
// (--cert, --mode), and a variable set for the server must not change
// what a client in the same shell sends or expects.
func serveEnvars() kong.Option {
	return kong.OptionFunc(func(k *kong.Kong) error {
		if err := kong.DefaultEnvars("SHOUT").Apply(k); err != nil {
			return err
		}
		// The variables each serve flag's help names: all of them, also
		// those set empty, which are dropped from what kong reads.
		named := make(map[*kong.Value][]string)
		if err := kong.ValueFormatter(func(v *kong.Value) string {
			if envs, ok := named[v]; ok {
				tag := *v.Tag
				tag.Envs = envs
				w := *v
				w.Tag = &tag
				return kong.DefaultHelpValueFormatter(&w)
			}
			return kong.DefaultHelpValueFormatter(v)
		}).Apply(k); err != nil {
			return err
		}
		return kong.PostBuild(func(k *kong.Kong) error {
			for _, n := range k.Model.Children {
				if n.Name == "serve" {
					for _, f := range n.Flags {
						if envs := slices.DeleteFunc(slices.Clone(f.Envs), setEmpty); len(envs) < len(f.Envs) {
							named[f.Value] = f.Envs
							f.Envs, f.Value.Tag.Envs = envs, envs
						}
					}
					continue
				}
				for _, f := range n.Flags {
					f.Envs, f.Value.Tag.Envs = nil, nil
				}
			}
			return nil
		}).Apply(k)
	})
}

// setEmpty reports whether the environment variable env is set to the
// empty string, which serve takes as not set: a manifest's `value: ""`
// or `SHOUT_MODE=${MODE}` with MODE unset means the default, as an
// empty SHOUT_CERT or SHOUT_ADMIN always did, not "--mode must be one
// of … but got \"\"".
func setEmpty(env string) bool {
	v, ok := os.LookupEnv(env)
	return ok && v == ""
}

// stdio is what every command's Run receives: the process's streams and a
// context that ends when the command should stop.
type stdio struct {
	ctx    context.Context
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	given  map[string]bool // the command's flags not left to their default, by name (see givenFlags)
}

// givenFlags are the flags of the command kctx selected that the command
// line set, or the environment (serve's), by name: those that were not
// left to their default. A flag that does nothing with the rest of a
// command line is refused only if given: its default may not fit.
func givenFlags(kctx *kong.Context) map[string]bool {
	given := make(map[string]bool)
	for _, p := range kctx.Path {
		if p.Flag != nil {
			given[p.Flag.Name] = true
		}
	}
	if node := kctx.Selected(); node != nil {
		for _, f := range node.Flags {
			for _, env := range f.Envs { // (not those set empty: see serveEnvars)
				if _, ok := os.LookupEnv(env); ok {
					given[f.Name] = true
				}
			}
		}
	}
	return given
}

// exitError ends a command with a status and, if msg is set, one line.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

// usagef is a usage error: a flag or argument that makes no sense. Like
// the parser's own errors it ends shout with status 2.
func usagef(format string, a ...any) error {
	return &exitError{code: 2, msg: fmt.Sprintf(format, a...)}
}

// usage makes err, a bad address or flag value, a usage error.
func usage(err error) error { return &exitError{code: 2, msg: flagText(err)} }

// pemError is err, from reading the PEM files of --cert, --key, --ca or
// --client-ca: a usage error if the file given is not one to give (not
// there, not PEM, the wrong key), a failure (status 1) if it could not be
// read in time (a pipe not written to its end, a file another program
// kept its lease on), which is no bad flag value and may pass. A wait
// cut short (context.Canceled: serve stopped while starting) is left as
// it is, for the caller.
func pemError(err error) error {
	if errors.Is(err, certs.ErrNotReady) || errors.Is(err, context.Canceled) {
		return err
	}
	return usage(err)
}

// kongExit carries an exit status out of kong's help and version flags.
type kongExit int

// run is shout's whole command line: it parses args, runs one command and
// returns the exit status. Errors reach stderr as one line, "shout: ...",
// escaped (sayError).
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) (code int) {
	out := checkWrites(stdout)
	// Last: once code is known, a panic from kong's exit included.
	defer func() {
		if err := out.failed(); err != nil {
			sayError(stderr, err.Error())
			code = 1
		}
	}()
	var c cli
	parser, err := kong.New(&c,
		kong.Name("shout"),
		kong.Description("An uppercase server, its client and its load generator.\n\n"+
			"Every flag of shout serve can also be set from the environment: --max-conns as SHOUT_MAX_CONNS, and so on."),
		kong.Writers(out, stderr),
		kong.Exit(func(code int) { panic(kongExit(code)) }),
		serveEnvars(),
		kong.Vars{"version": versionLine()},
		kong.ConfigureHelp(kong.HelpOptions{Compact: true}),
		decimalInts(),
		numbers(),
		durations(),
	)
	if err != nil {
		sayError(stderr, err.Error())
		return 2
	}
	defer func() {
		switch r := recover().(type) {
		case nil:
		case kongExit:
			code = int(r)
		default:
			panic(r)
		}
	}()
	// A shell asking for completions sets COMP_LINE; shout prints them and
	// exits 0 without running a command.
	kongplete.Complete(parser, kongplete.WithExitFunc(func(code int) { panic(kongExit(code)) }),
		kongplete.WithPredictor("file", complete.PredictFiles("*")),
		kongplete.WithPredictor("command", helpPredictor(commandNames(parser.Model))))
	if len(args) == 0 {
		// No command: the help itself, where kong's "expected one of"
		// cut the list of commands short with "...". On stderr with
		// status 2, as the usage error it still is.
		parser.Stdout = stderr
		if kctx, err := kong.Trace(parser, nil); err == nil {
			kctx.PrintUsage(false)
		}
		return 2
	}
	kctx, err := parser.Parse(flagsFirst(parser.Model, negativeValues(parser.Model, args)))
	if err != nil {
		if werr := out.failed(); werr != nil { // the help could not be written: no usage error
			sayError(stderr, werr.Error())
			return 1
		}
		msg := err.Error()
		for _, hint := range parseHints {
			msg = hint(parser.Model, args, msg)
		}
		sayError(stderr, hidePasswords(parser.Model, args, fromEnvar(parser, args, msg)))
		fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", helpFor(parser.Model, args))
		return 2
	}
	err = kctx.Run(&stdio{ctx: ctx, stdin: stdin, stdout: out, stderr: stderr, given: givenFlags(kctx)})
	var ee *exitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		if ee.msg != "" {
			out.failed() // the command said what went wrong
			sayError(stderr, hidePasswords(parser.Model, args, fromEnvar(parser, args, ee.msg)))
		}
		return ee.code
	default:
		out.failed()
		sayError(stderr, hidePasswords(parser.Model, args, flagText(err)))
		return 1
	}
}

// parseHints say a parse error of kong's in a user's words, applied in
// turn: each rewrites the error it knows (an address where a command
// goes, a flag without its value, …) and passes the others on as they
// are.
var parseHints = []func(app *kong.Application, args []string, msg string) string{
	noCommand, splitAddress, noArg, noValue, shortFlag, misplaced,
}

// hidePasswords is msg, an error's text, with each argument of args, or
// value of a SHOUT_* variable (serve's flags), that has a URL's password
// in it (tcp://user:secret@host:port, a flag's value too: --admin=…)
// said as endpoint.Redacted writes it, xxxxx for the password: kong's
// errors (unexpected argument …) and shout's hints say a value back as
// it was typed, or quoted (%q: a password's " or tab escaped), and an
// error ends up in a CI log or a ticket. A file's name (--ca, --cert …)
// is no URL, unless it has a scheme (an address given there by mistake):
// a:b@c.pem is said as it is.
func hidePasswords(app *kong.Application, args []string, msg string) string {
	files, envs := fileFlags(app.Node)
	url := func(file string) bool { return strings.Contains(file, "://") }
	var values []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if name, value, ok := strings.Cut(a, "="); ok && strings.HasPrefix(name, "-") {
			if files[name] && !url(value) {
				continue
			}
			a = value
		} else if files[a] {
			i++ // its value, a file's name
			if i < len(args) && url(args[i]) {
				values = append(values, args[i])
			}
			continue
		}
		values = append(values, a)
	}
	for _, kv := range os.Environ() {
		if name, value, _ := strings.Cut(kv, "="); strings.HasPrefix(name, "SHOUT_") && (!envs[name] || url(value)) {
			values = append(values, value)
		}
	}
	for _, a := range values {
		if r := endpoint.Redacted(a); r != a {
			msg = strings.ReplaceAll(msg, a, r)
			quoted, redacted := strconv.Quote(a), strconv.Quote(r)
			msg = strings.ReplaceAll(msg, quoted[1:len(quoted)-1], redacted[1:len(redacted)-1])
		}
	}
	return msg
}

// fileFlags are the flags of node and its commands that name a file
// (predictor:"file"), as typed (--ca, and -x for a short one), and their
// variables (SHOUT_CLIENT_CA).
func fileFlags(node *kong.Node) (flags, envs map[string]bool) {
	flags, envs = map[string]bool{}, map[string]bool{}
	var walk func(*kong.Node)
	walk = func(n *kong.Node) {
		for _, f := range n.Flags {
			if f.Value.Tag.Get("predictor") != "file" {
				continue
			}
			flags["--"+f.Name] = true
			for _, a := range f.Aliases {
				flags["--"+a] = true
			}
			if f.Short != 0 {
				flags["-"+string(f.Short)] = true
			}
			for _, e := range f.Envs {
				envs[e] = true
			}
		}
		for _, c := range n.Children {
			walk(c)
		}
	}
	walk(node)
	return flags, envs
}

// sayError writes msg, an error's text, to stderr as shout's one line
// "shout: msg", escaped (escape.Printable) where a terminal would not show
// it as it is: errors carry what they name as it is (a file's name, an
// argument, ESC and newlines included), and would move the cursor, turn
// a colour on or forge a line of shout's. Text already escaped (a
// handshake's, escape.Error's; a value quoted with %q) reads as it did.
func sayError(stderr io.Writer, msg string) {
	fmt.Fprintf(stderr, "shout: %s\n", escape.Printable(msg))
}

// checkedWriter is standard output as the commands write to it: it keeps
// the first write that failed, so that shout reports it and exits 1 (shout
// version > /dev/full, shout bench > report.txt on a full disk) rather
// than exit 0 with its output lost. A closed pipe does not get here: Go
// ends shout with SIGPIPE on it, as it does cat.
type checkedWriter struct {
	w   io.Writer
	mu  sync.Mutex // bench writes its last line from its signal goroutine
	err error
}

// checkWrites is w checked; w itself if it already is (shout help runs
// run again with it), so that the failure is reported once.
func checkWrites(w io.Writer) *checkedWriter {
	if c, ok := w.(*checkedWriter); ok {
		return c
	}
	return &checkedWriter{w: w}
}

func (c *checkedWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	if err != nil {
		c.mu.Lock()
		if c.err == nil {
			c.err = err
		}
		c.mu.Unlock()
	}
	return n, err
}

// failed returns the first write error, once: whoever takes it reports it.
// (If another write then fails, that one is reported.)
func (c *checkedWriter) failed() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	err := c.err
	c.err = nil
	return err
}

// file is w as the file it writes to, if it is one: a terminal, or the
// file a reply shares with stderr.
func file(w io.Writer) *os.File {
	if c, ok := w.(*checkedWriter); ok {
		w = c.w
	}
	f, _ := w.(*os.File)
	return f
}

// flagsFirst returns args with the positional arguments of a command
// that takes several (shout serve's addresses) moved after its flags, so
// that `shout serve 127.0.0.1:8081 --mode echo 127.0.0.1:8082` serves
// both, as the usage line "[<addr> ...] [flags]" promises. Kong fills a
// positional slice from one run of values only: it stops at the first
// flag, and an address after the flag was "unexpected argument". Which
// token is a flag's value, kong's model says: a flag other than a bool or
// a counter takes the next one, unless it is given as --flag=value. A
// command whose positionals take one value each (connect, bench) needs
// none of this: kong reads their flags on either side of it. Past a "--"
// every token is positional, so the moved ones go after it.
func flagsFirst(app *kong.Application, args []string) []string {
	node, start, dashes := command(app, args)
	if n := len(node.Positional); dashes || n == 0 || !node.Positional[n-1].IsCumulative() {
		return args
	}
	out := append([]string(nil), args[:start]...)
	var positional []string
	for i := start; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			out = append(out, "--")
			out = append(out, positional...)
			return append(out, args[i+1:]...)
		case strings.HasPrefix(a, "-") && a != "-":
			if flagTakesNext(node, a) {
				if i+1 == len(args) { // its value is missing: the addresses are not it
					out = append(out, positional...)
					return append(out, a)
				}
				out = append(out, a, args[i+1])
				i++
				continue
			}
			out = append(out, a)
		default:
			positional = append(positional, a)
		}
	}
	return append(out, positional...)
}

// negativeNumber is a token that begins as a negative number does (-1,
// -5, -1s, -.5): no flag of shout's is named so.
var negativeNumber = regexp.MustCompile(`^-\.?[0-9]`)

// negativeValues returns args with a negative number after a long flag
// that takes a value joined to it (--conns -1 is --conns=-1), so that
// the flag's own check says what it takes: "--conns must be at least 1".
// Kong read the number as a short flag and said `--conns: expected int
// value but got "-1" (short flag); perhaps try --conns="-1"?`, which,
// tried, gave that check's message. Past a "--" nothing is a flag.
func negativeValues(app *kong.Application, args []string) []string {
	node, _, _ := command(app, args)
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			return append(out, args[i:]...)
		case !flagTakesNext(node, a) || i+1 == len(args):
			out = append(out, a)
		case strings.HasPrefix(a, "--") && negativeNumber.MatchString(args[i+1]):
			out = append(out, a+"="+args[i+1])
			i++
		default: // its value, whatever it is, is no flag
			out = append(out, a, args[i+1])
			i++
		}
	}
	return out
}

// command finds the command args name (shout serve), skipping the flags
// before it and their values: its node (shout's own if none), where its
// arguments start, and whether a "--" came before the search ended.
func command(app *kong.Application, args []string) (node *kong.Node, start int, dashes bool) {
	node = app.Node
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return node, start, true
		}
		if strings.HasPrefix(a, "-") && a != "-" {
			if flagTakesNext(node, a) {
				i++
			}
			continue
		}
		child := subcommand(node, a)
		if child == nil {
			break
		}
		node, start = child, i+1
	}
	return node, start, false
}

// subcommand is node's command called name, or nil.
func subcommand(node *kong.Node, name string) *kong.Node {
	for _, c := range node.Children {
		if c.Type == kong.CommandNode && (c.Name == name || slices.Contains(c.Aliases, name)) {
			return c
		}
	}
	return nil
}

// flagTakesNext says whether a, a flag of node or of its parents as on
// the command line (--name, --name=value, -v, -abc), takes the token
// after it as its value. An unknown flag takes none: kong reports it.
func flagTakesNext(node *kong.Node, a string) bool {
	takes := func(f *kong.Flag) bool { return !f.Value.IsBool() && !f.Value.IsCounter() }
	if !strings.HasPrefix(a, "-") { // no flag: "" too, which a[1:] below cut past its end
		return false
	}
	if name, ok := strings.CutPrefix(a, "--"); ok {
		if strings.Contains(name, "=") {
			return false
		}
		f := findFlag(node, func(f *kong.Flag) bool { return f.Name == name || slices.Contains(f.Aliases, name) })
		return f != nil && takes(f)
	}
	for i, r := range a[1:] { // -abc: flags a, b and c, or a's value bc
		f := findFlag(node, func(f *kong.Flag) bool { return f.Short == r })
		if f == nil {
			return false
		}
		if takes(f) {
			return i+utf8.RuneLen(r) == len(a)-1 // nothing after it in a
		}
	}
	return false
}

// findFlag is the first flag of node or its parents that match accepts.
func findFlag(node *kong.Node, match func(*kong.Flag) bool) *kong.Flag {
	for n := node; n != nil; n = n.Parent {
		for _, f := range n.Flags {
			if match(f) {
				return f
			}
		}
	}
	return nil
}

// helpCmd is shout help [command]: what many command lines (go, git)
// take for help, and what a user who does not know the flag types first.
type helpCmd struct {
	Command []string `arg:"" optional:"" predictor:"command" help:"The command whose help to print."`
}

func (h *helpCmd) Run(std *stdio, kctx *kong.Context) error {
	if names := commandNames(kctx.Model); len(h.Command) > 1 && slices.Contains(names, h.Command[0]) {
		// shout help serve connect printed serve's help alone, connect
		// taken as an address and left unsaid. (An unknown first is
		// said so by the run below.)
		if slices.Contains(names, h.Command[1]) {
			return usagef("help takes one command, and %q is a second: shout help %s, then shout help %s", h.Command[1], h.Command[0], h.Command[1])
		}
		return usagef("help takes one command, and nothing after it (%q): shout help %s", h.Command[1], h.Command[0])
	}
	if code := run(std.ctx, append(slices.Clip(h.Command), "--help"), std.stdin, std.stdout, std.stderr); code != 0 {
		return &exitError{code: code}
	}
	return nil
}

// helpPredictor completes shout help's one command, and nothing after
// it: a second is a usage error (helpCmd.Run).
func helpPredictor(names []string) complete.Predictor {
	return complete.PredictFunc(func(a complete.Args) []string {
		if a.LastCompleted != "help" {
			return nil
		}
		return names
	})
}

// commandNames are shout's commands, which shout help completes.
func commandNames(app *kong.Application) []string {
	var names []string
	for _, c := range app.Children {
		if c.Type == kong.CommandNode && !c.Hidden {
			names = append(names, c.Name)
		}
	}
	return names
}

// helpFor is the command whose help a usage error in args points to:
// the command args name ("shout serve"), or shout's own.
func helpFor(app *kong.Application, args []string) string {
	if node, _, _ := command(app, args); node != app.Node {
		return "shout " + node.Name
	}
	return "shout"
}

// decimalInts reads every int flag, and its variable, in decimal, as
// durations and ports are read. Kong's own reading takes Go's literal
// prefixes: --max-conns 010 was 8 (octal), --conns 0x10 sixteen. Digits
// may still be grouped with underscores, as Go's literals and --rate
// take them (1_000).
func decimalInts() kong.Option {
	return kong.TypeMapper(reflect.TypeFor[int](), kong.MapperFunc(func(ctx *kong.DecodeContext, target reflect.Value) error {
		var s string
		if err := ctx.Scan.PopValueInto("int", &s); err != nil {
			return err
		}
		// Leading zeros dropped, base 0 reads decimal: it takes the
		// underscores, and no prefix is left to take (x10 is no number).
		sign, digits := "", s
		if s != "" && (s[0] == '+' || s[0] == '-') {
			sign, digits = s[:1], s[1:]
		}
		if trimmed := strings.TrimLeft(digits, "0"); trimmed != digits {
			digits = cmp.Or(trimmed, "0")
		}
		n, err := strconv.ParseInt(sign+digits, 0, strconv.IntSize)
		switch {
		case errors.Is(err, strconv.ErrRange) && strings.HasPrefix(s, "-"):
			return fmt.Errorf("%s is less than %d", s, math.MinInt)
		case errors.Is(err, strconv.ErrRange):
			return fmt.Errorf("%s is more than %d", s, math.MaxInt)
		case err != nil:
			return fmt.Errorf("expected a whole number (in decimal) but got %q", s)
		}
		target.SetInt(n)
		return nil
	}))
}

// numbers reads every float flag (--rate), and its variable, as kong
// does, but says in words what a value that is no number is: kong said
// `expected a float but got "abc" (string)`, Go's names for the types.
func numbers() kong.Option {
	return kong.TypeMapper(reflect.TypeFor[float64](), kong.MapperFunc(func(ctx *kong.DecodeContext, target reflect.Value) error {
		var s string
		if err := ctx.Scan.PopValueInto("number", &s); err != nil {
			return err
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil && !errors.Is(err, strconv.ErrRange) { // out of range is ±Inf, which the command refuses
			return fmt.Errorf("expected a number, such as 1000 or 2.5, but got %q", s)
		}
		target.SetFloat(f)
		return nil
	}))
}

// durations reads every duration flag, and its variable, as kong does,
// but says in words what is wrong with a value that is none (see
// durationError): kong said `expected duration but got "abc": time:
// invalid duration "abc"`. An empty value is no duration, as an empty
// count is no number: only a flag whose value is a string (--admin,
// --history) takes "" for its default.
func durations() kong.Option {
	return kong.TypeMapper(reflect.TypeFor[time.Duration](), kong.MapperFunc(func(ctx *kong.DecodeContext, target reflect.Value) error {
		var s string
		if err := ctx.Scan.PopValueInto("duration", &s); err != nil {
			return err
		}
		if s == "" {
			return errors.New("needs a duration, such as 2s, 500ms or 1m30s")
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			return durationError(s)
		}
		target.SetInt(int64(d))
		return nil
	}))
}

var (
	// bareNumber is a duration given without its unit.
	bareNumber = regexp.MustCompile(`^[-+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)$`)
	// durationPart is a number and its unit, as Go's durations are
	// made of (1h30m): the unit may be one Go does not know.
	durationPart = regexp.MustCompile(`([0-9]+(?:\.[0-9]*)?|\.[0-9]+)([^0-9.]+)`)
)

// durationError says what is wrong with s, which time.ParseDuration did
// not take, in words and with the value once: Go's errors name their
// package and the value again ("time: missing unit in duration \"10\""),
// and say "invalid" of a duration longer than it holds as of "abc". A
// bare number is most likely seconds (--duration 10, as wrk's -d and
// ncat's -w take them): it says so.
func durationError(s string) error {
	q := strconv.Quote(s)
	if bareNumber.MatchString(s) {
		if strings.HasPrefix(s, "-") { // no duration to mean: none may be negative
			return fmt.Errorf("%s has no unit, such as 2s, 500ms or 1m30s", q)
		}
		return fmt.Errorf("%s has no unit: did you mean %ss?", q, strings.TrimPrefix(s, "+"))
	}
	rest := s
	if rest != "" && strings.ContainsRune("-+", rune(rest[0])) { // one sign, as Go takes: "--1s" is none
		rest = rest[1:]
	}
	parts := durationPart.FindAllStringSubmatch(rest, -1)
	var whole strings.Builder
	known := true
	for _, p := range parts {
		whole.WriteString(p[0])
		switch p[2] {
		case "ns", "us", "µs", "μs", "ms", "s", "m", "h":
		default:
			known = false
		}
	}
	switch {
	case rest == "" || whole.String() != rest:
		return fmt.Errorf("%s is not a duration, such as 2s, 500ms or 1m30s", q)
	case !known:
		return fmt.Errorf("%s is not a duration: its units are ns, us, ms, s, m and h", q)
	}
	return fmt.Errorf("%s is too long: at most %v", q, time.Duration(math.MaxInt64)) // what is left to fail
}

// fileName is a flag's file name, ~ expanded as kong's path type does;
// but an empty one is refused, where kong's path takes it for the current
// directory (and --html= failed as "open /the/dir: is a directory").
type fileName string

func (f *fileName) Decode(ctx *kong.DecodeContext) error {
	var s string
	if err := ctx.Scan.PopValueInto("file name", &s); err != nil {
		return err
	}
	if s == "" {
		return errors.New("needs a file name")
	}
	*f = fileName(kong.ExpandPath(s))
	return nil
}

// flagFirst is the flag a usage error begins with ("--mode must be ...").
var flagFirst = regexp.MustCompile(`^--([a-z][a-z0-9-]*)\b`)

// missingValue is kong's error for a flag whose value was forgotten:
// last on the line, --admin: expected string value but got "EOL"
// (<EOL>); or before another flag, --mode: expected string value but got
// "--verbose" (long flag); perhaps try --mode="--verbose"?
var missingValue = regexp.MustCompile(`^(--[a-z0-9-]+): expected [a-z0-9 ]*value but got "(EOL" \(<EOL>\)|(--?[a-z][a-z0-9-]*)" \((?:long|short) flag\).*)$`)

// noValue says kong's error for a flag without its value in words:
// --admin needs a value. A value that begins with "-" and is no flag of
// the command's (--history -old) keeps kong's hint, --history="-old",
// which is how to give one (a negative number never gets here: see
// negativeValues).
func noValue(app *kong.Application, args []string, msg string) string {
	m := missingValue.FindStringSubmatch(msg)
	switch {
	case m == nil:
		return msg
	case m[3] != "":
		node, _, _ := command(app, args)
		if !isFlag(node, m[3]) {
			return msg
		}
		return m[1] + " needs a value, not the flag " + m[3]
	default:
		return m[1] + " needs a value"
	}
}

// isFlag reports whether a, as given (--name, -n), is a flag of node
// or its parents.
func isFlag(node *kong.Node, a string) bool {
	if name, ok := strings.CutPrefix(a, "--"); ok {
		return findFlag(node, func(f *kong.Flag) bool { return f.Name == name || slices.Contains(f.Aliases, name) }) != nil
	}
	r, size := utf8.DecodeRuneInString(strings.TrimPrefix(a, "-"))
	return size == len(a)-1 && findFlag(node, func(f *kong.Flag) bool { return f.Short == r }) != nil
}

// unknownFlag is kong's error for a flag that no command up to it knows.
var unknownFlag = regexp.MustCompile(`^unknown flag (--?[a-zA-Z][a-z0-9-]*)`)

// misplaced says where a flag goes that args give before the command
// that takes it (shout --mode echo serve, shout -v serve): kong said
// only that shout does not know it.
func misplaced(app *kong.Application, args []string, msg string) string {
	m := unknownFlag.FindStringSubmatch(msg)
	if m == nil {
		return msg
	}
	at := slices.IndexFunc(args, func(a string) bool { return a == m[1] || strings.HasPrefix(a, m[1]+"=") })
	if node, start, _ := command(app, args); at < 0 || (node != app.Node && at >= start) {
		return msg // after its command, which does not know it either
	}
	var in []string
	for _, c := range app.Children {
		if c.Type == kong.CommandNode && isFlag(c, m[1]) { // (its parent, shout, does not know it)
			in = append(in, "shout "+c.Name+" "+m[1])
		}
	}
	if len(in) == 0 {
		return msg
	}
	return "unknown flag " + m[1] + " before the command: it goes after one that takes it (" + strings.Join(in, ", ") + ")"
}

// peerFlags are the one-letter flags that the tools people know a
// command from (wrk, hey, ab; nc) give what shout spells otherwise: what
// to type for each, by command.
var peerFlags = map[string]map[string]string{
	"bench": {
		"-c": `did you mean "--conns"? (wrk's and hey's -c)`,
		"-d": `did you mean "--duration"? (wrk's -d; with a unit: 10s)`,
		"-z": `did you mean "--duration"? (hey's -z)`,
		"-R": `did you mean "--rate"? (wrk2's -R)`,
		"-n": `bench runs for --duration, not for a count of messages (ab's and hey's -n)`,
	},
	"connect": {
		"-u": `UDP is said in the address: udp://127.0.0.1:8080 (nc's -u)`,
	},
	"serve": {
		"-p": `the port is in the address, an argument: shout serve 9000 (on 127.0.0.1), or HOST:9000`,
		"-l": `serve listens without one (nc's -l); the address is an argument: shout serve 9000`,
		"-u": `an address without a scheme is served over TCP and UDP; udp://HOST:PORT is UDP alone (nc's -u)`,
	},
}

// unknownShort is kong's error for an unknown one-letter flag.
var unknownShort = regexp.MustCompile(`^unknown flag (-[^-])(?:,|$)`)

// shortFlag says what an unknown one-letter flag of a command is in
// shout, where a peer tool has it (shout bench -c 100 -d 10s): kong
// offered the flags within two edits of it, which for one letter is any
// other letter and any four-letter flag (-c: "-h", "--ca"). Otherwise
// it offers only the same letter in the other case (-V: "-v").
func shortFlag(app *kong.Application, args []string, msg string) string {
	m := unknownShort.FindStringSubmatch(msg)
	if m == nil {
		return msg
	}
	node, start, _ := command(app, args)
	flag := m[1]
	at := slices.IndexFunc(args, func(a string) bool { // -c, -c100, -vc
		return strings.HasPrefix(a, "-") && !strings.HasPrefix(a, "--") && strings.Contains(a, flag[1:])
	})
	if node == app.Node || at < start {
		return msg // no command, or before it: misplaced's
	}
	if hint, ok := peerFlags[node.Name][flag]; ok {
		return "unknown flag " + flag + ": " + hint
	}
	other := strings.ToLower(flag)
	if other == flag {
		other = strings.ToUpper(flag)
	}
	if isFlag(node, other) {
		return fmt.Sprintf("unknown flag %s, did you mean %q?", flag, other)
	}
	return "unknown flag " + flag
}

// missingArg is kong's error for a command's argument left out.
var missingArg = regexp.MustCompile(`^expected "<([a-z-]+)>"$`)

// noArg says what a command's argument left out is, with the values it
// takes (shout completion: which shell): kong said only `expected
// "<shell>"`.
func noArg(app *kong.Application, args []string, msg string) string {
	m := missingArg.FindStringSubmatch(msg)
	if m == nil {
		return msg
	}
	node, _, _ := command(app, args)
	for _, p := range node.Positional {
		if p.Name == m[1] {
			return fmt.Sprintf("%s needs its <%s> argument: %s", node.Name, p.Name, strings.TrimSuffix(p.Help, "."))
		}
	}
	return msg
}

// noCommand says what a first argument that names no command is: kong
// said "unexpected argument nosuch", as of an argument one too many (of
// an address too: shout 127.0.0.1:8080, or a URL pasted whole, for which
// the address in it is offered, with what serve needs for TLS; one
// without its port, shout tcp://localhost, with serve's default port, and
// host and port apart, shout 127.0.0.1 8080, joined, and a host name,
// shout example.com, where each was an "unknown command"; socat's
// listener, TCP-LISTEN:8080, for serve alone).
// One close to a command's name
// kong says itself: "unexpected argument servee, did you mean "serve"?".
// An empty one kong named as nothing, "unexpected argument , did you
// mean one of" every command, or "unexpected argument " after one.
func noCommand(app *kong.Application, args []string, msg string) string {
	m := unexpectedArg.FindStringSubmatch(msg)
	empty := msg == "unexpected argument " || strings.HasPrefix(msg, "unexpected argument , did you mean one of ")
	if m == nil && !empty {
		return msg
	}
	if node, _, _ := command(app, args); node != app.Node {
		if empty {
			return `unexpected argument "" (an empty one)`
		}
		return msg
	}
	name := `""`
	if !empty {
		name = m[1]
	}
	addr, said, how, note := name, name, "", ""
	eps, err := endpoint.Parse(name, "tcp")
	if err != nil {
		addr = endpoint.Meant(err) // a URL pasted whole: the address in it (one Parse takes)
	}
	if addr == "" && !empty {
		// Its port typed after another mark, or an IPv6 address's
		// without brackets (127.0.0.1：9000, ::1:9000).
		var mark string
		switch addr, mark = portTyped(name); mark {
		case "":
		case ":":
			how = ", an IPv6 address in brackets"
		default:
			how = `, its port after ":"`
		}
	}
	if at := slices.Index(args, name); addr == "" && !empty && at >= 0 && at+1 < len(args) {
		// Host and port apart, as nc takes them (shout 127.0.0.1 8080).
		if addr = hostAndPort(name, args[at+1]); addr != "" {
			said, how = name+" "+args[at+1], ", host and port in one argument"
		}
	}
	if port := servePort(app); addr == "" && port != "" && noPort(name) {
		// An address that lacks its port (shout tcp://localhost): serve's.
		if addr = withPort(name, port); addr != "" {
			how, note = ", with its port", "; "+port+" is serve's default"
		}
	}
	if addr != "" {
		eps, _ = endpoint.Parse(addr, "tcp")
	}
	// A tls:// address shout serve refuses without a certificate
	// (https://…/ offers one): what it needs is said.
	needs := func(eps []endpoint.Endpoint, sep string) string {
		if len(eps) > 0 && eps[0].TLS {
			return " --tls-self-signed, or with --cert and --key;"
		}
		return sep
	}
	if addr != "" {
		return fmt.Sprintf("%s is no command: an address goes after one%s (shout serve %s%s shout connect %s%s)", said, how, addr, needs(eps, ","), addr, note)
	}
	// A listener's in socat's syntax (TCP-LISTEN:8080) is serve's alone.
	if every, local := endpoint.Listener(err); local != "" {
		eps, _ = endpoint.Parse(local)
		return fmt.Sprintf("%s is no command: a listener's address goes after serve (shout serve %s%s %s listens on every interface, as socat does)", name, local, needs(eps, ";"), every)
	}
	names := commandNames(app)
	return fmt.Sprintf("unknown command %s: the commands are %s and %s", name, strings.Join(names[:len(names)-1], ", "), names[len(names)-1])
}

// unexpectedArg is kong's error for a positional argument too many.
var unexpectedArg = regexp.MustCompile(`^unexpected argument (\S+)$`)

// splitAddress says what to type where args give an address as nc and
// telnet take it, host and port apart (shout connect 127.0.0.1 8080):
// kong said only that the port was one argument too many.
func splitAddress(app *kong.Application, args []string, msg string) string {
	m := unexpectedArg.FindStringSubmatch(msg)
	if m == nil {
		return msg
	}
	node, start, _ := command(app, args)
	// The argument kong meant, not a flag's value that is the same
	// (bench --conns 8 127.0.0.1 8), nor the command's first argument.
	at := start + 1
	for at < len(args) && (args[at] != m[1] || flagTakesNext(node, args[at-1])) {
		at++
	}
	if at >= len(args) {
		return msg
	}
	host := args[at-1]
	if strings.HasPrefix(host, "-") || (at-2 >= start && flagTakesNext(node, args[at-2])) {
		return msg // a flag, or a flag's value: no host
	}
	if a := hostAndPort(host, m[1]); a != "" {
		return msg + ": " + oneArgument(a)
	}
	return msg
}

// hostAndPort is the address meant by host and port typed as two
// arguments, or "" if host is a whole address already (8080 9090 are two
// ports) or port is no port.
func hostAndPort(host, port string) string {
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return ""
	}
	if _, err := endpoint.Parse(host, "tcp"); err == nil {
		return ""
	}
	return withPort(host, port)
}

// withPort is the address host, one without its port (127.0.0.1, ::1,
// [::1], tcp://localhost), with port: the one Parse takes, or offers for
// it (a URL's user left out: tcp://user@127.0.0.1), or "". Only an IPv6
// address goes in brackets: a user's password was offered as a host in
// them, [user:secret@127.0.0.1]:1, a name no lookup finds.
func withPort(host, port string) string {
	scheme, rest, ok := strings.Cut(host, "://")
	if !ok {
		rest = host
	}
	h := unbracketed(rest) // ::1 and [::1] alike
	a := h + ":" + port
	if ip, err := netip.ParseAddr(h); err == nil && ip.Is6() {
		a = net.JoinHostPort(h, port)
	}
	if ok {
		a = scheme + "://" + a
	}
	if strings.HasPrefix(a, "-") {
		return "" // taken for a flag (-:8080), were it typed: connect - is no host
	}
	_, err := endpoint.Parse(a, "tcp")
	if err != nil {
		return endpoint.Meant(err)
	}
	return a
}

// noPort says whether s, typed where a command goes, is an address
// without its port, not a word mistyped: one with a scheme (tcp://…), an
// IP address (in brackets or not), localhost, or a host name with a dot
// (example.com). Another name (nosuch, a word) is said to be no command.
func noPort(s string) bool {
	if strings.Contains(s, "://") || strings.EqualFold(s, "localhost") {
		return true
	}
	_, err := netip.ParseAddr(unbracketed(s))
	return err == nil || hostName(s)
}

// hostName says whether s is a domain name of two labels or more, as a
// lookup takes it (IDNA's rules: letters, digits and hyphens, or
// Unicode letters, each label 63 bytes at most), with a last label that
// is not a number, as a top-level domain never is (1.2.3 is a mistyped
// address), and no file's here: shout notes.txt names a file, as a user
// who typed it sees (it was offered as notes.txt:8080).
func hostName(s string) bool {
	name := strings.TrimSuffix(s, ".") // the root's (host.example.)
	dot := strings.LastIndexByte(name, '.')
	if dot < 0 {
		return false
	}
	if _, err := strconv.Atoi(name[dot+1:]); err == nil {
		return false
	}
	if _, err := domainName.ToASCII(name); err != nil {
		return false
	}
	_, err := os.Lstat(s)
	return err != nil
}

// domainName is IDNA's lookup that also refuses an empty label or a
// long one (example..com).
var domainName = idna.New(idna.MapForLookup(), idna.VerifyDNSLength(true))

// unbracketed is host without the brackets an IPv6 address is typed in
// ([::1] is ::1).
func unbracketed(host string) string {
	return strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
}

// portMarks are what a port is typed after in place of ":": a Chinese
// input method's full-width colon and comma, a comma, a space (host and
// port quoted as one argument), a slash, a dot, an underscore.
const portMarks = "：，, /._"

// portTyped is the address meant by s, one whose port Parse did not find
// where it was typed, and the mark typed before the port: an IPv6
// address without brackets whose last group reads as a port (::1:9000,
// mark ":"), which Parse's error offers beside the whole one
// ([::1:9000]:PORT), as a learner who typed it as 127.0.0.1:9000 is
// typed meant it; or an IP address or localhost, then one of portMarks
// and a port (127.0.0.1：9000); or "" and the mark where the port after
// it is past 65535 (127.0.0.1：70000). Else "", "".
func portTyped(s string) (meant, mark string) {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		rest = s
	}
	with := func(host, port string) string {
		if _, err := strconv.ParseUint(port, 10, 16); err != nil {
			return ""
		}
		a := net.JoinHostPort(unbracketed(host), port)
		if ok {
			a = scheme + "://" + a
		}
		if _, err := endpoint.Parse(a, "tcp"); err != nil {
			return ""
		}
		return a
	}
	if i := strings.LastIndexByte(rest, ':'); i >= 0 {
		if ip, err := netip.ParseAddr(rest[:i]); err == nil && ip.Is6() {
			if a := with(rest[:i], rest[i+1:]); a != "" {
				return a, ":"
			}
		}
	}
	if i := strings.LastIndexAny(rest, portMarks); i > 0 {
		_, size := utf8.DecodeRuneInString(rest[i:])
		host, port := rest[:i], rest[i+size:]
		if _, err := netip.ParseAddr(unbracketed(host)); err == nil || strings.EqualFold(host, "localhost") {
			if a := with(host, port); a != "" {
				return a, rest[i : i+size]
			}
			if _, err := strconv.ParseUint(port, 10, 16); errors.Is(err, strconv.ErrRange) {
				return "", rest[i : i+size] // a port past the highest: none to offer
			}
		}
	}
	return "", ""
}

// portOffered is err, Parse's for addr, as a usage error, offering the
// address meant where its port was typed after another mark than ":"
// (portTyped), or saying the port typed so is past the highest; or, where addr lacks its port and Parse offered no
// address for it, addr with port, serve's default. An IPv6 address
// without brackets (::1:9000) is offered neither: Parse's error names
// both its readings. An address is offered only if takes, the command's
// own check, takes it.
func portOffered(err error, addr, port string, takes func(addr string) bool) error {
	return usagef("%s%s", flagText(err), portHint(err, addr, port, takes))
}

// portHint is what portOffered says after err: "; did you mean …?", or
// "". Where takes refuses the address meant (connect's port 0, serve's
// address given twice), what is wrong is said without it.
func portHint(err error, addr, port string, takes func(addr string) bool) string {
	switch meant, mark := portTyped(addr); {
	case mark == ":":
	case meant != "":
		if !takes(meant) {
			return fmt.Sprintf("; a port goes after \":\", not %q", mark)
		}
		return fmt.Sprintf("; a port goes after \":\", not %q: did you mean %q?", mark, meant)
	case mark != "":
		port := addr[strings.LastIndex(addr, mark)+len(mark):]
		return fmt.Sprintf("; a port goes after \":\", not %q, and %s is past 65535, the highest port", mark, port)
	case port != "" && endpoint.Meant(err) == "":
		if meant := withPort(addr, port); meant != "" && takes(meant) {
			return fmt.Sprintf("; serve's default port is %s: did you mean %q?", port, meant)
		}
	}
	return ""
}

// servePort is the port of shout serve's default address, which a hint
// offers where an address has none: "" if it has none.
func servePort(app *kong.Application) string {
	if serve := subcommand(app.Node, "serve"); serve != nil && len(serve.Positional) > 0 {
		if _, port, err := net.SplitHostPort(serve.Positional[0].Default); err == nil {
			return port
		}
	}
	return ""
}

// oneArgument is the hint for an address typed as host and port apart.
func oneArgument(addr string) string {
	return "host and port go in one argument: did you mean " + addr + "?"
}

// kongEnvar is how kong names the variable a bad value came from, the
// value again after the error that quotes it: (from envar
// SHOUT_MAX_CONNS="abc").
var kongEnvar = regexp.MustCompile(`\(from envar ([A-Za-z0-9_]+)="(?:[^"\\]|\\.)*"\)`)

// fromEnvar adds to msg, a usage error about a flag of shout serve, the
// environment variable the value came from (the flag's own, as kong
// knows it), when the command line args did not give the flag: a
// manifest sets SHOUT_MODE, and the error said only "--mode". Kong's own
// "(from envar SHOUT_MODE=\"foo\")" it says so too.
func fromEnvar(k *kong.Kong, args []string, msg string) string {
	if said := kongEnvar.ReplaceAllString(msg, "(from $1)"); said != msg { // kong's own say so, in its words
		return said
	}
	m := flagFirst.FindStringSubmatch(msg)
	if m == nil || len(args) == 0 || args[0] != "serve" {
		return msg
	}
	for _, a := range args {
		if a == "--" {
			break
		}
		if a == "--"+m[1] || strings.HasPrefix(a, "--"+m[1]+"=") {
			return msg // given on the command line
		}
	}
	for _, n := range k.Model.Children {
		if n.Name != "serve" {
			continue
		}
		for _, f := range n.Flags { // serve's own: those serveEnvars gave variables
			if f.Name != m[1] {
				continue
			}
			for _, env := range f.Envs {
				if _, ok := os.LookupEnv(env); ok {
					return msg + " (from " + env + ")"
				}
			}
		}
	}
	return msg
}
