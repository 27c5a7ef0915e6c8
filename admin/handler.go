package admin

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Handler serves the admin endpoints: /metrics, /healthz, /readyz and,
// if asked for, /debug/pprof/. It is not ready until SetReady(true).
type Handler struct {
	mux   *http.ServeMux
	state atomic.Int32 // starting, ready or stopping
}

// What SetReady has said: nothing yet (the zero value), true, false.
const (
	starting int32 = iota
	ready
	stopping
)

// NewHandler returns a Handler that serves m's registry on /metrics and,
// if pprof is true, Go's profiles on /debug/pprof/ (they show the
// program's internals and can cost it CPU time: keep them to trusted
// networks).
func NewHandler(m *Metrics, pprofOn bool) *Handler {
	h := &Handler{mux: http.NewServeMux()}
	h.mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	healthz := func(w http.ResponseWriter, _ *http.Request) {
		text(w, http.StatusOK, "ok")
	}
	readyz := func(w http.ResponseWriter, _ *http.Request) {
		// 503 either way before and after ready; the body says which,
		// for whoever reads it (curl, a probe's log): a shout still
		// starting is worth waiting for, one stopping is not.
		switch st := h.state.Load(); {
		case st == starting:
			text(w, http.StatusServiceUnavailable, "not ready: starting")
		case st == stopping:
			text(w, http.StatusServiceUnavailable, "not ready: stopping")
		case !canOpenFile():
			// New clients would wait unaccepted: let the balancer send
			// them elsewhere. /healthz says 200: the process is alive.
			text(w, http.StatusServiceUnavailable, "not ready: out of open files")
		default:
			text(w, http.StatusOK, "ready")
		}
	}
	// OPTIONS too: HAProxy's `option httpchk <uri>` asks with it.
	for _, m := range []string{"GET", "OPTIONS"} {
		h.mux.HandleFunc(m+" /healthz", healthz)
		h.mux.HandleFunc(m+" /readyz", readyz)
	}
	index := "/metrics\n/healthz\n/readyz\n"
	if pprofOn {
		index += "/debug/pprof/\n"
		h.mux.Handle("/debug/pprof/", pprofArgs(pprof.Index))
		h.mux.Handle("/debug/pprof/cmdline", pprofArgs(pprof.Cmdline))
		h.mux.Handle("/debug/pprof/profile", pprofArgs(pprof.Profile))
		h.mux.Handle("/debug/pprof/symbol", pprofArgs(pprof.Symbol))
		h.mux.Handle("/debug/pprof/trace", pprofArgs(pprof.Trace))
	}
	h.mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		text(w, http.StatusOK, index[:len(index)-1])
	})
	return h
}

// SetReady sets what /readyz answers: 200 if ready, else 503 saying
// "not ready: stopping" (before the first call, "not ready: starting").
// Say false as soon as a graceful stop begins, so that a load balancer
// stops sending new clients while the connections it has are drained.
func (h *Handler) SetReady(ok bool) {
	if ok {
		h.state.Store(ready)
	} else {
		h.state.Store(stopping)
	}
}

// ServeHTTP serves the admin endpoints.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// text answers with one line, never cached: a probe must see the state
// of now.
func text(w http.ResponseWriter, code int, s string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	fmt.Fprintln(w, s)
}

// writeTimeout is how long an answer may take to write, beyond the
// seconds a profile asks for: a client that does not read what it asked
// for is dropped then.
var writeTimeout = 30 * time.Second

// writeTime is how long the answer to r may take to write: writeTimeout,
// after the time a profile or trace under /debug/pprof/ takes to make
// (pprofSeconds; a bad ?seconds= is refused at once).
func writeTime(r *http.Request) time.Duration {
	if !strings.HasPrefix(r.URL.Path, "/debug/pprof/") {
		return writeTimeout
	}
	d, err := pprofSeconds(r.URL.Path, r.URL.Query())
	if err != nil {
		return writeTimeout
	}
	return writeTimeout + d
}

// maxPprofSeconds is the longest profile, trace or delta profile the
// admin listener makes. net/http/pprof has no bound, and makes only one
// CPU profile or trace at a time, until its client goes away: an hour's
// (?seconds=3600) kept everyone else's from being made for an hour.
// Five minutes is ten times go tool pprof's 30 s, long enough to catch a
// stall that comes every minute or two; a longer look is several of
// them, each of which leaves the profiler free when it ends.
const maxPprofSeconds = 300

// whyTooLong says why a seconds past maxPprofSeconds is refused, if
// long: "" for one refused for anything else (0, a word), to which it
// would be beside the point.
func whyTooLong(long bool) string {
	if !long {
		return ""
	}
	return " (profiles and traces are made one at a time: ask for several shorter ones)"
}

// pprofSeconds is how long the profile or trace at path takes to make,
// by q's seconds, as net/http/pprof reads them: for /debug/pprof/profile
// 30 s unless asked, for /debug/pprof/trace 1 s, for the others 0 (a
// delta profile when asked). A seconds that net/http/pprof would take
// for its default (0, -1, 1.5, NaN, a word), or that is given twice or
// is past maxPprofSeconds, is an error: the answer would not be what was
// asked for.
func pprofSeconds(path string, q url.Values) (time.Duration, error) {
	vs, ok := q["seconds"]
	switch {
	case !ok && path == "/debug/pprof/profile":
		return 30 * time.Second, nil
	case !ok && path == "/debug/pprof/trace":
		return time.Second, nil
	case !ok:
		return 0, nil
	case len(vs) > 1:
		return 0, errors.New(`"seconds" given more than once`)
	}
	if path == "/debug/pprof/trace" { // seconds may have a fraction
		sec, err := strconv.ParseFloat(vs[0], 64) // (past float64: ±Inf, and an error)
		// (A fraction of a nanosecond makes no time: an empty trace.)
		if err != nil || !(sec > 0 && sec <= maxPprofSeconds) || time.Duration(sec*float64(time.Second)) <= 0 {
			return 0, fmt.Errorf(`invalid value for "seconds": %q; must be a number of seconds, at least 1e-9 and at most %d%s`, vs[0], maxPprofSeconds, whyTooLong(sec > maxPprofSeconds))
		}
		return time.Duration(sec * float64(time.Second)), nil
	}
	sec, err := strconv.ParseInt(vs[0], 10, 64) // (past int64: its bound, and an error)
	if err != nil || sec <= 0 || sec > maxPprofSeconds {
		return 0, fmt.Errorf(`invalid value for "seconds": %q; must be a whole number of seconds, at least 1 and at most %d%s`, vs[0], maxPprofSeconds, whyTooLong(sec > maxPprofSeconds))
	}
	return time.Duration(sec) * time.Second, nil
}

