// Command doclinks moves the line anchors of docs/*.md links into the
// code (such as [`go c.serve()`](../server/server.go#L330)) to where the
// code in their text now is, after the code moved. It changes a link only
// when its text is code that is no longer on its lines, or is there only
// in a comment while the file has it as code. A range of lines keeps its
// place around the code: it goes to where the lines it spanned at HEAD
// now are, or else to where the code keeps its line within the range; a
// single line, or a range git cannot say more of, goes to the nearest
// lines that hold the code. Lines hold it as code, not in a comment,
// wherever the file has it as code. Links it cannot place it names, and
// exits 1.
//
//	go run ./internal/tools/doclinks     # from the repository's root
package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// docLink is a link whose text is code, to a line or a range of lines;
// the code may hold a "]" (`s.carry[:0]`), not a backquote.
var docLink = regexp.MustCompile("\\[`([^`]*)`\\]\\(([^)\\s#]+)#L(\\d+)(?:-L(\\d+))?\\)")

func main() {
	docs, _ := filepath.Glob("docs/*.md")
	failed := false
	for _, doc := range docs {
		text, err := os.ReadFile(doc)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		moved := 0
		out := docLink.ReplaceAllStringFunc(string(text), func(link string) string {
			m := docLink.FindStringSubmatch(link)
			code, target := m[1], m[2]
			from, _ := strconv.Atoi(m[3])
			to := from
			if m[4] != "" {
				to, _ = strconv.Atoi(m[4])
			}
			if from < 1 || to < from {
				fmt.Fprintf(os.Stderr, "%s: %s: lines %d-%d are no range: it must start at 1 or later and end at its start or after\n", doc, link, from, to)
				failed = true
				return link
			}
			path := filepath.Join(filepath.Dir(doc), target)
			src, err := os.ReadFile(path)
			if err != nil {
				fmt.Fprintf(os.Stderr, "%s: %s: %v\n", doc, link, err)
				failed = true
				return link
			}
			lines := strings.Split(string(src), "\n")
			f, ok := place(lines, atHead(path), code, from, to)
			switch {
			case !ok:
				fmt.Fprintf(os.Stderr, "%s: %s: %q is nowhere in %s\n", doc, link, code, target)
				failed = true
				return link
			case f == from:
				return link
			}
			moved++
			if m[4] == "" {
				return fmt.Sprintf("[`%s`](%s#L%d)", code, target, f)
			}
			return fmt.Sprintf("[`%s`](%s#L%d-L%d)", code, target, f, f+to-from)
		})
		if moved > 0 {
			os.WriteFile(doc, []byte(out), 0o644)
			fmt.Printf("%s: %d links moved\n", doc, moved)
		}
	}
	if failed {
		os.Exit(1)
	}
}

// place returns the first line of the range from-to, in lines, that holds
// code: from itself if it still does. old is the file at HEAD, or nil.
// A range that is none (to before from) is placed nowhere.
func place(lines, old []string, code string, from, to int) (int, bool) {
	if from < 1 || to < from {
		return 0, false
	}
	// Where the file has the code as code, a place holds it as code too,
	// not in a comment that names it.
	anyCode := asCode(lines, code)
	holds := func(f int) bool {
		t := f + to - from
		return f >= 1 && t <= len(lines) && strings.Contains(strings.Join(lines[f-1:t], "\n"), code) &&
			(!anyCode || asCode(lines[f-1:t], code))
	}
	if holds(from) {
		return from, true
	}
	// nearest is the start nearest from, among those that hold the code
	// and pass keep. (from may be past the end of a file that shrank.)
	nearest := func(keep func(f int) bool) (int, bool) {
		for d := 0; d < max(len(lines), from); d++ {
			for _, f := range []int{from - d, from + d} {
				if holds(f) && keep(f) {
					return f, true
				}
			}
		}
		return 0, false
	}
	if to > from && from >= 1 && to <= len(old) {
		span := old[from-1 : to]
		if f, ok := nearest(func(f int) bool { return slices.Equal(lines[f-1:f+to-from], span) }); ok {
			return f, true
		}
		if at := slices.IndexFunc(span, func(l string) bool { return strings.Contains(l, firstLine(code)) }); at >= 0 {
			if f, ok := nearest(func(f int) bool { return strings.Contains(lines[f-1+at], firstLine(code)) }); ok {
				return f, true
			}
		}
	}
	return nearest(func(int) bool { return true })
}

// asCode reports whether code's first line stands in lines before any
// "//" on its line, not in a comment.
func asCode(lines []string, code string) bool {
	first := firstLine(code)
	for _, l := range lines {
		if i := strings.Index(l, first); i >= 0 && !strings.Contains(l[:i], "//") {
			return true
		}
	}
	return false
}

func firstLine(s string) string {
	first, _, _ := strings.Cut(s, "\n")
	return first
}

// atHead is the file at path as git's HEAD has it, in lines, or nil.
func atHead(path string) []string {
	out, err := exec.Command("git", "show", "HEAD:./"+filepath.ToSlash(path)).Output()
	if err != nil {
		return nil
	}
	return strings.Split(string(out), "\n")
}
