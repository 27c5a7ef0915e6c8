package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"
)

// TestCompletionProtocol: with COMP_LINE set, as bash, zsh (bashcompinit)
// and the fish script set it, shout prints the words that complete the
// line's last one, and runs no command.
func TestCompletionProtocol(t *testing.T) {
	for _, tc := range []struct {
		line string
		want []string
	}{
		{"shout ", []string{"bench", "completion", "connect", "help", "serve", "version"}},
		{"shout help s", []string{"serve"}},
		{"shout help serve ", nil}, // help takes one command
		{"shout be", []string{"bench"}},
		{"shout serve --log-format ", []string{"json", "text"}},
		{"shout serve 127.0.0.1:0 --max-c", []string{"--max-conns", "--max-conns-per-ip"}},
		{"shout connect --re", []string{"--reconnect", "--retries"}},
		{"shout bench --ht", []string{"--html"}},
		{"shout bench --mode ", []string{"ascii", "echo", "simple", "upper"}},
		{"shout bench --mode e", []string{"echo"}},
		{"shout completion ", []string{"bash", "fish", "zsh"}},
		{"shout bench --nonsense", nil},
	} {
		t.Run(tc.line, func(t *testing.T) {
			t.Setenv("COMP_LINE", tc.line)
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), nil, strings.NewReader(""), &stdout, &stderr)
			got := strings.Fields(stdout.String())
			slices.Sort(got)
			if code != 0 || !slices.Equal(got, tc.want) || stderr.Len() > 0 {
				t.Errorf("COMP_LINE=%q: status %d, completions %q, stderr %q; want 0, %q, nothing",
					tc.line, code, got, stderr.String(), tc.want)
			}
		})
	}
}

// TestCompletionFileFlags: the flags that take a file name complete file
// names (they completed nothing).
func TestCompletionFileFlags(t *testing.T) {
	t.Chdir(t.TempDir())
	for _, name := range []string{"report.html", "cert.pem"} {
		if err := os.WriteFile(name, nil, 0o666); err != nil {
			t.Fatal(err)
		}
	}
	for _, line := range []string{
		"shout bench --html ", "shout bench --ca ", "shout bench --cert ", "shout bench --key ",
		"shout connect --history ", "shout connect --ca ", "shout connect --cert ", "shout connect --key ",
		"shout serve --cert ", "shout serve --key ", "shout serve --client-ca ",
	} {
		t.Setenv("COMP_LINE", line)
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), nil, strings.NewReader(""), &stdout, &stderr)
		got := strings.Fields(stdout.String())
		if code != 0 || !slices.Contains(got, "cert.pem") || !slices.Contains(got, "report.html") {
			t.Errorf("COMP_LINE=%q: status %d, completions %q, stderr %q; want 0 and the two files", line, code, got, stderr.String())
		}
	}
}

// TestCompletionScripts: each shell's script runs the shout that printed
// it, by its absolute path, quoted.
func TestCompletionScripts(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for shell, want := range map[string]string{
		"bash": "complete -C " + shellQuote(exe) + " shout\n",
		"zsh":  "\nautoload -U +X bashcompinit && bashcompinit\ncomplete -C " + shellQuote(exe) + " shout\n",
		"fish": "\n    " + shellQuote(exe) + "\nend\ncomplete -f -c shout -a \"(__complete_shout)\"\n",
	} {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), []string{"completion", shell}, strings.NewReader(""), &stdout, &stderr)
		if code != 0 || !strings.HasSuffix(stdout.String(), want) {
			t.Errorf("shout completion %s: status %d, script %q; want 0 and one ending %q", shell, code, stdout.String(), want)
		}
	}
	if got := shellQuote(`/it's here/shout`); got != `'/it'\''s here/shout'` {
		t.Errorf("shellQuote: got %s", got)
	}
}

// TestCompletionShells sources each shell's script in an interactive
// shell on a terminal and presses Tab: a flag is completed, then its
// value. bash is needed; zsh and fish are tried when installed.
func TestCompletionShells(t *testing.T) {
	for _, sh := range []struct {
		name   string
		args   []string
		source string // the script into this shell, as the README says
	}{
		{"bash", []string{"--norc", "--noprofile", "-i"}, "source <(shout completion bash)"},
		{"zsh", []string{"-f", "-i"}, "source <(shout completion zsh)"},
		{"fish", []string{"--no-config", "-i"}, "shout completion fish | source"},
	} {
		t.Run(sh.name, func(t *testing.T) {
			path, err := exec.LookPath(sh.name)
			if err != nil {
				if sh.name == "bash" {
					t.Fatal("no bash")
				}
				t.Skipf("SKIP: %s is not installed", sh.name)
			}
			cmd := exec.Command(path, sh.args...)
			cmd.Env = append(os.Environ(), "TERM=dumb", "PS1=$ ", "INPUTRC=/dev/null", "HISTFILE=/dev/null",
				"HOME="+t.TempDir(), "XDG_CONFIG_HOME="+t.TempDir(), "XDG_DATA_HOME="+t.TempDir())
			f, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 24, Cols: 120})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { cmd.Process.Kill(); f.Close() })
			scr := newScreen(f)

			f.WriteString(sh.source + "; echo sourced\r")
			// zsh's script runs compinit, which a bare zsh has not: it
			// scans every completion function, seconds on a busy machine.
			scr.expectWithin(t, "\nsourced", time.Minute)
			f.WriteString("shout bench --mo\t")
			scr.expect(t, "--mode ")
			f.WriteString("si\t")
			scr.expect(t, "simple ")
			f.WriteString("\x15exit\r") // Ctrl-U: clear the line
			waitExit(t, cmd)
		})
	}
}

// shout completion without its shell says which it takes, as a usage
// error: kong said only `expected "<shell>"`.
func TestCompletionWithoutShellSaysWhich(t *testing.T) {
	var stdout, stderr strings.Builder
	code := run(context.Background(), []string{"completion"}, strings.NewReader(""), &stdout, &stderr)
	want := "shout: completion needs its <shell> argument: bash, zsh or fish\nRun 'shout completion --help' for usage.\n"
	if code != 2 || stderr.String() != want || stdout.Len() > 0 {
		t.Errorf("shout completion: status %d, stderr %q, stdout %q; want 2, %q, nothing", code, stderr.String(), stdout.String(), want)
	}
}
