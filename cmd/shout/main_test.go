package main

import (
	"context"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

// commands are the programs this test binary also is, on $PATH.
var commands = map[string]func(){"shout": main}

// TestMain makes this test binary also the shout command, on $PATH, for
// the scripts and the process tests.
func TestMain(m *testing.M) {
	testscript.Main(m, commands)
}

func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{Dir: "testdata/script", Cmds: scriptCmds})
}

// A usage error points to the help of the command it was made in: it
// pointed to shout's own, which lists the commands and not their flags.
func TestUsageErrorPointsToTheCommandsHelp(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"serve", "--bogus"}, "Run 'shout serve --help' for usage.\n"},
		{[]string{"bench", "127.0.0.1:1", "--conns", "x"}, "Run 'shout bench --help' for usage.\n"},
		{[]string{"connect", "--timeout", "x"}, "Run 'shout connect --help' for usage.\n"},
		{[]string{"nosuchcommand"}, "Run 'shout --help' for usage.\n"},
	} {
		var stdout, stderr strings.Builder
		if code := run(context.Background(), tc.args, strings.NewReader(""), &stdout, &stderr); code != 2 || !strings.HasSuffix(stderr.String(), tc.want) {
			t.Errorf("shout %s: status %d, %q; want 2 and %q", strings.Join(tc.args, " "), code, stderr.String(), tc.want)
		}
	}
}
