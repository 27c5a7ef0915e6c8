// Package admin is shout's admin listener: Prometheus metrics of what a
// server does, and the endpoints that a load balancer and an operator ask.
//
// Metrics is a server.Observer (and a server.ReplyObserver) that counts
// connections, bytes, messages and datagrams in a private registry, beside
// the Go runtime's and the process's own metrics and shout_build_info.
// Combine it with the log through server.Observers:
//
//	m := admin.NewMetrics(admin.Config{Version: "v1.2.3", LogDropped: logs.Dropped})
//	srv := &server.Server{Observer: server.Observers(server.NewLogObserver(log), m)}
//	h := admin.NewHandler(m, false)
//	go h.HTTPServer(log).Serve(admin.LimitListener(adminListener))
//	h.SetReady(true) // serving: /readyz says 200
//	...
//	h.SetReady(false) // a graceful stop begins: /readyz says 503 (not ready: stopping) at once
//	srv.Shutdown(ctx)
//
// The Handler serves:
//
//	/metrics        the Prometheus text format
//	/healthz        200 while the process lives
//	/readyz         200 while it takes new clients, 503 before and once a stop begins,
//	                and while the process is out of open files
//	/debug/pprof/   Go's profiles, only if asked for
//
// The metrics are shout's (shout_*), and their HELP texts name the flags
// of shout serve that bear on them (--proxy-protocol, --source-rate), not
// the Go settings behind those: HELP is what an operator reads beside a
// graph, of the binary that exports the metrics, and it is fixed when the
// metrics are made, where an error's text can be named otherwise by the
// program that shows it.
//
// LimitListener keeps probes and scrapes getting through: whatever holds
// its connections open while waiting on their clients makes room for a
// new one, and a spare descriptor answers one even when the process has
// none.
//
// Counting a read, a reply or a datagram costs two atomic adds, with no
// label looked up and nothing allocated, on a cache line that one
// connection (or datagram worker) mostly has to itself: the counts are
// spread over stripes and added up at each scrape, so that CPUs counting
// at once do not queue for one line. A scrape reads the counts in the
// order opposite to a connection's or a datagram's life (closed before
// open before accepted; dropped and answered before received), so that
// it agrees with itself however fast they come and go.
package admin
