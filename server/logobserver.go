package server

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// logPrefix is how much of each message is logged at debug level.
const logPrefix = 96

// NewLogObserver returns the Observer that logs to l: each connection's
// open and close at info level, each message and datagram at debug level
// (escaped, and cut to 96 bytes at the start of a character), and
// rejected connections, failed TLS handshakes, refused PROXY headers and
// dropped or unanswered datagrams as warnings, at most once a second for
// each reason (for a rejection, each limit), with a running total, and a
// line for those held back a second after, or when the server stops (a
// reply the stop closed the socket under, at info level). It is a
// StopObserver. Its records carry no source position (a handler
// with AddSource leaves it out): it would name this file for every line.
// A rejection's "why" and a failed handshake's "err" are the error itself
// (ErrMaxConns, ErrMaxConnsPerIP), so that a handler's ReplaceAttr can name
// the setting it names as its program does; a handler that encodes values
// as JSON gets its text.
func NewLogObserver(l *slog.Logger) Observer {
	return &logObserver{h: l.Handler()}
}

// warnPerIP is the limiter of connections rejected at MaxConnsPerIP;
// ReasonRejected's is of those at MaxConns. Each limit has its lines and
// count of its own: one line a second for both, and one for those held
// back with a single count, left an operator unable to tell which limit
// turned clients away, and how many each.
const (
	warnPerIP = numReasons
	numWarns  = numReasons + 1
)

// rejectedWarn is the limiter of a connection rejected for why, and
// rejectedWhy the limit a limiter is of.
func rejectedWarn(why error) Reason {
	if errors.Is(why, ErrMaxConnsPerIP) {
		return warnPerIP
	}
	return ReasonRejected
}

func rejectedWhy(warn Reason) error {
	if warn == warnPerIP {
		return ErrMaxConnsPerIP
	}
	return ErrMaxConns
}

type logObserver struct {
	h     slog.Handler // the Logger's, which each line goes to as a Record
	warns [numWarns]limiter
	local atomic.Pointer[addrMemo] // the last open line's local address
}

// addrMemo is a TCP address's text, kept so that it is formatted once
// where it repeats: the local address, which connections to one listener
// share, in every open line (logObserver.local); remoteMemo is its
// smaller kin for a connection's remote address. Formatting was 9 of the
// 11 allocations of a connection served with the default log lines
// (BenchmarkChurn). It keeps the address's value, not the caller's
// *net.TCPAddr: an Observer's pointers are valid only during the call,
// and a driver of the caller's may change one in place for its next
// connection, or while another loop's line reads it.
type addrMemo struct {
	key addrKey
	s   string // the text; "" if none is kept (a TCP address's never is)
}

// addrKey is a TCP address's value, which its text is made from.
type addrKey struct {
	ip   netip.Addr // 4 bytes or 16 (an IPv4-mapped address), or none
	port int
	zone string
}

// keyOf is t's value, if it can be kept: an IP of neither length has none.
func keyOf(t *net.TCPAddr) (addrKey, bool) {
	ip, ok := netip.AddrFromSlice(t.IP)
	return addrKey{ip, t.Port, t.Zone}, ok || len(t.IP) == 0
}

// v4InV6Prefix is how an IPv4-mapped IPv6 address begins.
const v4InV6Prefix = "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\xff\xff"

// remoteMemo is a connection's remote address's text (ConnInfo.remote),
// formatted once for its open and close lines. It is in every idle
// connection, so it keeps an IPv4 address's value in 8 bytes rather than
// addrMemo's 48 (which took the event-loop driver's lconn from the
// 256-byte size class to the 352-byte one: BENCHMARKS.md, stop 58); any
// other address is formatted for each line, as before the memo.
type remoteMemo struct {
	s string
	k uint64 // v4Key of the address s was made from; 0 if none
}

