package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"shout/internal/endpoint"
	"shout/server"
)

type serveCmd struct {
	Addrs []string `arg:"" optional:"" name:"addr" default:"127.0.0.1:8080" help:"Where to listen: host:port (TCP and UDP), tcp://host:port, udp://host:port, unix:///path. Port 0 picks a free port."`

	Mode string `enum:"upper,simple,ascii,echo" default:"upper" help:"Mapping: upper (full Unicode, as Python's str.upper), simple (one rune for one), ascii (a-z only, as bytes.upper), echo (none)."`
	Lang string `help:"Language tailoring for upper and simple: tr and az (i → İ), el (Greek accents dropped; looks ahead one character)." placeholder:"TAG"`

	MaxConns        int           `default:"10000" help:"Most TCP and Unix connections served at once; more are closed as soon as accepted. 0: no limit."`
	IdleTimeout     time.Duration `default:"5m" help:"Close a connection that sends nothing for this long. 0: never."`
	WriteTimeout    time.Duration `default:"30s" help:"Drop a client that stops reading its replies for this long. 0: never."`
	ShutdownTimeout time.Duration `default:"10s" help:"On SIGINT or SIGTERM, answer what has arrived, then close connections still busy after this long. A second signal stops at once."`

	LogFormat string `enum:"text,json" default:"text" help:"Log format on stderr: text or json."`
	Verbose   bool   `short:"v" help:"Also log every message received (quoted, truncated)."`
}

func (cmd *serveCmd) Run(std *stdio) error {
	// Catch signals before the first "listening on" line: whoever reads it
	// may signal at once, and must get a graceful stop.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)

	t, err := transformer(cmd.Mode, cmd.Lang)
	if err != nil {
		return err
	}
	level := slog.LevelInfo
	if cmd.Verbose {
		level = slog.LevelDebug
	}
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(std.stderr, opts)
	if cmd.LogFormat == "json" {
		h = slog.NewJSONHandler(std.stderr, opts)
	}
	log := slog.New(h)

	srv := &server.Server{
		Transformer:  t,
		MaxConns:     cmd.MaxConns,
		IdleTimeout:  cmd.IdleTimeout,
		WriteTimeout: cmd.WriteTimeout,
		Logger:       log,
	}
	var eps []endpoint.Endpoint
	for _, a := range cmd.Addrs {
		e, err := endpoint.Parse(a, "tcp", "udp")
		if err != nil {
			return err
		}
		eps = append(eps, e...)
	}
	// Listen everywhere before serving anywhere, so a bad address fails
	// the start instead of leaving half a server running.
	listeners, packets, err := endpoint.Listen(eps)
	if err != nil {
		return err
	}
	for _, a := range listenAddrs(listeners, packets) {
		e := endpoint.Endpoint{Network: a.Network(), Address: a.String()}
		log.Info("listening on "+e.String(), "network", e.Network, "addr", e.Address)
	}

	errs := make(chan error, len(listeners)+len(packets))
	for _, l := range listeners {
		go func() { errs <- srv.Serve(l) }()
	}
	for _, p := range packets {
		go func() { errs <- srv.ServePacket(p) }()
	}
	select {
	case err := <-errs: // a listener failed for good: stop the rest
		srv.Close()
		return err
	case s := <-sigs:
		log.Info("shutting down", "signal", s.String(), "timeout", cmd.ShutdownTimeout)
	case <-std.ctx.Done():
		log.Info("shutting down", "reason", context.Cause(std.ctx).Error(), "timeout", cmd.ShutdownTimeout)
	}
	ctx, cancel := context.WithTimeout(context.Background(), cmd.ShutdownTimeout)
	defer cancel()
	go func() {
		select {
		case s := <-sigs:
			log.Warn("second signal: stopping now", "signal", s.String())
			cancel()
		case <-ctx.Done():
		}
	}()
	if err := srv.Shutdown(ctx); err != nil {
		log.Warn("closed connections still busy", "reason", shutdownReason(err))
	}
	log.Info("stopped")
	return nil
}

func shutdownReason(err error) string {
	if errors.Is(err, context.DeadlineExceeded) {
		return "shutdown timeout"
	}
	return "second signal"
}

// listenAddrs is where serve listens, streams first.
func listenAddrs(listeners []net.Listener, packets []net.PacketConn) []net.Addr {
	var addrs []net.Addr
	for _, l := range listeners {
		addrs = append(addrs, l.Addr())
	}
	for _, p := range packets {
		addrs = append(addrs, p.LocalAddr())
	}
	return addrs
}
