// Package bench loads an uppercase (or echo) server and checks every
// reply: closed-loop pipelining or an open-loop rate over TCP or Unix
// sockets, sequence-numbered datagrams over UDP, latency in HdrHistograms.
//
// Every reply is compared, byte for byte, with what golang.org/x/text
// (cases.Upper) or the standard library (unicode.ToUpper per rune)
// computes in the chosen mode, independently of shout's own engine
// (package upper), so a server that maps "ß" to "ß" instead of "SS", cuts
// messages at 1024 bytes, or mangles a character split across reads is
// caught, not just timed, and so is a bug in shout's engine.
package bench
