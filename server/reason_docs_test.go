package server_test

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"shout/server"
)

// Every reason=… that README.md and docs/*.md quote from the log is one
// the log writes, as its text format writes it: docs/deploy.md told to
// look for reason=over_budget, the metric's label, where the log says
// reason="over budget".
func TestDocsReasonsAsLogged(t *testing.T) {
	logged := make(map[string]bool)
	for r := server.Reason(0); r.String() != "unknown"; r++ {
		s := r.String()
		if strings.ContainsAny(s, " =\"") { // as slog's text handler quotes it
			s = strconv.Quote(s)
		}
		logged[s] = true
	}
	docs, err := filepath.Glob("../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	quoted := regexp.MustCompile("`([^`]*)`")
	reason := regexp.MustCompile(`(?:^|\s)reason=("[^"]*"|[^\s"…]+)`) // (not a metric's label: {reason="…"})
	n := 0
	for _, doc := range append(docs, "../README.md") {
		b, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range quoted.FindAllStringSubmatch(string(b), -1) {
			code := q[1]
			for _, m := range reason.FindAllStringSubmatch(code, -1) {
				n++
				if !logged[m[1]] {
					t.Errorf("%s: `%s`: the log writes no such reason (it writes reason=%s)", doc, code, strings.Join(sortedKeys(logged), ", reason="))
				}
			}
		}
	}
	if n == 0 {
		t.Fatal("no reason=… found in the docs: has the test lost them?")
	}
}

func sortedKeys(m map[string]bool) []string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
