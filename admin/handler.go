package admin

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
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
	h.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		text(w, http.StatusOK, "ok")
	})
	h.mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if h.ready.Load() {
			text(w, http.StatusOK, "ready")
			return
		}
		text(w, http.StatusServiceUnavailable, "not ready")
	})
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

// HTTPServer returns an http.Server for h, with time-outs that keep a
// slow client from holding a connection, and a long enough write time for
// a CPU profile or trace (30 s by default, longer if asked). Its errors go
// to log as warnings.
func (h *Handler) HTTPServer(log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}
