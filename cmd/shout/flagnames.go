package main

import (
	"log/slog"

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
// flags, as the operator knows them.
//
// slog calls it for every attribute of every line, the time, level and
// message too, so it must cost a line nothing: it looks at a value's kind
// before its Any, which boxes a string, a time or a number (nine
// allocations a connection for the open and close lines). The level it
// hands back as its text, which is how both handlers print a Level: slog
// gives it as an Any when ReplaceAttr is set, and the text handler then
// allocates its MarshalText.
func flagAttr(groups []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() != slog.KindAny {
		return a
	}
	switch v := a.Value.Any().(type) {
	case error:
		return slog.String(a.Key, flagText(v))
	case slog.Level:
		if len(groups) == 0 && a.Key == slog.LevelKey {
			return slog.String(a.Key, v.String())
		}
	}
	return a
}
