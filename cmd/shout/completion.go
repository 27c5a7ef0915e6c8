package main

import (
	"fmt"
	"os"
	"strings"
)

// completionCmd prints the script that makes a shell complete shout's
// commands, flags and flag values. The completing itself is kongplete's
// (posener/complete's COMP_LINE protocol, in run): the shell runs shout
// with the command line in COMP_LINE and offers what it prints.
type completionCmd struct {
	Shell string `arg:"" enum:"bash,zsh,fish" help:"bash, zsh or fish."`
}

// completionScripts ask the shell to run shout (%[1]s, quoted) to complete
// the command shout. They are kongplete's, but for a shell named rather
// than the login shell guessed, and zsh's loads compinit, without which
// bashcompinit's complete fails (compdef: command not found).
var completionScripts = map[string]string{
	"bash": "complete -C %[1]s shout\n",
	"zsh": `(( $+functions[compdef] )) || { autoload -U +X compinit && compinit }
autoload -U +X bashcompinit && bashcompinit
complete -C %[1]s shout
`,
	"fish": `function __complete_shout
    set -lx COMP_LINE (commandline -cp)
    test -z (commandline -ct)
    and set COMP_LINE "$COMP_LINE "
    %[1]s
end
complete -f -c shout -a "(__complete_shout)"
`,
}

func (cmd *completionCmd) Run(std *stdio) error {
	// The absolute path of this shout, so completion works when it is not
	// on $PATH, as kongplete does.
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("completion: cannot find shout's own path: %w", err)
	}
	fmt.Fprintf(std.stdout, completionScripts[cmd.Shell], shellQuote(exe))
	return nil
}

// shellQuote quotes s for bash, zsh and fish: in single quotes, each
// single quote closed, escaped and reopened.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
