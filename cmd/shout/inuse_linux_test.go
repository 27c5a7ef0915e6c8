package main

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"shout/internal/shouttest"
)

// serve --reuse-port on a port no server answers on, held by a connection
// that waits out TIME_WAIT, says what holds it, not that "a shout there"
// must have been started with --reuse-port, or that --admin is not shared
// with the shout this one replaces: there is none.
func TestServeReusePortHeldWithNoServer(t *testing.T) {
	held := shouttest.HeldPort(t)
	inUse := fmt.Sprintf("listen tcp %s: bind: address already in use (no server listens there: a socket that does not listen holds the port, such as a connection that waits out TIME_WAIT, up to a minute, after a server that did not set SO_REUSEADDR hung up first; ss -tan 'sport = :%d' lists such a connection)", held, held.Port)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"tcp://" + held.String()}, "shout: " + inUse + "\n"},
		{[]string{"tcp://127.0.0.1:0", "--admin", held.String()}, "shout: --admin: " + inUse + "\n"},
	} {
		var stdout, stderr strings.Builder
		code := run(context.Background(), append([]string{"serve", "--reuse-port"}, tc.args...), strings.NewReader(""), &stdout, &stderr)
		if code != 1 || stderr.String() != tc.want {
			t.Errorf("serve --reuse-port %v: status %d, stderr %q\n  want 1 and %q", tc.args, code, stderr.String(), tc.want)
		}
	}
}
