// Package bench loads an uppercase (or echo) server and checks every
// reply: closed-loop pipelining or an open-loop rate over TCP, TLS or
// Unix sockets, sequence-numbered datagrams over UDP, a new connection
// per message (Config.Churn), latency in HdrHistograms.
//
//	rep, err := bench.Run(ctx, bench.Config{Endpoint: ep, Conns: 100, Depth: 4})
//	// err: the run could not start; rep: what it measured
//
// Texts, the report's and Run's errors alike, name the settings by their
// Go names ("run bench with Mode echo", "use fewer Conns"); a program
// whose users set them otherwise (shout bench's --mode) names them its
// own way in the report with Report.NameSettings. Config has no hook for
// it, and stays comparable with ==.
//
// Every reply is compared, byte for byte, with what golang.org/x/text
// (cases.Upper) or the standard library (unicode.ToUpper per rune)
// computes in the chosen mode, independently of shout's own engine
// (package upper), so a server that maps "ß" to "ß" instead of "SS", cuts
// messages at 1024 bytes, or mangles a character split across reads is
// caught, not just timed, and so is a bug in shout's engine.
//
// # Parts
//
// Run (bench.go) checks the Config, computes the messages and their
// expected replies (message.go, reference.go) and starts a driver. On
// Linux, plain TCP and Unix connections are driven by a few epoll loops
// (loop_linux.go), so tens of thousands fit; TLS connections, and all
// streams elsewhere, by a writer and a reader goroutine each
// (stream.go); churn by a worker for each connection open at once
// (churn.go); UDP by a sender and a reader for each socket
// (datagram.go). The Report's text, JSON and HTML forms are written in
// report.go and html.go.
package bench