// v4Key is t's value if it is an IPv4 address (4 bytes, or 16 mapped,
// whose text is the same) with no zone and a port in range, and 0
// otherwise.
func v4Key(t *net.TCPAddr) uint64 {
	ip := t.IP
	if len(ip) == net.IPv6len && string(ip[:12]) == v4InV6Prefix {
		ip = ip[12:] // as To4, without its byte-by-byte look
	}
	if len(ip) != net.IPv4len || t.Zone != "" || t.Port < 0 || t.Port > 0xffff {
		return 0
	}
	return 1<<48 | uint64(ip[0])<<40 | uint64(ip[1])<<32 | uint64(ip[2])<<24 | uint64(ip[3])<<16 | uint64(t.Port)
}

// text is a's text, from m if m was made from an equal address. Only a
// *net.TCPAddr is kept: another Addr (a Unix socket's, or whatever a
// net.Listener of the caller's returns) may not even be comparable.
func (m *remoteMemo) text(a net.Addr) string {
	t, ok := a.(*net.TCPAddr)
	if !ok || t == nil {
		return addrText(a)
	}
	k := v4Key(t)
	if k == 0 {
		return tcpText(t)
	}
	if m.k != k {
		*m = remoteMemo{tcpText(t), k}
	}
	return m.s
}

// tcpText is t.String(): netip's formatting for an IPv4 address, one
// allocation where net's is three (the host, the port, the two joined);
// net's for any other, whose text the two may write differently (an
// IPv4-mapped IPv6 address, a zone, a port out of range).
func tcpText(t *net.TCPAddr) string {
	if len(t.IP) == net.IPv4len && t.Zone == "" && t.Port >= 0 && t.Port <= 0xffff {
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(t.IP)), uint16(t.Port)).String()
	}
	return t.String()
}

// localText is a's text. A listener's connections share its address (a
// wildcard's, one of the host's): kept from the last open line, and
// compared by value, as each connection of the goroutine driver, or of a
// wildcard listener, has an address of its own.
func (o *logObserver) localText(a net.Addr) string {
	if a == nil {
		return "" // a net.Conn of the caller's that has none
	}
	t, ok := a.(*net.TCPAddr)
	if !ok || t == nil {
		return a.String()
	}
	k, ok := keyOf(t)
	if !ok {
		return tcpText(t)
	}
	if m := o.local.Load(); m != nil && m.key == k {
		return m.s
	}
	m := &addrMemo{k, tcpText(t)}
	o.local.Store(m)
	return m.s
}

// infoOn reports whether o's handler takes info lines: the open and
// close lines are not made otherwise.
func (o *logObserver) infoOn() bool {
	return o.h.Enabled(context.Background(), slog.LevelInfo)
}

// info hands o's handler an info record of msg at t, as a Logger's LogAttrs would
// once infoOn has said yes, but without the caller's program counter:
// asking the runtime for it costs more than the rest of an open line, and
// only a handler that adds the source reads it. A client that connects
// and leaves pays for two lines.
func (o *logObserver) info(t time.Time, msg string, attrs ...slog.Attr) {
	r := slog.NewRecord(t, slog.LevelInfo, msg, 0)
	r.AddAttrs(attrs...)
	_ = o.h.Handle(context.Background(), r) // as Logger's methods do, a handler's error is dropped
}

// log logs msg at level with args (key and value pairs), as a Logger's
// Log would, but without the caller's program counter, as info does: a
// source position would name this file for every line.
func (o *logObserver) log(level slog.Level, msg string, args ...any) {
	ctx := context.Background()
	if !o.h.Enabled(ctx, level) {
		return
	}
	r := slog.NewRecord(time.Now(), level, msg, 0)
	r.Add(args...)
	_ = o.h.Handle(ctx, r)
}

