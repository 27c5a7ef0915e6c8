package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/alecthomas/kong"

	"golang.org/x/text/transform"

	"shout/admin"
	"shout/endpoint"
	"shout/internal/asynclog"
	"shout/internal/certs"
	"shout/internal/fastlog"
	"shout/internal/sockerr"
	"shout/server"
)

type serveCmd struct {
	Addrs []string `arg:"" optional:"" name:"addr" default:"127.0.0.1:8080" help:"Where to listen: host:port (TCP and UDP), tcp://host:port, udp://host:port, tls://host:port, unix:///path. A bare port is on 127.0.0.1, this machine only; :port is every interface; port 0 picks a free port."`

	Mode string `enum:"upper,simple,ascii,echo" default:"upper" help:"Mapping: upper (full Unicode, as Python's str.upper), simple (one rune for one), ascii (a-z only, as bytes.upper), echo (none)."`
	Lang string `help:"Language tailoring: tr and az (i → İ) for upper and simple, el for upper only (Greek accents dropped; looks ahead one character)." placeholder:"TAG"`

	MaxConns        int           `default:"10000" help:"Most TCP and Unix connections served at once; more are turned away as soon as accepted (they read end of file). 0: no limit."`
	MaxConnsPerIP   int           `name:"max-conns-per-ip" default:"1000" help:"Most TCP connections from one client address (IPv6: one /64) at once. Behind a load balancer without the PROXY protocol every client has the balancer's address. 0: no limit."`
	IdleTimeout     time.Duration `default:"5m" help:"Close a connection that sends nothing for this long. 0: never."`
	WriteTimeout    time.Duration `default:"30s" help:"Drop a client that stops reading its replies for this long. 0: never."`
	Linger          time.Duration `default:"2s" help:"How long a closing connection waits for the client's end of file after its last reply, so that no reset destroys replies in flight (longer while the client still sends or takes replies). 0: close at once."`
	ShutdownTimeout time.Duration `default:"10s" help:"On SIGINT or SIGTERM (or a listener failing for good), answer what has arrived, then close connections still busy after this long. 0: wait for every connection. Then Ctrl-C (SIGINT) or SIGQUIT stops at once; a second SIGTERM does not (timeout sends two)."`
	SourceRate      int           `default:"8388608" help:"Bytes of UDP replies per second for each datagram source address (all its ports; IPv6: its /64; loopback: each port apart), with a burst of one second's worth; more is dropped, and a reply longer than the burst always. 0: no limit."`

	Cert             string        `placeholder:"FILE" predictor:"file" help:"TLS certificate chain (PEM) for tls:// addresses; SIGHUP reloads it and --key."`
	Key              string        `placeholder:"FILE" predictor:"file" help:"TLS private key (PEM) for --cert."`
	ClientCA         string        `name:"client-ca" placeholder:"FILE" predictor:"file" help:"Require TLS clients to present a certificate signed by a CA in this PEM file (mTLS)."`
	TLSSelfSigned    bool          `name:"tls-self-signed" help:"Make a self-signed certificate in memory for the tls:// addresses' names, and log its SHA-256 fingerprint."`
	ProxyProtocol    bool          `name:"proxy-protocol" help:"Read a PROXY protocol header (v1 or v2) on TCP and TLS connections from --proxy-from, and serve them as the client it names."`
	ProxyFrom        []string      `name:"proxy-from" sep:"," placeholder:"CIDR" help:"Sources trusted to send a PROXY header, which they then must; a header from anyone else closes the connection. --proxy-protocol needs one at least."`
	HandshakeTimeout time.Duration `default:"10s" help:"Close a connection whose TLS handshake or PROXY header takes longer. Must be more than 0."`
	ReusePort        bool          `name:"reuse-port" help:"Set SO_REUSEPORT on TCP and UDP sockets, so a new shout can listen on the same port while this one drains (both must set it)."`

	Admin      string `placeholder:"ADDR" help:"Serve HTTP on this address (host:port, a bare port on 127.0.0.1, or unix:///path): /metrics for Prometheus, /healthz, and /readyz, which turns 503 as soon as a graceful stop begins. Off unless given."`
	AdminPprof bool   `name:"admin-pprof" help:"Also serve Go's profiles at /debug/pprof/ on the --admin listener."`

	Engine string `enum:"auto,loop,goroutine" default:"auto" help:"What serves TCP and Unix connections: loop (event loops, one per core; an idle connection costs no goroutine or buffer; Linux, plain TCP and Unix only), goroutine (one per connection; anything, TLS and PROXY included), or auto (loop where it can serve)."`

	LogFormat string `enum:"text,json" default:"text" help:"Log format on stderr: text or json."`
	Verbose   bool   `short:"v" help:"Also log every message received (quoted, truncated)."`
	Trace     bool   `help:"Print every socket call to stderr as it happens, in the lesson's terms (bind, listen, accept, recv, send, close, recvfrom, sendto), on lines that begin with \"trace \". For learning: a stderr that blocks holds up serving."`
}

// longestUDPReply is the most a UDP datagram carries (over IPv6; 20
// bytes less over IPv4).
const longestUDPReply = 65535 - 8

// logFlushTimeout bounds how long shout waits at exit for its last log
// lines to reach stderr: long enough for any stderr that is read at all,
// short enough that a stuck one does not keep it from exiting.
const logFlushTimeout = time.Second

