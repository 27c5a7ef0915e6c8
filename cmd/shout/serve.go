package main

import (
	"cmp"
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
	SourceRate      int           `default:"8388608" help:"Bytes of UDP replies per second for each datagram source (address and port), with a burst of one second's worth; more is dropped. 0: no limit."`

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
		SourceRate:   cmp.Or(cmd.SourceRate, -1), // 0 is no limit here, the default there
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
	var listeners []net.Listener
	var packets []net.PacketConn
	closeAll := func() {
		for _, l := range listeners {
			l.Close()
		}
		for _, p := range packets {
			p.Close()
		}
	}
	listening := func(network string, addr net.Addr) {
		e := endpoint.Endpoint{Network: network, Address: addr.String()}
		log.Info("listening on "+e.String(), "network", e.Network, "addr", e.Address)
	}
	for i := 0; i < len(eps); i++ {
		e := eps[i]
		var err error
		switch {
		case e.Network == "tcp" && i+1 < len(eps) && eps[i+1] == (endpoint.Endpoint{Network: "udp", Address: e.Address}):
			// host:port for both: the same port, even when it is 0.
			var ln net.Listener
			var pc net.PacketConn
			if ln, pc, err = endpoint.ListenPair(e.Address); err == nil {
				listeners, packets = append(listeners, ln), append(packets, pc)
				listening("tcp", ln.Addr())
				listening("udp", pc.LocalAddr())
				i++
			}
		case e.Network == "udp":
			var pc net.PacketConn
			if pc, err = net.ListenPacket("udp", e.Address); err == nil {
				packets = append(packets, pc)
				listening("udp", pc.LocalAddr())
			}
		default:
			if e.Network == "unix" {
				removeStaleSocket(e.Address)
			}
			var ln net.Listener
			if ln, err = net.Listen(e.Network, e.Address); err == nil {
				listeners = append(listeners, ln)
				listening(e.Network, ln.Addr())
			}
		}
		if err != nil {
			closeAll()
			return err
		}
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

// removeStaleSocket removes a Unix socket file that no server answers on,
// left by one that was killed, so that a restart can listen there again.
func removeStaleSocket(path string) {
	fi, err := os.Stat(path)
	if err != nil || fi.Mode()&os.ModeSocket == 0 {
		return
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return
	}
	os.Remove(path)
}
