package main

import (
	"testing"
	"time"

	"github.com/alecthomas/kong"
)

func TestServeFlagsMakeServer(t *testing.T) {
	tests := []struct {
		args   []string
		perIP  int
		linger time.Duration
	}{
		{nil, 1000, 2 * time.Second},
		{[]string{"--max-conns-per-ip=0", "--linger=0"}, 0, -1}, // no limit; close at once
		{[]string{"--max-conns-per-ip=3", "--linger=250ms"}, 3, 250 * time.Millisecond},
	}
	for _, tc := range tests {
		var c cli
		parser, err := kong.New(&c)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := parser.Parse(append([]string{"serve"}, tc.args...)); err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		srv := c.Serve.server(nil, nil)
		if srv.MaxConnsPerIP != tc.perIP || srv.Linger != tc.linger {
			t.Errorf("%v: MaxConnsPerIP %d, Linger %v; want %d, %v", tc.args, srv.MaxConnsPerIP, srv.Linger, tc.perIP, tc.linger)
		}
	}
}
