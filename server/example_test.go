package server_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"

	"shout/server"
)

// Serve returns ErrServerClosed as soon as Shutdown begins; it is
// Shutdown's return that says every connection has been answered and
// closed.
func ExampleServer_Shutdown() {
	srv := &server.Server{Logger: slog.New(slog.DiscardHandler)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	io.WriteString(c, "hello")
	reply := make([]byte, 5)
	io.ReadFull(c, reply)
	fmt.Printf("%s\n", reply)

	stopped := make(chan error, 1)
	go func() { stopped <- srv.Shutdown(context.Background()) }()
	fmt.Println("Serve:", <-served)
	rest, _ := io.ReadAll(c) // end of file: the server has shut its side
	fmt.Printf("after the reply: %q\n", rest)
	c.Close() // the graceful close waits for the client's end
	fmt.Println("Shutdown:", <-stopped)
	fmt.Println("Serve again:", srv.Serve(ln))
	// Output:
	// HELLO
	// Serve: server: closed
	// after the reply: ""
	// Shutdown: <nil>
	// Serve again: server: closed
}
