package bench

import (
	"errors"
	"io"
	"net"
	"testing"
)

// wasReset tells a reset whose error a write took from a clean close:
// both leave a read the end of file. serverClosed tells the clean close.
func TestWasReset(t *testing.T) {
	for _, reset := range []bool{false, true} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		s, err := ln.Accept()
		ln.Close()
		if err != nil {
			t.Fatal(err)
		}
		if reset {
			s.(*net.TCPConn).SetLinger(0)
		}
		s.Close()
		if reset {
			// The write takes the reset's error, once it has come.
			for i := 0; i < 1000; i++ {
				if _, err := c.Write([]byte("x")); err != nil {
					break
				}
			}
		}
		if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
			t.Errorf("reset %v: read %v; want end of file", reset, err)
		}
		if got := wasReset(c); got != reset {
			t.Errorf("reset %v: wasReset says %v", reset, got)
		}
		if got := serverClosed(c); got == reset {
			t.Errorf("reset %v: serverClosed says %v", reset, got)
		}
		c.Close()
	}
}