func (cmd *serveCmd) Run(std *stdio, kctx *kong.Context) error {
	// Catch signals before the first "listening on" line: whoever reads it
	// may signal at once, and must get a graceful stop. SIGQUIT too, taken
	// from main's catchQuit: serve stops at once on it, closing its
	// connections and logging so.
	sigs := make(chan os.Signal, 3)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGQUIT)
	var began os.Signal // the signal that began the stop, if one did, and when
	var beganAt time.Time
	defer func() {
		// Once a signal has begun the stop, shout catches them to its
		// exit: a relay's copies of it (see echoes) may come after a
		// stop that took no time, and with the default action back one
		// would kill shout as it exits.
		if began == nil {
			signal.Stop(sigs)
		}
	}()
	defer takeQuit()() // (before the Stop)
	// SIGHUP reloads the certificate; with none to reload it says so,
	// rather than end the server as it would by default. Caught from the
	// start too: one that comes while shout starts (a renewer signalling
	// the server it just started) is served once it runs.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	// A stderr whose reader went away (`shout serve 2>&1 | head`) must cost
	// the log lines, not the server: Go's default dies of SIGPIPE on the
	// next write to it. Ignored, the write fails and the lines are dropped.
	signal.Ignore(syscall.SIGPIPE)

	t, err := transformer(cmd.Mode, cmd.Lang)
	if err != nil {
		return err
	}
	if err := cmd.check(); err != nil {
		return err
	}
	// Logging never blocks serving or stopping, whatever stderr does.
	logs := asynclog.New(std.stderr, 0, cmd.logHandler)
	defer func() { closeLog(logs, sigs, began, beganAt) }()
	log := slog.New(logs)
	// A signal before serving stops the start, a wait on a PEM file
	// included, rather than wait to be served: shout has nothing to stop
	// gracefully yet.
	starting, started := watchStart(sigs)
	defer started()
	stopped := func(s os.Signal, err error) error {
		began, beganAt = s, signalClock()
		return stoppedStarting(log, s, err)
	}
	// A start that fails after a signal came ends as the signal asked:
	// the stop was asked for first, and its status is what a supervisor
	// and a script expect (a port in use said after Ctrl-C was status 1).
	startFailed := func(err error) error {
		s := started()
		if s == nil {
			select { // one the watch had not taken yet came first too
			case s = <-sigs:
			default:
				return err
			}
		}
		return stopped(s, err)
	}

	srv := cmd.server(t, log)
	if cmd.Trace {
		srv.Observer = server.Observers(server.NewLogObserver(log), server.NewNamedTraceObserver(std.stderr, flagName))
	}
	eps, err := cmd.endpoints(std.given, servePort(kctx.Model), listenAddr(starting))
	if err != nil {
		return startFailed(err)
	}
	beside := func(admin []endpoint.Endpoint) (clash, bool) {
		return clashing(append(slices.Clip(eps), admin...), len(eps), listenAddr(starting), runtime.GOOS == "linux")
	}
	adminEps, err := cmd.adminEndpoints(func(meant string) bool {
		admin, err := endpoint.Parse(meant, "tcp")
		_, clash := beside(admin)
		return err == nil && !clash
	})
	if err != nil {
		return startFailed(err)
	}
	if c, ok := beside(adminEps); ok {
		if c.overlap { // (--reuse-port is not the admin listener's)
			return startFailed(usagef("--admin %s: it overlaps %s, an address to serve, on a wildcard's addresses, where Linux lets only one socket bind a port; give --admin another port", c.e, c.earlier))
		}
		return startFailed(usagef("--admin %s: an address to serve as well", c.e))
	}
	// The admin listener serves first and stops last: /healthz says 200
	// and /readyz 503 (starting) while the start waits on a PEM file,
	// and /readyz 503 all through a graceful stop.
	adminLns, _, err := endpoint.Listen(adminEps)
	if err != nil {
		if cmd.ReusePort && sockerr.AddrInUse(err) && !endpoint.NoServer(err) {
			// Most likely the shout this one is to replace.
			return startFailed(fmt.Errorf("--admin: %w (--reuse-port does not share it: each shout's /readyz and /metrics are its own; give this one another --admin)", err))
		}
		return startFailed(fmt.Errorf("--admin: %w", err))
	}
	ready := func(bool) {}
	adminErr := make(chan error, 1)
	if len(adminLns) > 0 {
		h, stop := cmd.startAdmin(srv, adminLns[0], logs, log, adminErr)
		defer stop()
		ready = h.SetReady
	}
	opts, certs, err := cmd.listenOptions(pemNotices(starting, log), eps)
	if err != nil {
		return startFailed(err)
	}
	// Listen everywhere before serving anywhere, so a bad address fails
	// the start instead of leaving half a server running.
	listeners, packets, err := listen(starting, opts, eps)
	if err != nil {
		if cmd.ReusePort && sockerr.AddrInUse(err) && !endpoint.NoServer(err) {
			// Most likely a shout to replace, started without it.
			err = fmt.Errorf("%w (--reuse-port shares a port only with sockets that set SO_REUSEPORT too: a shout there must have been started with --reuse-port)", err)
		}
		return startFailed(err)
	}
	engines := make([]server.Engine, len(listeners))
	for i, l := range listeners {
		if engines[i], err = srv.EngineFor(l); err != nil {
			closeAll(listeners, packets)
			return startFailed(usagef("--engine %s: %s", cmd.Engine, strings.TrimPrefix(err.Error(), "server: ")))
		}
	}
	if certs != nil {
		msg := "tls certificate"
		if cmd.TLSSelfSigned {
			msg = "tls certificate made in memory"
		}
		logCertificate(log, msg, certs, time.Now())
	}
	// The reload's wait on a PEM file ends with serve.
	reloading, stopReloading := context.WithCancel(context.Background())
	defer stopReloading()
	go reloadOnHUP(pemNotices(reloading, log), hup, certs, log)
	if cmd.SourceRate > 0 && cmd.SourceRate < longestUDPReply && len(packets) > 0 {
		// Taken for a rate, it seemed to lose replies it never could send.
		log.Warn(fmt.Sprintf("--source-rate %d: a UDP reply longer than %d bytes is never sent, however seldom its source sends: an address's budget holds one second's worth", cmd.SourceRate, cmd.SourceRate),
			"source_rate", cmd.SourceRate)
	}
	if exposed := exposedUDP(packets); len(exposed) > 0 && (cmd.SourceRate == 0 || !std.given["source-rate"]) {
		// Said once, at start: the flag's help cannot know the address.
		// A budget given is the operator's choice, but not none: 0 lets
		// a forger aim all shout can send at one victim, which is worse
		// than the default warned of.
		budget, sent := fmt.Sprintf("the default --source-rate, %d bytes a second for each source address", cmd.SourceRate), "that much"
		if cmd.SourceRate == 0 {
			budget, sent = "--source-rate 0, no budget for any source address", "all shout can send"
		}
		log.Warn(fmt.Sprintf("UDP served beyond loopback (%s) with %s: anyone who reaches it can forge a victim's address as the source and have shout send the victim %s, up to 3 times what they send; set --source-rate to what one client needs (%d still answers the longest datagram), or serve TCP alone (tcp://)", strings.Join(exposed, ", "), budget, sent, exposedSourceRate),
			"addrs", strings.Join(exposed, ","), "source_rate", cmd.SourceRate)
	}
	if s := started(); s != nil {
		closeAll(listeners, packets)
		return stopped(s, nil)
	}
	logListening(log, listeners, engines, packets)
	loops := 0 // the event loops' epoll sets and wake-ups, made once for every listener
	if slices.Contains(engines, server.EngineLoop) {
		loops = runtime.GOMAXPROCS(0)
	}
	// Only with a stream listener: --max-conns counts its connections,
	// and with UDP alone the flag is refused, as the warning told to lower.
	if need, fit := cmd.filesNeeded(len(adminLns) > 0, loops, openFileLimit()); fit >= 0 && len(listeners) > 0 {
		// Past it accept fails, and is retried each second: the log says
		// so then, but not why, nor what to do.
		readyz := ""
		if len(adminLns) > 0 {
			readyz = " (and /readyz says 503)"
		}
		log.Warn(fmt.Sprintf("the open-file limit is below what --max-conns needs: past about %d connections, new clients wait unaccepted%s until one closes; raise the limit (ulimit -n; LimitNOFILE= under systemd) or lower --max-conns", fit, readyz),
			"open_file_limit", openFileLimit(), "need", need, "max_conns", cmd.MaxConns)
	}

	errs := make(chan error, len(listeners)+len(packets))
	for _, l := range listeners {
		go func() { errs <- srv.Serve(l) }()
	}
	for _, p := range packets {
		go func() { errs <- srv.ServePacket(p) }()
	}
	ready(true)
	if len(adminLns) > 0 {
		// Once ready: whoever reads this line finds /readyz saying 200.
		log.Info("admin listening at "+adminURL(adminLns[0].Addr()), "pprof", cmd.AdminPprof)
	}
	// A string either way: a log pipeline that fixes a field's type
	// would otherwise meet a number (nanoseconds, in JSON) and "none".
	timeout := cmd.ShutdownTimeout.String()
	if cmd.ShutdownTimeout <= 0 {
		timeout = "none"
	}
	var failed error
	// A listener failed for good (an accept error that is not
	// temporary). The others could serve on, but shout would then
	// look healthy while refusing every client of that address, and
	// a supervisor would not restart it: it stops, as gracefully as
	// on SIGTERM, so that no client of the others loses a reply, and
	// exits with the error.
	listenerFailed := func() {
		ready(false)
		log.Error("a listener failed; shutting down", "err", failed, "timeout", timeout)
	}
	select {
	case failed = <-errs:
		listenerFailed()
	case failed = <-adminErr:
		listenerFailed()
	case s := <-sigs:
		ready(false) // first: a load balancer stops sending new clients
		began, beganAt = s, signalClock()
		if s == syscall.SIGQUIT {
			log.Warn("stopping now", "signal", s.String())
			closeNow(srv, log)
			log.Info("stopped")
			return nil
		}
		log.Info("shutting down", "signal", s.String(), "timeout", timeout)
	case <-std.ctx.Done():
		ready(false)
		log.Info("shutting down", "reason", context.Cause(std.ctx).Error(), "timeout", timeout)
	}
	ctx, cancel := context.WithCancel(context.Background()) // a signal that hurries
	defer cancel()
	if cmd.ShutdownTimeout > 0 {
		var stop context.CancelFunc
		ctx, stop = context.WithTimeout(ctx, cmd.ShutdownTimeout)
		defer stop()
	}
	// After a listener's failure, the signal that cuts the stop short
	// is the first.
	cut := "second signal"
	if failed != nil {
		cut = "signal"
	}
	watching := make(chan struct{})
	go func() {
		defer close(watching)
		told := false
		for {
			select {
			case s := <-sigs:
				if echoes(began, signalClock().Sub(beganAt), s) {
					continue // a relay's copy says nothing
				}
				if !hurries(began, s) {
					if !told {
						log.Info("already stopping: SIGTERM again does not hurry the stop; Ctrl-C (SIGINT) or SIGQUIT does", "signal", s.String())
						told = true
					}
					continue
				}
				log.Warn(cut+": stopping now", "signal", s.String())
				cancel()
			case <-ctx.Done():
			}
			return
		}
	}()
	err = stopWithin(ctx, log, srv.Shutdown)
	cancel()
	<-watching // so that closeLog sees any further signal
	if err != nil && !errors.Is(err, errStuck) {
		log.Warn("closed connections still busy", "reason", shutdownReason(err, cut))
	}
	log.Info("stopped")
	return failed
}

