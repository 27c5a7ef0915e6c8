package main

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestReadme checks what the README tells a new user against the module:
// the Go version go.mod needs, and how to stop the server its first
// command starts (go run does not pass SIGTERM on to shout).
func TestReadme(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	mod, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go (\S+)$`).FindSubmatch(mod)
	if m == nil {
		t.Fatal("go.mod has no go line")
	}
	if want := "Go " + string(m[1]) + " or later"; !strings.Contains(string(readme), want) {
		t.Errorf("README does not say %q, what go.mod needs", want)
	}
	// The first section, before "## Install", must say how to stop the
	// server and show a built binary for scripts.
	intro, _, _ := strings.Cut(string(readme), "## ")
	for _, want := range []string{"    go run ./cmd/shout serve ", "    go test ./...", "Ctrl-C", "go build -o shout ./cmd/shout"} {
		if !strings.Contains(intro, want) {
			t.Errorf("README's first section lacks %q", want)
		}
	}
}
