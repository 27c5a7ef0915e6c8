package main

import (
	"bufio"
	"bytes"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"shout/bench"
)

// docLink is a Markdown link to a file of the repository, maybe to a line
// or a range of lines: [text](../server/conn.go#L19-L22). Text that is
// code may hold a "]" (`s.carry[:0]`): such a link was not checked.
var docLink = regexp.MustCompile("\\[(`[^`]*`|[^\\]]*)\\]\\(([^)\\s#]+)(?:#L(\\d+)(?:-L(\\d+))?)?\\)")

// TestDocLinks checks every relative link in docs/: its file exists, its
// lines exist, and a link whose text is code (`go c.serve()`) points at
// lines that hold that code, so that links into the code cannot rot
// silently when the code moves.
func TestDocLinks(t *testing.T) {
	docs, err := filepath.Glob("../../docs/*.md")
	if err != nil || len(docs) == 0 {
		t.Fatalf("no docs: %v", err)
	}
	for _, doc := range docs {
		text, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		links := 0
		for _, m := range docLink.FindAllStringSubmatch(string(text), -1) {
			label, target := m[1], m[2]
			if strings.Contains(target, "://") {
				continue
			}
			links++
			path := filepath.Join(filepath.Dir(doc), target)
			lines, err := fileLines(path)
			if err != nil {
				t.Errorf("%s: link %s: %v", doc, m[0], err)
				continue
			}
			if m[3] == "" {
				continue
			}
			from, _ := strconv.Atoi(m[3])
			to := from
			if m[4] != "" {
				to, _ = strconv.Atoi(m[4])
			}
			if from < 1 || to < from || to > len(lines) {
				t.Errorf("%s: link %s: lines %d-%d, but %s has %d", doc, m[0], from, to, target, len(lines))
				continue
			}
			if code, ok := strings.CutPrefix(label, "`"); ok {
				code = strings.TrimSuffix(code, "`")
				if !strings.Contains(strings.Join(lines[from-1:to], "\n"), code) {
					t.Errorf("%s: link %s: %q is not on those lines (go run ./internal/tools/doclinks moves links after code that moved), which are:\n%s", doc, m[0], code, strings.Join(lines[from-1:to], "\n"))
				} else if !asCode(lines[from-1:to], code) && asCode(lines, code) {
					// A reader who follows the link wants the code, not a
					// comment that names it.
					t.Errorf("%s: link %s: %q is on those lines only in a comment, and is code elsewhere in %s (go run ./internal/tools/doclinks moves the link to it); the lines are:\n%s", doc, m[0], code, target, strings.Join(lines[from-1:to], "\n"))
				}
			}
		}
		if links == 0 {
			t.Errorf("%s: no links to the code found", doc)
		}
	}
}

// asCode reports whether code's first line stands in lines before any
// "//" on its line, not in a comment (as doclinks tells them apart).
func asCode(lines []string, code string) bool {
	first, _, _ := strings.Cut(code, "\n")
	for _, l := range lines {
		if i := strings.Index(l, first); i >= 0 && !strings.Contains(l[:i], "//") {
			return true
		}
	}
	return false
}

func fileLines(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	return lines, sc.Err()
}

// TestDocsBenchJSON checks that every field of bench --json, those of
// the settings, of a timeline entry and of a percentile included, is
// named in the README, so that a script can be written from it alone:
// the settings were "addr, network, conns, …", and the entries of
// timeline and percentiles (t, percent, us, …) were named nowhere.
func TestDocsBenchJSON(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{"ok": true, "verdict": true, "error": true} // MarshalJSON's, writeJSONError's
	var walk func(reflect.Type)
	walk = func(typ reflect.Type) {
		for typ.Kind() == reflect.Slice || typ.Kind() == reflect.Pointer {
			typ = typ.Elem()
		}
		if typ.Kind() != reflect.Struct || typ == reflect.TypeFor[time.Time]() {
			return
		}
		for f := range typ.Fields() {
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			switch {
			case name == "-" || !f.IsExported():
				continue
			case f.Anonymous && name == "":
				walk(f.Type)
				continue
			case name == "":
				name = f.Name
			}
			names[name] = true
			walk(f.Type)
		}
	}
	walk(reflect.TypeFor[bench.Report]())
	for _, name := range slices.Sorted(maps.Keys(names)) {
		if !bytes.Contains(readme, []byte("`"+name+"`")) {
			t.Errorf("README does not name bench --json's field %q (as `%s`)", name, name)
		}
	}
}