// logListening logs a "listening on" line for each listener, with the
// engine that serves it, and for each packet connection.
func logListening(log *slog.Logger, listeners []net.Listener, engines []server.Engine, packets []net.PacketConn) {
	for i, l := range listeners {
		e := endpoint.Endpoint{Network: l.Addr().Network(), Address: l.Addr().String(), TLS: isTLS(l)}
		log.Info("listening on "+e.String(), "network", e.Network, "addr", e.Address, "engine", engines[i].String())
	}
	for _, p := range packets {
		e := endpoint.Endpoint{Network: p.LocalAddr().Network(), Address: p.LocalAddr().String()}
		log.Info("listening on "+e.String(), "network", e.Network, "addr", e.Address)
	}
}

// exposedSourceRate is the --source-rate the warning of exposedUDP
// suggests: the least that still answers the longest datagram (a budget
// holds one second's worth), a power of two for the reader.
const exposedSourceRate = 65536

// exposedUDP returns the addresses of packets that take datagrams from
// other machines: any but loopback (0.0.0.0 and [::] too). A budget
// sized for known clients (the default --source-rate) lets a forger who
// reaches one aim far more replies at a victim than a public UDP service
// sends to one address.
func exposedUDP(packets []net.PacketConn) []string {
	var exposed []string
	for _, p := range packets {
		ap, err := netip.ParseAddrPort(p.LocalAddr().String())
		if err != nil || !ap.Addr().Unmap().IsLoopback() {
			exposed = append(exposed, "udp://"+p.LocalAddr().String())
		}
	}
	return exposed
}

