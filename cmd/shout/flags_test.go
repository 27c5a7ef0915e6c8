package main

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/alecthomas/kong"
)

// TestREADMEFlags checks that every flag the README documents for a
// command is one kong knows for it, so a field whose derived name differs
// from the documented one (SourceIPs became --source-i-ps) fails here.
func TestREADMEFlags(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var c cli
	parser, err := kong.New(&c, kong.Name("shout"), kong.DefaultEnvars("SHOUT"))
	if err != nil {
		t.Fatal(err)
	}
	sections := []struct{ cmd, from, to string }{
		{"serve", "## Serve", "## Talk to it"},
		{"connect", "## Talk to it", "## Measure it"},
		{"bench", "## Measure it", "## In a container"}, // podman's flags follow
	}
	flagRE := regexp.MustCompile("(?:^|[\\s`(])(--[a-z][a-z0-9-]*)")
	for _, s := range sections {
		t.Run(s.cmd, func(t *testing.T) {
			text := string(readme)
			i, j := strings.Index(text, s.from), strings.Index(text, s.to)
			if i < 0 || j < i {
				t.Fatalf("README has no section %q before %q", s.from, s.to)
			}
			text = text[i:j]
			var node *kong.Node
			for _, n := range parser.Model.Children {
				if n.Name == s.cmd {
					node = n
				}
			}
			if node == nil {
				t.Fatalf("no command %q", s.cmd)
			}
			var known, envs []string
			for _, group := range node.AllFlags(false) {
				for _, f := range group {
					known = append(known, "--"+f.Name)
					envs = append(envs, f.Envs...)
				}
			}
			found := 0
			for _, m := range flagRE.FindAllStringSubmatch(text, -1) {
				found++
				name := m[1]
				if !slices.Contains(known, name) {
					t.Errorf("the README documents %s for shout %s; kong knows %v", name, s.cmd, known)
					continue
				}
				env := "SHOUT_" + strings.ToUpper(strings.ReplaceAll(name[2:], "-", "_"))
				if name != "--help" && !slices.Contains(envs, env) {
					t.Errorf("%s: environment variable %s not among %v", name, env, envs)
				}
			}
			if found == 0 {
				t.Errorf("no flags found in the README's %q section", s.from)
			}
		})
	}
}