func (o *logObserver) ConnOpen(c *ConnInfo) {
	if !o.infoOn() {
		return
	}
	if c.TLS == nil {
		o.info(time.Now(), "open", slog.String("remote", c.remote.text(c.Remote)), slog.String("local", o.localText(c.Local)))
		return
	}
	attrs := []any{"remote", c.remote.text(c.Remote), "local", o.localText(c.Local), "tls", tls.VersionName(c.TLS.Version)}
	if len(c.TLS.PeerCertificates) > 0 {
		// The subject is the client's to write (an authority signed it,
		// but chose none of its characters for safety): escaped as its
		// data is, since JSON escapes no C1 control or bidi override.
		attrs = append(attrs, "client_cert", Escape([]byte(c.TLS.PeerCertificates[0].Subject.String())))
	}
	o.log(slog.LevelInfo, "open", attrs...)
}

func (o *logObserver) ConnRead(c *ConnInfo, p []byte) {
	if o.h.Enabled(context.Background(), slog.LevelDebug) {
		o.log(slog.LevelDebug, "message", append([]any{"remote", addrText(c.Remote), "bytes", len(p)}, dataAttrs(p)...)...)
	}
}

// dataAttrs are the attributes that show p at debug level: its first
// logPrefix bytes, cut at the start of a character and escaped, and how
// many bytes that leaves out, if any.
func dataAttrs(p []byte) []any {
	n := charCut(p, logPrefix)
	if n == len(p) {
		return []any{"data", Escape(p)}
	}
	return []any{"data", Escape(p[:n]), "more", len(p) - n}
}

// charCut is where to cut p to show at most limit bytes of it: limit, or
// fewer so as not to split a character (its first byte alone would read
// as a byte that is not UTF-8, which the client did not send).
func charCut(p []byte, limit int) int {
	if len(p) <= limit {
		return len(p)
	}
	n := limit
	for i := 0; i < utf8.UTFMax-1 && n > 0 && !utf8.RuneStart(p[n]); i++ {
		n--
	}
	return n
}

func (o *logObserver) ConnClose(c *ConnInfo) {
	if c.Reason.wrap() && errors.Is(c.Err, ErrServerClosed) {
		return // a handshake the stop cut short: no failure, and never opened
	}
	switch c.Reason {
	case ReasonRejected:
		if ok, n := o.warned(rejectedWarn(c.Err)); ok {
			o.log(slog.LevelWarn, "connection rejected", "remote", addrText(c.Remote), "why", logErr{c.Err}, "rejected_total", n)
		}
		return
	case ReasonProxyHeader:
		// Anyone who can connect can send a bad header: at most once a
		// second, with the count.
		if ok, n := o.warned(c.Reason); ok {
			o.log(slog.LevelWarn, "PROXY header refused", "remote", addrText(c.Remote), "reason", c.Reason.String(), "err", errText(unwrapped(c.Err)), "total", n)
		}
		return
	case ReasonHandshake:
		// Anyone who can connect can fail one (a scanner, a plain-text
		// client in a loop): at most once a second, with the count, as a
		// bad PROXY header.
		if ok, n := o.warned(c.Reason); ok {
			o.log(slog.LevelWarn, "TLS handshake failed", "remote", addrText(c.Remote), "reason", c.Reason.String(), "err", logErr{unwrapped(c.Err)}, "total", n)
		}
		return
	}
	if !o.infoOn() {
		return
	}
	attrs := [...]slog.Attr{slog.String("remote", c.remote.text(c.Remote)), slog.String("reason", c.Reason.String()),
		slog.Duration("duration", c.Duration().Round(time.Microsecond)), slog.Int64("bytes_in", c.BytesIn), slog.Int64("bytes_out", c.BytesOut),
		{}}
	n := len(attrs) - 1
	if c.Err != nil && (c.Reason == ReasonError || c.Reason == ReasonWrap) {
		attrs[n] = slog.String("err", c.Err.Error())
		n++
	}
	t := c.End // set just before: the connection has closed
	if t.IsZero() {
		t = time.Now()
	}
	o.info(t, "close", attrs[:n]...)
}