// endpoints parses the addresses to serve, refusing flags that none of
// them uses, an address given twice (however spelt: lookup resolves a
// name) or within another's wildcard, and --engine loop where the loops
// cannot serve. An address without its port is offered with port, the
// default address's.
func (cmd *serveCmd) endpoints(given map[string]bool, port string, lookup func(host string) (netip.Addr, bool)) ([]endpoint.Endpoint, error) {
	var eps []endpoint.Endpoint
	for i, a := range cmd.Addrs {
		e, err := endpoint.Parse(a, "tcp", "udp")
		if err != nil {
			if i+1 < len(cmd.Addrs) { // shout serve 127.0.0.1 8080, as nc -l takes them
				if joined := hostAndPort(a, cmd.Addrs[i+1]); joined != "" {
					return nil, usagef("%v; %s", err, oneArgument(joined))
				}
			}
			return nil, portOffered(err, a, port, func(meant string) bool { return cmd.takes(meant, i, lookup) })
		}
		eps = append(eps, e...)
	}
	if err := cmd.unused(eps, given); err != nil {
		return nil, err
	}
	if c, ok := clashing(eps, 0, lookup, runtime.GOOS == "linux" && !cmd.ReusePort); ok {
		return nil, usagef("%v", c)
	}
	if why := cmd.loopRefused(eps); why != "" {
		// Before anything is bound: a taken port would otherwise hide it.
		return nil, usagef("--engine loop: the event-loop engine cannot serve %s; --engine auto serves it with a goroutine per connection", why)
	}
	return eps, nil
}

// takes says whether meant, offered in place of the address at i of
// cmd.Addrs, could be served beside the others that parse: not one of
// them again, nor (on Linux, without --reuse-port) within one's wildcard.
func (cmd *serveCmd) takes(meant string, i int, lookup func(host string) (netip.Addr, bool)) bool {
	var eps []endpoint.Endpoint
	for j, a := range cmd.Addrs {
		if e, err := endpoint.Parse(a, "tcp", "udp"); j != i && err == nil {
			eps = append(eps, e...)
		}
	}
	offered, err := endpoint.Parse(meant, "tcp", "udp")
	if err != nil {
		return false
	}
	_, clash := clashing(append(eps, offered...), len(eps), lookup, runtime.GOOS == "linux" && !cmd.ReusePort)
	return !clash
}

// clash is two of the addresses serve is given that cannot both listen:
// one socket address however spelt, or (overlap) one within the other's
// wildcard. Its listen would fail, the address in use by this very
// shout, and "address already in use" sent one looking for another
// program.
type clash struct {
	earlier, e endpoint.Endpoint
	at         string // the socket address both name, unless overlap
	overlap    bool
	wide       int // with overlap, which of earlier (0) and e (1) is the wildcard
}

func (c clash) Error() string {
	switch {
	case c.overlap:
		w, part := c.earlier, c.e
		if c.wide == 1 {
			w, part = part, w
		}
		every := "every IPv4 address"
		if host, _, _ := net.SplitHostPort(w.Address); !strings.Contains(host, ".") {
			every = "every address, IPv4 and IPv6" // [::], or no host
		}
		return fmt.Sprintf("%s and %s overlap: %s listens on %s, %s included, and Linux lets only one socket bind a port there (both take --reuse-port); give one of them", c.earlier, c.e, w, every, part.Address)
	case c.earlier.String() == c.e.String():
		return fmt.Sprintf("%s is given twice", c.e)
	}
	return fmt.Sprintf("%s and %s are one address, %s, given twice", c.earlier, c.e, c.at)
}

// clashing returns the first of eps[from:] that cannot listen beside an
// earlier one: where it listens (a name as lookup resolves it, looked
// up only if another address has its port; a port's service name, http,
// as its number), or, with overlaps, within
// an earlier wildcard's addresses or around an earlier one's (Linux
// refuses the bind, unless both sockets set SO_REUSEPORT). Port 0 is a
// new port each time.
func clashing(eps []endpoint.Endpoint, from int, lookup func(host string) (netip.Addr, bool), overlaps bool) (clash, bool) {
	type sock struct {
		network, port string
		at            string         // the socket address, as Go listens on it
		ip            netip.AddrPort // at's, if an IP address
	}
	socks := make([]sock, len(eps))
	ports := make(map[[2]string]int)
	for i, e := range eps {
		s := sock{network: e.Network, at: e.Address}
		if host, port, err := net.SplitHostPort(e.Address); e.Network != "unix" && err == nil {
			if n, err := strconv.ParseUint(port, 10, 16); err == nil {
				port = strconv.FormatUint(n, 10) // 127.0.0.1:08080 is 127.0.0.1:8080
			} else if n, err := net.LookupPort(e.Network, port); err == nil {
				port = strconv.Itoa(n) // 127.0.0.1:http is 127.0.0.1:80, as Go listens
			}
			s.port = port
			if host == "" {
				host = "::" // :8080 is [::]:8080, as Go listens on it
			}
			s.at = net.JoinHostPort(host, port)
			ports[[2]string{s.network, port}]++
		} else if e.Network == "unix" && !strings.HasPrefix(e.Address, "@") { // (@ is Linux's abstract name)
			if abs, err := filepath.Abs(e.Address); err == nil {
				s.at = abs // /run/s.sock is /run/./s.sock, and s.sock in /run
			}
		}
		socks[i] = s
	}
	for i := range socks {
		s := &socks[i]
		if s.port == "" || ports[[2]string{s.network, s.port}] < 2 {
			continue
		}
		host, _, _ := net.SplitHostPort(s.at)
		ip, err := netip.ParseAddr(host)
		if err != nil && lookup != nil {
			ip, _ = lookup(host)
		}
		if ip.IsValid() {
			// [::ffff:127.0.0.1] is 127.0.0.1, which Go listens on as IPv4.
			s.ip, _ = netip.ParseAddrPort(net.JoinHostPort(ip.Unmap().String(), s.port))
			s.at = s.ip.String()
		}
	}
	for i, s := range socks[from:] {
		i += from
		if s.port == "0" {
			continue
		}
		for j, t := range socks[:i] {
			if s.network != t.network || s.port != t.port {
				continue
			}
			if s.at == t.at {
				return clash{earlier: eps[j], e: eps[i], at: s.at}, true
			}
			if !overlaps || !s.ip.IsValid() || !t.ip.IsValid() {
				continue
			}
			if within(s.ip.Addr(), t.ip.Addr()) {
				return clash{earlier: eps[j], e: eps[i], overlap: true}, true
			}
			if within(t.ip.Addr(), s.ip.Addr()) {
				return clash{earlier: eps[j], e: eps[i], overlap: true, wide: 1}, true
			}
		}
	}
	return clash{}, false
}

