package admin

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/net/netutil"
)

// Handler serves the admin endpoints: /metrics, /healthz, /readyz and,
// if asked for, /debug/pprof/. It is not ready until SetReady(true).
type Handler struct {
	mux   *http.ServeMux
	ready atomic.Bool
}

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
		if h.ready.Load() {
			text(w, http.StatusOK, "ready")
			return
		}
		text(w, http.StatusServiceUnavailable, "not ready")
	}
	// OPTIONS too: HAProxy's `option httpchk <uri>` asks with it.
	for _, m := range []string{"GET", "OPTIONS"} {
		h.mux.HandleFunc(m+" /healthz", healthz)
		h.mux.HandleFunc(m+" /readyz", readyz)
	}
	index := "/metrics\n/healthz\n/readyz\n"
	if pprofOn {
		index += "/debug/pprof/\n"
		h.mux.HandleFunc("/debug/pprof/", pprof.Index)
		h.mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		h.mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		h.mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		h.mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	h.mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		text(w, http.StatusOK, index[:len(index)-1])
	})
	return h
}

// SetReady sets what /readyz answers: 200 if ready, else 503. Say false
// as soon as a graceful stop begins, so that a load balancer stops sending
// new clients while the connections it has are drained.
func (h *Handler) SetReady(ready bool) { h.ready.Store(ready) }

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
// after the seconds (?seconds=) a profile or trace under /debug/pprof/
// takes to make (a CPU profile's are 30 unless asked).
func writeTime(r *http.Request) time.Duration {
	if !strings.HasPrefix(r.URL.Path, "/debug/pprof/") {
		return writeTimeout
	}
	sec, err := strconv.ParseFloat(r.URL.Query().Get("seconds"), 64)
	if err != nil && r.URL.Path == "/debug/pprof/profile" {
		sec = 30
	}
	if !(sec > 0) {
		return writeTimeout
	}
	return writeTimeout + time.Duration(min(sec, 1e6)*float64(time.Second))
}

// MaxConns is how many connections the admin listener serves at once,
// as LimitListener caps it: far more than the scrapers and probes that
// ask it, and few enough that whoever opens connections to it by the
// thousand cannot take the descriptors the server's clients need.
const MaxConns = 100

// LimitListener caps ln at MaxConns connections at once. Those past it
// wait, unaccepted, in the kernel's queue (costing no descriptor) until
// one closes: an idle one does after HTTPServer's time-outs.
func LimitListener(ln net.Listener) net.Listener { return netutil.LimitListener(ln, MaxConns) }

// HTTPServer returns an http.Server for h, with time-outs that keep a
// slow client from holding a connection: one that sends its request
// slowly, or does not read the answer. The write time is long enough for
// a CPU profile or trace (30 s more than it asks for; the server's
// WriteTimeout would refuse a profile longer than itself). Its errors go
// to log as warnings, and so does reaching MaxConns: serve it on
// LimitListener(ln).
func (h *Handler) HTTPServer(log *slog.Logger) *http.Server {
	var open atomic.Int64
	var full atomic.Bool
	return &http.Server{
		// Scrapes that time out for no reason an operator can see are
		// worse than a line in the log. Said once until the connections
		// fall to half the cap, not at each churn about it.
		ConnState: func(_ net.Conn, s http.ConnState) {
			switch s {
			case http.StateNew:
				if open.Add(1) >= MaxConns && full.CompareAndSwap(false, true) {
					log.Warn("admin listener: as many connections open as it serves at once; more wait until one closes", "max", MaxConns)
				}
			case http.StateClosed, http.StateHijacked:
				if open.Add(-1) <= MaxConns/2 {
					full.Store(false)
				}
			}
		},
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.NewResponseController(w).SetWriteDeadline(time.Now().Add(writeTime(r)))
			h.ServeHTTP(w, r)
		}),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}
