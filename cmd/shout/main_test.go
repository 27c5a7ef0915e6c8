package main

import (
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