// listenAddr is a lookup for clashing: the address Go listens on for a
// host name, its first IPv4 address, or its first if it has none (as
// net.ListenConfig.Listen picks).
func listenAddr(ctx context.Context) func(string) (netip.Addr, bool) {
	return func(host string) (netip.Addr, bool) {
		ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		if err != nil || len(ips) == 0 {
			return netip.Addr{}, false // the listen says why
		}
		for _, ip := range ips {
			if ip.Unmap().Is4() {
				return ip, true
			}
		}
		return ips[0], true
	}
}

// within reports whether w, a wildcard, takes a's port too: 0.0.0.0
// every IPv4 address, [::] (dual-stack, as Go listens on it) every one.
func within(a, w netip.Addr) bool {
	return w == netip.IPv6Unspecified() || w == netip.IPv4Unspecified() && a.Is4()
}

// unused refuses a flag that given says was set (on the command line
// or from the environment) and that none of eps would use: it was taken,
// and did nothing. The TLS and PROXY flags are listenOptions'.
func (cmd *serveCmd) unused(eps []endpoint.Endpoint, given map[string]bool) error {
	var udp, tcp, tls, unix bool
	for _, e := range eps {
		switch {
		case e.Network == "udp":
			udp = true
		case e.Network == "unix":
			unix = true
		default:
			tcp, tls = true, tls || e.TLS
		}
	}
	for _, f := range []struct {
		flags  []string
		unused bool
		what   string
	}{
		{[]string{"source-rate"}, !udp, "UDP addresses"},
		{[]string{"max-conns-per-ip"}, !tcp, "TCP and tls:// addresses"},
		{[]string{"max-conns", "idle-timeout", "write-timeout", "linger", "engine"}, !tcp && !unix, "TCP, tls:// and Unix addresses"},
		{[]string{"reuse-port"}, !tcp && !udp && cmd.ReusePort, "TCP and UDP addresses"}, // (off, it asks nothing of any)
	} {
		for _, name := range f.flags {
			if f.unused && given[name] {
				return usagef("--%s is for %s, and there is none", name, f.what)
			}
		}
	}
	if given["handshake-timeout"] && !tls && !cmd.ProxyProtocol {
		return usagef("--handshake-timeout is for tls:// addresses and --proxy-protocol, and there is neither")
	}
	return nil
}

// loopRefused says which of eps --engine loop cannot serve, and why, in
// the flags' terms, as far as the flags tell (Server.EngineFor says the
// rest once they listen), or "".
func (cmd *serveCmd) loopRefused(eps []endpoint.Endpoint) string {
	if cmd.Engine != "loop" {
		return ""
	}
	for _, e := range eps {
		switch {
		case e.Network == "udp": // datagrams are served as ever
		case cmd.Trace:
			return e.String() + " with --trace, which follows each connection's system calls as a goroutine makes them"
		case e.TLS:
			return e.String() + ": its bytes pass through crypto/tls, which reads and writes a net.Conn"
		case cmd.ProxyProtocol && e.Network == "tcp":
			return e.String() + " with --proxy-protocol, whose header is read from a net.Conn"
		}
	}
	return ""
}

// stopGrace is how long shout waits, once a stop is to be immediate (the
// shutdown timeout has passed, a second signal or SIGQUIT came), for the
// connections it has closed to finish.
const stopGrace = time.Second

// errStuck: connections closed at the end of a stop had not finished
// stopGrace later.
var errStuck = errors.New("connections still busy after they were closed")

// closeNow closes srv at once, waiting for its connections no longer
// than stopGrace (see stopWithin).
func closeNow(srv *server.Server, log *slog.Logger) {
	now, cancel := context.WithCancel(context.Background())
	cancel()
	stopWithin(now, log, func(context.Context) error { return srv.Close() })
}

// stopWithin runs stop(ctx) and returns what it returns, but once ctx is
// done waits for it no more than stopGrace: a connection's goroutine
// blocked for good (writing --trace lines to a stderr that nobody reads)
// finishes only when the process exits, and must not keep it from
// exiting. Then it logs so and returns errStuck.
func stopWithin(ctx context.Context, log *slog.Logger, stop func(context.Context) error) error {
	done := make(chan error, 1)
	go func() { done <- stop(ctx) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	t := time.NewTimer(stopGrace)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C:
		log.Warn("connections still busy after they were closed; exiting without them", "waited", stopGrace)
		return errStuck
	}
}

// filesSpare is the open files shout serve needs besides its connections
// and what filesNeeded counts: standard streams, the runtime's, the
// listeners, the admin listener's spare, and a connection accepted past
// --max-conns to be turned away.
const filesSpare = 16

