//go:build unix

package server_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"testing"
	"time"

	"shout/internal/shouttest"
	"shout/server"
)

// A graceful stop answers the clients whose connections still waited in
// the listener's queue, not yet accepted, when it came: their connect had
// completed and they had sent, so closing the listener with them in it
// would reset them (as net/http's Shutdown does). This is a rolling
// restart's lot: clients that connect as SIGTERM comes. Over TCP and over
// a Unix socket, with each driver.
func TestShutdownAnswersQueuedClients(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network, func(t *testing.T) {
			addr := "127.0.0.1:0"
			if network == "unix" {
				addr = filepath.Join(t.TempDir(), "s")
			}
			ln, err := net.Listen(network, addr)
			if err != nil {
				t.Fatal(err)
			}
			srv := &server.Server{Logger: new(shouttest.Log).Logger()}
			held := make(chan struct{})
			srv.HoldAccepts(func(net.Listener) { close(held) })
			served := make(chan error, 1)
			go func() { served <- srv.Serve(ln) }()
			defer srv.Close()
			select {
			case <-held:
			case err := <-served:
				t.Fatalf("Serve: %v", err)
			}

			const n = 8
			clients := make([]net.Conn, n)
			for i := range clients {
				c := shouttest.Dial(t, network, ln.Addr().String(), bound)
				if _, err := fmt.Fprintf(c, "queued %d\n", i); err != nil {
					t.Fatal(err)
				}
				clients[i] = c
			}
			// Every connect has completed: they all wait in the queue.
			ctx, cancel := context.WithTimeout(context.Background(), bound)
			defer cancel()
			stopped := make(chan error, 1)
			go func() { stopped <- srv.Shutdown(ctx) }()
			for i, c := range clients {
				got, err := io.ReadAll(c) // until the server's end of file
				if want := fmt.Sprintf("QUEUED %d\n", i); err != nil || string(got) != want {
					t.Errorf("client %d: got %q, %v; want %q, then end of file", i, got, err, want)
				}
				c.Close() // the server's linger ends on this end of file
			}
			if err := <-stopped; err != nil {
				t.Errorf("Shutdown: %v", err)
			}
			if err := <-served; err != server.ErrServerClosed {
				t.Errorf("Serve: %v, want ErrServerClosed", err)
			}
			if _, err := net.DialTimeout(network, ln.Addr().String(), time.Second); err == nil {
				t.Error("still accepting after Shutdown")
			}
		})
	}
}