// maxPprofBody is the most of a request's body that /debug/pprof/ reads:
// /debug/pprof/symbol's addresses, which go tool pprof sends for a
// profile without symbols (about 20 bytes each; tens of kilobytes for a
// large profile). Its answer is kept whole until the body has been read,
// a line with a function's name for each address, several times the
// body's size: 180 MB of addresses took shout to a gigabyte.
const maxPprofBody = 256 << 10

// pprofArgs serves a net/http/pprof handler with only the arguments in
// the URL, which writeTime goes by too: not a form in the body (which
// the handlers' FormValue would read, and prefer, up to 10 MB of it, or
// 32 MB of a multipart one), so that the profile made is the one the
// write time was set for. A ?seconds= that pprofSeconds refuses is
// answered 400 at once. A body past maxPprofBody is cut short, and
// /debug/pprof/symbol says so.
func pprofArgs(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if _, err := pprofSeconds(r.URL.Path, q); err != nil {
			text(w, http.StatusBadRequest, err.Error())
			return
		}
		r.Form, r.PostForm = q, url.Values{} // parsed: FormValue reads no body
		r.Body = http.MaxBytesReader(w, r.Body, maxPprofBody)
		h(w, r)
	})
}

// MaxConns is how many connections the admin listener serves at once,
// as LimitListener caps it: far more than the scrapers and probes that
// ask it, and few enough that whoever opens connections to it by the
// thousand cannot take the descriptors the server's clients need.
const MaxConns = 100

// LimitListener caps ln at MaxConns connections at once, for
// HTTPServer's server, whose hooks tell it which connections are being
// answered. With MaxConns open, a new one closes the connection that has
// waited longest on its client (idle, or sending its request slowly, or
// not reading its answer), so that probes and scrapes get through
// whatever holds connections open; past MaxConns being answered, more
// wait unaccepted. It keeps a descriptor spare for a connection that
// comes when the process has none.
func LimitListener(ln net.Listener) net.Listener { return newLimitListener(ln, MaxConns) }

// HTTPServer returns an http.Server for h, to serve on LimitListener(ln),
// with time-outs that keep a slow client from holding a connection while
// there is room: one that sends its request slowly, or does not read the
// answer. The write time is long enough for a CPU profile or trace (30 s
// more than it asks for; the server's WriteTimeout would refuse a profile
// longer than itself). Its errors go to log as warnings, and so does
// reaching MaxConns.
func (h *Handler) HTTPServer(log *slog.Logger) *http.Server {
	var open atomic.Int64
	var full atomic.Bool
	return &http.Server{
		ConnState: func(c net.Conn, s http.ConnState) {
			if lc, ok := c.(*limitConn); ok {
				lc.state(s)
			}
			// Scrapes that time out for no reason an operator can see are
			// worse than a line in the log. Said once until the
			// connections fall to half the cap, not at each churn about it.
			switch s {
			case http.StateNew:
				if open.Add(1) >= MaxConns && full.CompareAndSwap(false, true) {
					log.Warn("admin listener: as many connections open as it serves at once; a new one closes the one that has waited longest on its client", "max", MaxConns)
				}
			case http.StateClosed, http.StateHijacked:
				if open.Add(-1) <= MaxConns/2 {
					full.Store(false)
				}
			}
		},
		ConnContext: connContext,
		// OPTIONS * is answered below: net/http's own answer reads the
		// request's body first, while the connection counts as being
		// answered, so that a body sent slowly held it for ReadTimeout.
		DisableGeneralOptionsHandler: true,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if lc := connOf(r); lc != nil {
				b := &body{c: lc}
				defer func() { lc.done(r.ContentLength-b.n > maxPostHandlerReadBytes) }()
				if r.Body != http.NoBody {
					// On a copy: net/http goes by its own request's body.
					b.ReadCloser = r.Body
					r = r.WithContext(r.Context())
					r.Body = b
				}
			}
			rc := http.NewResponseController(w)
			rc.SetWriteDeadline(time.Now().Add(writeTime(r)))
			// net/http would read a body no handler reads before the
			// first write of an answer longer than its buffer (/metrics
			// is), as the handler runs: a body sent slowly held the
			// connection, being answered, for ReadTimeout. Full duplex, it
			// is read once the handler is done, when the connection
			// waits on its client.
			rc.EnableFullDuplex()
			if r.Method == http.MethodOptions && r.RequestURI == "*" {
				w.Header().Set("Content-Length", "0") // net/http's answer
				return
			}
			h.ServeHTTP(w, r)
		}),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// maxHeaderBytes bounds a request's header: far more than a scraper or
// a probe sends (a bearer token's included), where net/http's default,
// 1 MiB, let MaxConns connections with headers not yet ended hold 100 MiB.
// net/http answers a longer one 431.
const maxHeaderBytes = 16 << 10