// filesNeeded is how many open files --max-conns connections need, with
// what else serving takes: two for each of loops event loops, filesSpare,
// and the admin listener's connections if withAdmin. If that is more than
// an open-file limit of limit (0: not known), fit is about how many
// connections the limit leaves room for while the admin listener is
// little used; else fit is -1. need is a uint64 because --max-conns may be
// as much as int holds (2^31-1 where it is 32 bits), and more in int
// wrapped to a negative number.
func (cmd *serveCmd) filesNeeded(withAdmin bool, loops int, limit uint64) (need uint64, fit int) {
	besides := filesSpare + 2*loops
	need = uint64(cmd.MaxConns) + uint64(besides) // MaxConns is at least 0
	if withAdmin {
		need += admin.MaxConns
	}
	if limit == 0 || cmd.MaxConns == 0 || need <= limit {
		return need, -1
	}
	room := uint64(0)
	if limit > uint64(besides) {
		room = limit - uint64(besides)
	}
	return need, int(min(room, uint64(cmd.MaxConns))) // less than need: an int
}

// adminStopTimeout bounds how long the admin listener waits at exit for
// requests in flight (a scrape; not a 30-second profile).
const adminStopTimeout = time.Second

// adminEndpoints is where --admin listens: nothing without it. An
// address is offered for it only if free, beside serve's own, takes it.
func (cmd *serveCmd) adminEndpoints(free func(addr string) bool) ([]endpoint.Endpoint, error) {
	if cmd.Admin == "" {
		if cmd.AdminPprof {
			return nil, usagef("--admin-pprof needs --admin")
		}
		return nil, nil
	}
	const takes = "want host:port, tcp:// or unix://"
	// Its log line gives its URL (http://127.0.0.1:9090/), which is
	// pasted back for it; Parse offers tcp:// for http://, and for
	// https://, wss:// or a URL's tls://…/ an address here refused: the
	// address alone is offered. Where Parse offers none for a scheme it
	// does not know, it names its own schemes, two of them refused here.
	// ("://host:port" has none: Parse's plain host:port.) A URL's port
	// that Parse fills in (https://localhost/ is localhost:443) is not
	// offered: the admin URL shout logs has its port, and plain HTTP on
	// 443 is no fix. Nor is a scheme refused here, which Parse's error
	// would offer the form of (udp:127.0.0.1, "shout takes
	// udp://HOST:PORT"): it is said to be refused.
	scheme, _, found := strings.Cut(cmd.Admin, "://")
	scheme = strings.ToLower(scheme)
	eps, err := endpoint.Parse(cmd.Admin, "tcp")
	if err != nil { // eps: what Parse offers for it, if any, which may still be refused here
		if !found { // udp:host:port, socat's UDP4:host:port or UDP-LISTEN:port (udp:8080 is host udp)
			scheme = endpoint.SchemeOf(cmd.Admin)
		}
		eps, _ = endpoint.Parse(endpoint.Meant(err), "tcp")
		if eps != nil && eps[0].Network != "unix" {
			if _, port, _ := net.SplitHostPort(eps[0].Address); !strings.Contains(cmd.Admin, ":"+port) {
				eps = nil
			}
		}
		if eps == nil && (!found && scheme != "udp" && scheme != "tls" || slices.Contains([]string{"", "tcp", "unix"}, scheme)) {
			return nil, usagef("--admin: %v%s", err, portHint(err, cmd.Admin, "", free)) // (no port of serve's: it is the addresses')
		}
	}
	tail := ": " + takes // after what is refused: the address offered, or what --admin takes
	offer := ""          // after a scheme refused: the address offered
	if eps != nil {
		offer = fmt.Sprintf(" (did you mean %q?)", eps[0].Address)
		tail = offer
	}
	switch {
	case scheme == "http": // (Parse takes no http://)
		return nil, usagef("--admin takes the address to listen on, not a URL%s", tail)
	case scheme == "https":
		return nil, usagef("--admin serves plain HTTP, not HTTPS%s", tail)
	case scheme == "udp" || eps != nil && eps[0].Network == "udp":
		return nil, usagef("--admin: HTTP needs a stream: %s, not %s://%s", takes, scheme, offer)
	case scheme == "tls" || eps != nil && eps[0].TLS:
		return nil, usagef("--admin serves plain HTTP: %s, not %s://%s", takes, scheme, offer)
	case eps == nil:
		return nil, usagef("--admin: unknown scheme %q: %s", scheme, takes)
	case err != nil:
		return nil, usagef("--admin: %v", err) // what Parse offers, --admin takes
	}
	return eps, nil
}

// startAdmin counts srv's events for /metrics and serves the admin
// endpoints on ln, sending a failure to errs. It returns the handler,
// not ready yet, and what stops it.
func (cmd *serveCmd) startAdmin(srv *server.Server, ln net.Listener, logs *asynclog.Handler, log *slog.Logger, errs chan<- error) (*admin.Handler, func()) {
	v, rev := buildVersion()
	m := admin.NewMetrics(admin.Config{Version: v, Revision: rev, LogDropped: logs.Dropped})
	obs := srv.Observer // the log's, and --trace's if asked for
	if obs == nil {
		obs = server.NewLogObserver(log)
	}
	// The metrics first: an event logged is counted already, for one
	// who reads the log, then /metrics.
	srv.Observer = server.Observers(m, obs)
	h := admin.NewHandler(m, cmd.AdminPprof)
	hs := h.HTTPServer(log)
	go func() {
		if err := hs.Serve(admin.LimitListener(ln)); !errors.Is(err, http.ErrServerClosed) {
			errs <- fmt.Errorf("admin: %w", err)
		}
	}()
	return h, func() {
		ctx, cancel := context.WithTimeout(context.Background(), adminStopTimeout)
		defer cancel()
		if hs.Shutdown(ctx) != nil {
			hs.Close()
		}
	}
}

// adminURL is how the log names the admin listener at a.
func adminURL(a net.Addr) string {
	if a.Network() == "unix" {
		return "unix://" + a.String()
	}
	return "http://" + a.String() + "/"
}

// check refuses flag values that make no sense: every limit is off at 0,
// and none has a meaning below it.
func (cmd *serveCmd) check() error {
	for _, f := range []struct {
		name     string
		negative bool
	}{
		{"--max-conns", cmd.MaxConns < 0},
		{"--max-conns-per-ip", cmd.MaxConnsPerIP < 0},
		{"--idle-timeout", cmd.IdleTimeout < 0},
		{"--write-timeout", cmd.WriteTimeout < 0},
		{"--linger", cmd.Linger < 0},
		{"--shutdown-timeout", cmd.ShutdownTimeout < 0},
		{"--source-rate", cmd.SourceRate < 0},
	} {
		if f.negative {
			return usagef("%s must not be negative", f.name)
		}
	}
	return nil
}