func (o *logObserver) Datagram(d *DatagramInfo) {
	if d.Reason == ReasonNone {
		if o.h.Enabled(context.Background(), slog.LevelDebug) {
			o.log(slog.LevelDebug, "datagram", append([]any{"remote", datagramRemote(d), "bytes", len(d.Data)}, dataAttrs(d.Data)...)...)
		}
		return
	}
	ok, n := o.warned(d.Reason)
	if !ok {
		return
	}
	attrs := []any{"reason", d.Reason.String(), "remote", datagramRemote(d), "bytes_in", len(d.Data), "bytes_out", d.BytesOut, "total", n}
	if d.Err != nil {
		attrs = append(attrs, "err", d.Err.Error())
	}
	o.log(datagramLevel(d.Reason), datagramMsg(d.Reason), attrs...)
}

// datagramRemote is where d came from, an IPv4 client by its IPv4
// address: a wildcard socket that takes IPv4 too reports it mapped into
// IPv6 ([::ffff:192.0.2.1]), where a TCP connection's log line has
// 192.0.2.1.
func datagramRemote(d *DatagramInfo) string {
	if !d.Remote.IsValid() {
		return d.Remote.String()
	}
	return unmapPort(d.Remote).String()
}

func datagramMsg(r Reason) string {
	if r == ReasonTooLarge || r == ReasonSendFailed || r == ReasonShutdown {
		return "reply not sent"
	}
	return "datagram dropped"
}

func datagramLevel(r Reason) slog.Level {
	if r == ReasonShutdown {
		return slog.LevelInfo // the stop closed the socket under it: no fault
	}
	return slog.LevelWarn
}

// warned counts one occurrence of r's warning and reports whether to log
// it now, with the total so far. If not, a line for all it held back
// follows a second after the last line (heldBack), so that the log's
// count does not stop where a burst's last logged line did.
func (o *logObserver) warned(r Reason) (bool, int64) {
	l := &o.warns[r]
	now := limiterNow()
	ok, n := l.allowAt(now)
	if ok {
		l.claim(n) // this line shows n
	} else if l.due.CompareAndSwap(false, true) {
		time.AfterFunc(time.Duration(l.last.Load()+int64(time.Second)-now), func() { o.heldBack(r) })
	}
	return ok, n
}

// heldBack logs how many of r's warnings were held back since its last
// line, with the total, unless none were or a line has told them since.
func (o *logObserver) heldBack(r Reason) {
	l := &o.warns[r]
	l.due.Store(false) // occurrences from now on are held for another line
	last := l.last.Load()
	if wait := last + int64(time.Second) - limiterNow(); wait > 0 {
		// A line was let through since this one was armed (the limiter's
		// second had passed as it came due): that line tells the total,
		// and this one would follow it at once. Those held after it get
		// their line a second after it.
		if l.due.CompareAndSwap(false, true) {
			time.AfterFunc(time.Duration(wait), func() { o.heldBack(r) })
		}
		return
	}
	l.held.Lock()
	defer l.held.Unlock()
	n := l.total.Load()
	if n <= l.shown.Load() || !l.last.CompareAndSwap(last, limiterNow()) {
		return
	}
	if k := l.claim(n); k > 0 {
		o.logHeld(r, n, k)
	}
}

// ServerStopped logs at once, for each reason, the warnings held back
// since its last line: the line heldBack would log a second later might
// not come before the process exits.
func (o *logObserver) ServerStopped() {
	for r := range o.warns {
		l := &o.warns[r]
		l.held.Lock() // a heldBack line under way is written before this returns
		n := l.total.Load()
		if k := l.claim(n); k > 0 {
			o.logHeld(Reason(r), n, k)
		}
		l.held.Unlock()
	}
}

