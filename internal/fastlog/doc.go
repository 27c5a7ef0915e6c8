// Package fastlog is slog's text and JSON handlers, made cheap for the
// lines a server writes most: a record of plain values (strings,
// integers, floats, booleans, durations and times) is formatted here,
// byte for byte as slog.TextHandler or slog.JSONHandler would write it,
// and anything else (a value of another kind, a group, WithAttrs or
// WithGroup, a ReplaceAttr or AddSource in the options, a time whose
// year is not four digits, a float JSON has no number for) goes to slog's
// handler itself.
//
// Through slog's general path a churned connection's two log lines, open
// and close, cost about 14,500 user-space instructions in text, more than
// half of the 24,400 shout serve spent on such a connection: it looks
// each key and value over for characters to quote or escape through a
// function call a byte, and formats every line's time from scratch. Here
// a byte is looked up in a table, and the date, the time of day and the
// zone are formatted once a second; the two lines cost about 6,800. In
// time, through shout serve's asynchronous log, 1.9 µs a connection
// became 1.1 µs (BENCHMARKS.md, stop 54). In JSON the two lines cost
// slog 15,000 instructions and fastlog 7,600 (stop 55).
//
//	h := fastlog.NewJSONHandler(os.Stderr, nil) // as slog.NewJSONHandler
//	log := slog.New(h)
package fastlog
