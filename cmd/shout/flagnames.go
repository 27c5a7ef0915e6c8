package main

import (
	"context"
	"io"
	"log/slog"

	"shout/internal/fastlog"
	"shout/internal/named"
)

// flagNames are the flags that set the settings shout's libraries name in
// their texts by their Go names (server.ErrMaxConns says MaxConns, a
// client.TLSOptions error TLSOptions.CA): shout's user knows the flags. An
// error a command returns, and one the log shows, name the flag instead,
// through named.Text; the trace through server.NewNamedTraceObserver.
var flagNames = map[string]string{
	// server.Server (shout serve)
	"MaxConns":      "--max-conns",
	"MaxConnsPerIP": "--max-conns-per-ip",
	"SourceRate":    "--source-rate",
	// endpoint.Options (shout serve); the server names Options.Proxy as
	// endpoint's
	"Options.TLS.ClientAuth":      "--client-ca",
	"Options.TLS.ClientCAs":       "--client-ca",
	"Options.Proxy":               "--proxy-protocol",
	"endpoint.Options.Proxy":      "--proxy-protocol",
	"Options.Proxy.From":          "--proxy-from",
	"endpoint.Options.Proxy.From": "--proxy-from",
	// client.TLSOptions (shout connect, shout bench)
	"TLSOptions.CA":       "--ca",
	"TLSOptions.Cert":     "--cert",
	"TLSOptions.Key":      "--key",
	"TLSOptions.Insecure": "--insecure",
	// bench.Config (shout bench)
	"Conns":     "--conns",
	"SourceIPs": "--source-ips",
	"Mode":      "--mode",
}

// flagName is the flag that sets setting, or setting itself if none does.
func flagName(setting string) string {
	if f, ok := flagNames[setting]; ok {
		return f
	}
	return setting
}

// flagText is err's text with the settings it names named by their flags.
func flagText(err error) string {
	if namesLost != nil {
		if lost := named.Check(err); lost != nil {
			namesLost(lost)
		}
	}
	return named.Text(err, flagName)
}

// namesLost, if not nil, is told of an error whose settings flagText
// cannot all name: a wrapper in it rewrote a named error's text and is no
// named.Rewriter. The tests set it to panic, so that every error path they
// take through flagText checks it (a rewriting wrapper once left shout
// saying TLSOptions.CA for --ca, silently).
var namesLost func(error)

// flagged is err said with flagText, and still err for errors.Is and As:
// for an error that a library prints (the prompt's, of a reconnect).
type flagged struct{ err error }

func (f flagged) Error() string { return flagText(f.err) }
func (f flagged) Unwrap() error { return f.err }

// flagAttr is the log's ReplaceAttr: an error it logs (a rejection's
// "why", a failed handshake's "err") names the settings it names by their
// flags, as the operator knows them. It looks at a value's kind before its
// Any, which would box a string, a time or a number.
func flagAttr(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() != slog.KindAny {
		return a
	}
	if err, ok := a.Value.Any().(error); ok {
		return slog.String(a.Key, flagText(err))
	}
	return a
}

// flagHandler is serve's log handler: a line with a value that may be an
// error goes through a handler with flagAttr as its ReplaceAttr, and every
// other line through the same handler without one, which prints it alike.
// slog calls a ReplaceAttr for every attribute of every line, the time,
// level and message too, and prints those three by a slower way when one
// is set (the level through an allocating MarshalText): a connection's
// open and close lines, which hold no error, cost a churned connection
// 17% more of the server's user-space instructions through it.
//
// A line of plain values (a string, a number, a duration, a time), which
// cannot hold an error, plain takes first when it is fastlog's, without
// a look at its values here: fastlog looks at each anyway, as it formats
// it, and declines the line if one is of another kind. Looked at twice,
// a connection's two lines cost it some 500 instructions more.
type flagHandler struct {
	plain, flagged slog.Handler
	quick          *fastlog.Handler // plain, if fastlog's; or nil
	flagAll        bool             // WithAttrs gave a value that may be an error: every line is flagged's
}

// newFlagPair is a flagHandler of plain and flagged.
func newFlagPair(plain, flagged slog.Handler, flagAll bool) *flagHandler {
	quick, _ := plain.(*fastlog.Handler)
	return &flagHandler{plain: plain, flagged: flagged, quick: quick, flagAll: flagAll}
}

// newFlagHandler makes a flagHandler of the text or JSON handler that
// handler makes, with opts, on w: the flagged one with flagAttr as its
// ReplaceAttr, the plain one with none (opts.ReplaceAttr is not used).
// The two write in turn, each a line in one Write.
func newFlagHandler(w io.Writer, opts slog.HandlerOptions, handler func(io.Writer, *slog.HandlerOptions) slog.Handler) slog.Handler {
	w = fastlog.NewLockedWriter(w)
	flagged := opts
	flagged.ReplaceAttr = flagAttr
	opts.ReplaceAttr = nil
	return newFlagPair(handler(w, &opts), handler(w, &flagged), false)
}

func (h *flagHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.plain.Enabled(ctx, l)
}

func (h *flagHandler) Handle(ctx context.Context, r slog.Record) error {
	flag := h.flagAll
	if !flag && h.quick != nil {
		if ok, err := h.quick.HandlePlain(&r); ok {
			return err
		}
	}
	if !flag {
		r.Attrs(func(a slog.Attr) bool {
			flag = mayBeError(a.Value)
			return !flag
		})
	}
	if flag {
		return h.flagged.Handle(ctx, r)
	}
	return h.plain.Handle(ctx, r)
}

func (h *flagHandler) WithAttrs(as []slog.Attr) slog.Handler {
	flagAll := h.flagAll
	for _, a := range as {
		flagAll = flagAll || mayBeError(a.Value)
	}
	return newFlagPair(h.plain.WithAttrs(as), h.flagged.WithAttrs(as), flagAll)
}

func (h *flagHandler) WithGroup(name string) slog.Handler {
	return newFlagPair(h.plain.WithGroup(name), h.flagged.WithGroup(name), h.flagAll)
}

// mayBeError reports whether flagAttr could change v: an Any (an error),
// a LogValuer (it may give one), or a group holding either.
func mayBeError(v slog.Value) bool {
	switch v.Kind() {
	case slog.KindAny, slog.KindLogValuer:
		return true
	case slog.KindGroup:
		for _, a := range v.Group() {
			if mayBeError(a.Value) {
				return true
			}
		}
	}
	return false
}
