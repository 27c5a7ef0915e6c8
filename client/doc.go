// Package client talks to shout, or to any line-echo server, the way the
// lesson's client does, made real: Dial connects with errors a person can
// read, and DialTLS also shakes hands; Pipe streams a file through a
// stream connection at full speed, both ways at once; Datagrams sends one
// datagram per line and waits for each reply with a timeout and retries;
// Terminal is the interactive loop with a prompt, line editing and
// history; Trace wraps a connection to print every socket call (shout
// connect --trace).
package client
