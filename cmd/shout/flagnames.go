package main

import (
	"log/slog"

	"shout/internal/named"
)

// flagNames are the flags that set the settings shout's libraries name in
// their texts by their Go names (server.ErrMaxConns says MaxConns):
// shout's user knows the flags. An error the log shows names the flag
// instead, through named.Text; the trace through
// server.NewNamedTraceObserver.
var flagNames = map[string]string{
	// server.Server (shout serve)
	"MaxConns":      "--max-conns",
	"MaxConnsPerIP": "--max-conns-per-ip",
	"SourceRate":    "--source-rate",
}

// flagName is the flag that sets setting, or setting itself if none does.
func flagName(setting string) string {
	if f, ok := flagNames[setting]; ok {
		return f
	}
	return setting
}

// flagText is err's text with the settings it names named by their flags.
func flagText(err error) string { return named.Text(err, flagName) }

// flagAttr is the log's ReplaceAttr: an error it logs (a rejection's
// "why", a failed handshake's "err") names the settings it names by their
// flags, as the operator knows them.
func flagAttr(_ []string, a slog.Attr) slog.Attr {
	if err, ok := a.Value.Any().(error); ok && a.Value.Kind() == slog.KindAny {
		return slog.String(a.Key, flagText(err))
	}
	return a
}