// logHeld logs the line for k warnings of r held back, of n in all: its
// message and the field that names it (why= of a limit, reason= of any
// other) as its lines let through have them, so that a grep for either
// finds the count of those held back too.
func (o *logObserver) logHeld(r Reason, n, k int64) {
	level, msg := datagramLevel(r), datagramMsg(r)
	switch r {
	case ReasonRejected, warnPerIP:
		o.log(slog.LevelWarn, "connection rejected", "why", logErr{rejectedWhy(r)}, "rejected_total", n, "unlogged", k)
		return
	case ReasonProxyHeader:
		level, msg = slog.LevelWarn, "PROXY header refused"
	case ReasonHandshake:
		level, msg = slog.LevelWarn, "TLS handshake failed"
	}
	o.log(level, msg, "reason", r.String(), "total", n, "unlogged", k)
}

// unwrapped is the error inside a WrapError, whose reason is logged apart.
func unwrapped(err error) error {
	if we, ok := err.(*WrapError); ok {
		return we.Err
	}
	return err
}

// logErr is an error as a log line's value: still the error, for a
// handler's ReplaceAttr (errors.Is, errors.As), and its text to a handler
// that encodes values as JSON (encoding/json makes {} of an error whose
// fields are unexported, as most are) or as text.
type logErr struct{ err error }

func (e logErr) Error() string                { return errText(e.err) }
func (e logErr) Unwrap() error                { return e.err }
func (e logErr) MarshalText() ([]byte, error) { return []byte(e.Error()), nil }

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// Escape returns what a client sent as text that cannot drive a terminal
// or a log viewer: printable characters (any script) stay, and everything
// else (control characters, DEL, C1 controls, bidi overrides, zero-width
// and other invisible characters, bytes that are not UTF-8) is written as
// a Go escape (\n, \x7f, \u202e). A backslash is doubled and a double quote
// escaped, so the text reads back unambiguously with strconv.Unquote.
func Escape(p []byte) string {
	q := strconv.Quote(string(p))
	return q[1 : len(q)-1]
}

// addrText is a's text for a log or trace line. A Unix socket's name is
// its client's to choose (an abstract one, any bytes), so it is escaped,
// as the client's data is; IP addresses need not be.
func addrText(a net.Addr) string {
	if a == nil {
		return ""
	}
	if _, ok := a.(*net.UnixAddr); ok {
		return Escape([]byte(a.String()))
	}
	return a.String()
}

// limiter lets a warning that clients can trigger at will through at most
// once a second, counting every occurrence.
type limiter struct {
	total, last atomic.Int64 // occurrences; when the last was let through (limiterEpoch's ns, 0: never)
	shown       atomic.Int64 // the highest total a line has shown
	due         atomic.Bool  // a line for those held back is on its way
	// held is held while a line for those held back is claimed and
	// written, so that ServerStopped returns only after heldBack's line,
	// and the two lines come in the order of their totals.
	held sync.Mutex
}

// limiterEpoch is what limiters count time from, on the monotonic clock.
var limiterEpoch = time.Now()

// limiterNow is the time for allowAt: never 0, which means never.
func limiterNow() int64 { return int64(time.Since(limiterEpoch)) + 1 }

// allow counts one occurrence and reports whether to log it, with the
// total so far.
func (l *limiter) allow() (bool, int64) { return l.allowAt(limiterNow()) }

// claim notes that a line for those held back will show the total n,
// and returns how many it tells, none if another line has shown n: so
// two lines never tell the same ones.
func (l *limiter) claim(n int64) int64 {
	for {
		s := l.shown.Load()
		if s >= n {
			return 0
		}
		if l.shown.CompareAndSwap(s, n) {
			return n - s
		}
	}
}

// allowAt is allow at now, in ns from limiterEpoch: a second after the
// last let through, not in another calendar second (two 301 ms apart
// were both logged).
func (l *limiter) allowAt(now int64) (bool, int64) {
	n := l.total.Add(1)
	last := l.last.Load()
	ok := (last == 0 || now-last >= int64(time.Second)) && l.last.CompareAndSwap(last, now)
	return ok, n
}