// closeAll closes listeners that will not be served.
func closeAll(listeners []net.Listener, packets []net.PacketConn) {
	for _, l := range listeners {
		l.Close()
	}
	for _, p := range packets {
		p.Close()
	}
}

// server is the Server the flags describe.
func (cmd *serveCmd) server(t transform.Transformer, log *slog.Logger) *server.Server {
	linger := cmd.Linger
	if linger <= 0 {
		linger = -1 // the flag's 0 is no linger; the field's 0 is its default
	}
	engine, _ := server.ParseEngine(cmd.Engine) // one of the flag's enum
	return &server.Server{
		Engine:        engine,
		Transformer:   t,
		MaxConns:      cmd.MaxConns,
		MaxConnsPerIP: cmd.MaxConnsPerIP,
		IdleTimeout:   cmd.IdleTimeout,
		WriteTimeout:  cmd.WriteTimeout,
		Linger:        linger,
		SourceRate:    cmp.Or(cmd.SourceRate, -1), // the flag's 0 is no budget; the field's 0 is its default
		Logger:        log,
	}
}

// logHandler is the handler for the --log-format and -v flags, on w.
func (cmd *serveCmd) logHandler(w io.Writer) slog.Handler {
	opts := slog.HandlerOptions{Level: slog.LevelInfo}
	if cmd.Verbose {
		opts.Level = slog.LevelDebug
	}
	// fastlog writes slog's text or JSON, the lines of plain values (a
	// connection's open and close) at a fraction of the cost.
	if cmd.LogFormat == "json" {
		return newFlagHandler(w, opts, func(w io.Writer, o *slog.HandlerOptions) slog.Handler { return fastlog.NewJSONHandler(w, o) })
	}
	return newFlagHandler(w, opts, func(w io.Writer, o *slog.HandlerOptions) slog.Handler { return fastlog.NewTextHandler(w, o) })
}

// closeLog waits for the last log lines to reach stderr, for at most
// logFlushTimeout, or until one more signal asks to stop waiting, if it
// hurries a stop that began began at beganAt (and is not its echo).
func closeLog(logs *asynclog.Handler, sigs <-chan os.Signal, began os.Signal, beganAt time.Time) {
	ctx, cancel := context.WithTimeout(context.Background(), logFlushTimeout)
	defer cancel()
	go func() {
		for {
			select {
			case s := <-sigs:
				if echoes(began, signalClock().Sub(beganAt), s) || !hurries(began, s) {
					continue
				}
				cancel()
			case <-ctx.Done():
			}
			return
		}
	}()
	logs.Close(ctx)
}

// shutdownReason says why a graceful stop was cut short (err, from
// Shutdown): the timeout, or cut, the signal that did.
func shutdownReason(err error, cut string) string {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "shutdown timeout"
	case errors.Is(err, context.Canceled):
		return cut
	}
	return err.Error()
}

