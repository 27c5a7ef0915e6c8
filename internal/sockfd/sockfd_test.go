package sockfd

import (
	"net"
	"testing"
)

func TestControl(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fd := -1
	Control(ln, func(f int) { fd = f })
	if fd < 0 {
		t.Errorf("a TCP listener: f not called")
	}
	ln.Close()
	for _, tc := range []struct {
		name string
		x    any
	}{
		{"closed", ln},
		{"no socket", struct{ net.Listener }{ln}},
		{"nil", nil},
	} {
		Control(tc.x, func(int) { t.Errorf("%s: f called", tc.name) })
	}
}
