// Command doclinks moves the line anchors of docs/*.md links into the
// code (such as [`go c.serve()`](../server/server.go#L330)) to where the
// code in their text now is, after the code moved. It changes a link only
// when its text is code that is no longer on its lines, to the nearest
// lines that hold it; links it cannot place it names, and exits 1.
//
//	go run ./internal/tools/doclinks     # from the repository's root
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

var docLink = regexp.MustCompile("\\[`([^`\\]]*)`\\]\\(([^)\\s#]+)#L(\\d+)(?:-L(\\d+))?\\)")

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
			src, err := os.ReadFile(filepath.Join(filepath.Dir(doc), target))
			if err != nil {
				fmt.Fprintf(os.Stderr, "%s: %s: %v\n", doc, link, err)
				failed = true
				return link
			}
			lines := strings.Split(string(src), "\n")
			holds := func(f, t int) bool {
				return f >= 1 && t <= len(lines) && strings.Contains(strings.Join(lines[f-1:t], "\n"), code)
			}
			if holds(from, to) {
				return link
			}
			// The nearest start whose range, of the same length, holds it.
			for d := 1; d < len(lines); d++ {
				for _, f := range []int{from - d, from + d} {
					if holds(f, f+to-from) {
						moved++
						if m[4] == "" {
							return fmt.Sprintf("[`%s`](%s#L%d)", code, target, f)
						}
						return fmt.Sprintf("[`%s`](%s#L%d-L%d)", code, target, f, f+to-from)
					}
				}
			}
			fmt.Fprintf(os.Stderr, "%s: %s: %q is nowhere in %s\n", doc, link, code, target)
			failed = true
			return link
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