// watchStart watches sigs while serve starts: the first signal ends ctx,
// which ends any wait (reading a PEM file may wait 10 s, see
// certs.ReadPEMContext). started ends the watch, and says which signal
// came, nil if none; the signals after it are left in sigs.
func watchStart(sigs <-chan os.Signal) (ctx context.Context, started func() os.Signal) {
	ctx, cancel := context.WithCancel(context.Background())
	var got os.Signal
	done := make(chan struct{})
	go func() {
		defer close(done)
		select {
		case got = <-sigs:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, sync.OnceValue(func() os.Signal {
		cancel()
		<-done
		return got
	})
}

// pemWaitNotice is how long a read of a PEM file waits (for a pipe's
// writer, a lease's holder) before the log says so: long enough that a
// start that does not wait says nothing, short enough that one that
// waits is not silent for its 10 s a file.
var pemWaitNotice = time.Second

// pemNotices is ctx, whose reads of PEM files that wait log so, once
// for each file, after pemWaitNotice.
func pemNotices(ctx context.Context, log *slog.Logger) context.Context {
	return certs.WithWaitNotice(ctx, pemWaitNotice, logPEMWait(log))
}

// logPEMWait logs a wait on a PEM file, and how long it may last: a
// timeout of 0 is a wait with none (a pipe on macOS), and "timeout=0s"
// would say it had run out.
func logPEMWait(log *slog.Logger) func(msg string, timeout time.Duration) {
	return func(msg string, timeout time.Duration) {
		if timeout == 0 {
			log.Info(msg)
			return
		}
		log.Info(msg, "timeout", timeout.String())
	}
}

// listen is opts.Listen(eps); a test's stand-in sends a signal first,
// and waits for ctx, the start's (see watchStart), to have taken it.
var listen = func(_ context.Context, opts endpoint.Options, eps []endpoint.Endpoint) ([]net.Listener, []net.PacketConn, error) {
	return opts.Listen(eps)
}

// stoppedStarting is serve's end on signal s before it served. err,
// what was waited for when s came, is said if s cut it short; a failure
// of the start's own (a port in use, a usage error) is said too: s may
// have come just after it (shout cannot tell), and either way the
// operator must learn of it, before the next start fails alike.
//
// SIGTERM is a success, status 0, logged: it is how a supervisor
// (systemd, Kubernetes, docker stop) asks a server to stop, serve
// answers it with 0 once it serves, and the supervisor cannot tell
// whether the start has finished. systemd counts any other status,
// 143 too, as the unit failing, so `systemctl stop` during a start
// that waited on a PEM file left a failed unit. (net/http's Shutdown
// likewise ends Serve with ErrServerClosed, which is no failure.)
//
// Any other signal (Ctrl-C's SIGINT, SIGQUIT) is 128 + s, and a line on
// stderr, as a shell reports a program a signal stopped before its work
// was done: a person interrupted it, and a script that started it must
// not carry on as if it had served (bench likewise before it measured
// anything).
func stoppedStarting(log *slog.Logger, s os.Signal, err error) error {
	cut, failed := "", ""
	switch {
	case errors.Is(err, context.Canceled):
		cut = flagText(err)
	case err != nil:
		failed = flagText(err)
	}
	if s == syscall.SIGTERM {
		level, args := slog.LevelInfo, []any{"signal", s.String()}
		if cut != "" {
			args = append(args, "cut_short", cut)
		}
		if failed != "" {
			level, args = slog.LevelWarn, append(args, "err", failed)
		}
		log.Log(context.Background(), level, "stopped while starting", args...)
		return nil
	}
	msg := s.String() + ": stopped while starting"
	if cut != "" {
		msg += ": " + cut
	}
	if failed != "" {
		msg += "; the start failed too: " + failed
	}
	return &exitError{code: 128 + int(s.(syscall.Signal)), msg: msg}
}

// listenOptions checks the TLS and PROXY protocol flags against the
// addresses and makes what Listen needs of them, and the certificate
// store SIGHUP reloads. Reading the PEM files may wait (see
// certs.ReadPEMContext); ctx ends the wait.
func (cmd *serveCmd) listenOptions(ctx context.Context, eps []endpoint.Endpoint) (endpoint.Options, *certs.Store, error) {
	opts := endpoint.Options{HandshakeTimeout: cmd.HandshakeTimeout, ReusePort: cmd.ReusePort}
	var hosts []string
	tcp := false // a TCP or TLS address, which a PROXY header can come on
	for _, e := range eps {
		tcp = tcp || e.Network == "tcp"
		if e.TLS {
			host, _, _ := net.SplitHostPort(e.Address)
			hosts = append(hosts, host)
		}
	}
	switch {
	case cmd.HandshakeTimeout <= 0:
		return opts, nil, usagef("--handshake-timeout must be more than 0")
	case (cmd.Cert == "") != (cmd.Key == ""):
		return opts, nil, usagef("--cert and --key go together")
	case cmd.Cert != "" && cmd.TLSSelfSigned:
		return opts, nil, usagef("--cert or --tls-self-signed, not both")
	case len(hosts) > 0 && cmd.Cert == "" && !cmd.TLSSelfSigned:
		return opts, nil, usagef("a tls:// address needs --cert and --key, or --tls-self-signed")
	case len(hosts) == 0 && (cmd.Cert != "" || cmd.TLSSelfSigned || cmd.ClientCA != ""):
		return opts, nil, usagef("--cert, --key, --client-ca and --tls-self-signed are for tls:// addresses, and there is none")
	case len(cmd.ProxyFrom) > 0 && !cmd.ProxyProtocol:
		return opts, nil, usagef("--proxy-from needs --proxy-protocol")
	case cmd.ProxyProtocol && !tcp:
		return opts, nil, usagef("--proxy-protocol is for TCP and tls:// addresses, and there is none")
	case cmd.ProxyProtocol && len(cmd.ProxyFrom) == 0:
		// No source trusted: every header refused, none read.
		return opts, nil, usagef("--proxy-protocol needs --proxy-from, the balancers trusted to send a PROXY header (--proxy-from 127.0.0.1, or a CIDR range): with none, every header is refused")
	}
	if cmd.ProxyProtocol {
		opts.Proxy = &endpoint.Proxy{}
		for _, s := range cmd.ProxyFrom {
			p, err := endpoint.ParseTrusted(s)
			if err != nil {
				return opts, nil, usagef("--proxy-from: %v", err)
			}
			opts.Proxy.From = append(opts.Proxy.From, p)
		}
	}
	if len(hosts) == 0 {
		return opts, nil, nil
	}
	var store *certs.Store
	var err error
	if cmd.TLSSelfSigned {
		if store, err = certs.SelfSigned(hosts); err != nil {
			return opts, nil, err
		}
	} else if store, err = certs.Load(ctx, cmd.Cert, cmd.Key); err != nil {
		return opts, nil, pemError(err)
	}
	if opts.TLS, err = certs.ServerConfigContext(ctx, store, cmd.ClientCA); err != nil {
		return opts, nil, pemError(err)
	}
	return opts, store, nil
}

// reloadOnHUP reloads the certificate and key on each SIGHUP, keeping the
// ones in use if the files do not make a certificate, until ctx ends
// (serve's end), which ends a reload that waits on a file too.
func reloadOnHUP(ctx context.Context, hup <-chan os.Signal, store *certs.Store, log *slog.Logger) {
	for {
		select {
		case <-hup:
		case <-ctx.Done():
			return
		}
		if store == nil || !store.FromFiles() {
			log.Info("SIGHUP: no certificate files to reload")
			continue
		}
		if err := store.Reload(ctx); ctx.Err() != nil {
			return // serve stopped: not the reload's failure
		} else if err != nil {
			log.Warn("certificate not reloaded; keeping the one in use", "err", err)
			continue
		}
		logCertificate(log, "certificate reloaded", store, time.Now())
	}
}

// logCertificate logs the certificate a TLS listener now presents, and
// warns if now is outside its dates: clients that check it will refuse
// it. shout serves it all the same, since an expired certificate is also
// what a test of those clients needs.
func logCertificate(log *slog.Logger, msg string, store *certs.Store, now time.Time) {
	subject, names := store.Subject()
	notBefore, notAfter := store.Validity()
	log.Info(msg, "subject", subject, "names", strings.Join(names, ","),
		"not_after", notAfter.UTC().Format(time.RFC3339), "sha256", store.Fingerprint())
	switch {
	case now.After(notAfter):
		log.Warn("the certificate has expired: clients that check it will refuse it",
			"not_after", notAfter.UTC().Format(time.RFC3339))
	case now.Before(notBefore):
		log.Warn("the certificate is not valid yet: clients that check it will refuse it",
			"not_before", notBefore.UTC().Format(time.RFC3339))
	}
}

// isTLS reports whether l serves TLS.
func isTLS(l net.Listener) bool {
	t, ok := l.(interface{ TLS() bool })
	return ok && t.TLS()
}
