package server_test

import (
	"errors"
	"io"
	"net"
	"path/filepath"
	"runtime"
	"testing"

	"shout/server"
)

func TestEngineFor(t *testing.T) {
	loop := server.EngineLoop
	if runtime.GOOS != "linux" {
		loop = server.EngineGoroutine
	}
	if server.EngineUnderTest() == server.EngineGoroutine {
		loop = server.EngineGoroutine // what the tests ask of EngineAuto
	}
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer tcp.Close()
	unix, err := net.Listen("unix", filepath.Join(t.TempDir(), "s"))
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close()
	wrap := func(c net.Conn) (net.Conn, error) { return c, nil }
	log := server.NewLogObserver(discard())
	for _, tc := range []struct {
		name string
		srv  *server.Server
		l    net.Listener
		want server.Engine
		err  bool
	}{
		{"tcp", &server.Server{}, tcp, loop, false},
		{"unix", &server.Server{}, unix, loop, false},
		{"observers", &server.Server{Observer: server.Observers(log, &recorder{})}, tcp, loop, false},
		{"goroutine asked", &server.Server{Engine: server.EngineGoroutine}, tcp, server.EngineGoroutine, false},
		{"wrapped", &server.Server{WrapConn: wrap}, tcp, server.EngineGoroutine, false},
		{"traced", &server.Server{Observer: server.Observers(log, server.NewTraceObserver(io.Discard))}, tcp, server.EngineGoroutine, false},
		{"not a socket listener", &server.Server{}, plainListener{tcp}, server.EngineGoroutine, false},
		{"loop asked, wrapped", &server.Server{Engine: server.EngineLoop, WrapConn: wrap}, tcp, 0, true},
		{"loop asked, traced", &server.Server{Engine: server.EngineLoop, Observer: server.NewTraceObserver(io.Discard)}, tcp, 0, true},
	} {
		got, err := tc.srv.EngineFor(tc.l)
		switch {
		case tc.err && !errors.Is(err, server.ErrEngineUnsupported):
			t.Errorf("%s: %v, %v; want ErrEngineUnsupported", tc.name, got, err)
		case !tc.err && (err != nil || got != tc.want):
			t.Errorf("%s: %v, %v; want %v", tc.name, got, err, tc.want)
		}
	}
}

// A ConnState out of its range names itself as a number, as an Engine
// does, rather than panicking.
func TestStringsOutOfRange(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{server.StateNew.String(), "new"},
		{server.StateRejected.String(), "rejected"},
		{server.ConnState(-1).String(), "ConnState(-1)"},
		{server.ConnState(3).String(), "ConnState(3)"},
		{server.Engine(7).String(), "Engine(7)"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}
