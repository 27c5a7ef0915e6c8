package shouttest

import (
	"bytes"
	"io"
	"net"
	"testing"
)

// TCPRoundTrips sends a size-byte message (text with ß, whose uppercase
// is longer) to a stream server at addr and reads its reply, b.N times on
// one connection, reporting bytes and allocations: the client side
// allocates nothing, so allocs/op is the server's.
func TCPRoundTrips(b *testing.B, addr string, size int) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	msg := bytes.Repeat([]byte("hello egon 哈哈 straße\n"), size/26+1)[:size]
	got := make([]byte, 2*size)
	want := len(bytes.ReplaceAll(msg, []byte("ß"), []byte("SS")))
	b.SetBytes(int64(size))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Write(msg); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, got[:want]); err != nil {
			b.Fatal(err)
		}
	}
}

// UDPRoundTrips sends a 64-byte datagram to addr and reads the reply, b.N
// times, from one socket.
func UDPRoundTrips(b *testing.B, addr string) {
	c, err := net.Dial("udp", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	msg := []byte("hello egon 哈哈哈 datagram of sixty-four bytes, more or less....")
	got := make([]byte, 1024)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Write(msg); err != nil {
			b.Fatal(err)
		}
		if _, err := c.Read(got); err != nil {
			b.Fatal(err)
		}
	}
}
