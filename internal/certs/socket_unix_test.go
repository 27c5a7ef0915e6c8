//go:build unix

package certs_test

import (
	"net"
	"path/filepath"
	"strings"
	"testing"

	"shout/internal/certs"
)

// A Unix socket given as a PEM file says it is one: it cannot be opened,
// and the system's words for that were "--cert: open /run/x.sock: no
// such device or address".
func TestReadPEMSocket(t *testing.T) {
	p := filepath.Join(t.TempDir(), "cert.sock")
	l, err := net.Listen("unix", p)
	if err != nil {
		t.Skip("no Unix sockets here:", err)
	}
	defer l.Close()
	_, err = certs.ReadPEM("--cert", p)
	if want := "--cert " + p + ": a socket, not a file"; err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("got %v, want it to begin %q", err, want)
	}
}
