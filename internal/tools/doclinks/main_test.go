package main

import (
	"slices"
	"testing"
)

// A range follows the lines it spanned: it slid, one line at a time,
// to the nearest range that merely held the code, so that after lines
// were added above it pointed at the lines before the code's case.
func TestPlaceKeepsRangeAroundCode(t *testing.T) {
	old := []string{"a", "switch {", "case x:", "	// why", "	return", "}", "z"}
	moved := slices.Concat([]string{"new 1", "new 2", "new 3"}, old)
	for _, tc := range []struct {
		name       string
		lines, old []string
		from, to   int
		want       int
	}{
		{"the lines it spanned, moved", moved, old, 3, 5, 6},
		{"no HEAD: the nearest that holds it", moved, nil, 3, 5, 4},
		{"the lines changed: the code keeps its line in the range", slices.Concat([]string{"new 1", "new 2", "new 3"}, []string{"a", "switch {", "case x:", "	// why, said better", "	return", "}"}), old, 3, 5, 6},
		{"still there", old, old, 3, 5, 3},
		{"one line", moved, old, 3, 3, 6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got, ok := place(tc.lines, tc.old, "case x:", tc.from, tc.to); !ok || got != tc.want {
				t.Errorf("place: %d, %v; want %d", got, ok, tc.want)
			}
		})
	}
	if _, ok := place(old, old, "case y:", 3, 5); ok {
		t.Error("placed code that is nowhere")
	}
	// A range backwards (#L5-L3) panicked, slicing lines[4:2].
	if _, ok := place(old, old, "case x:", 5, 3); ok {
		t.Error("placed a range that ends before it starts")
	}
}

// A link past more than twice the end of a file that shrank is placed,
// as any other, at the code's nearest lines: the search stopped after as
// many steps as the file has lines, never reaching them, and doclinks
// said the code was "nowhere" in the file that holds it.
func TestPlaceLinkFarPastTheEnd(t *testing.T) {
	lines := []string{"a", "case x:", "b"}
	for _, tc := range []struct{ from, to int }{{7, 7}, {100, 100}, {100, 101}} {
		if got, ok := place(lines, nil, "case x:", tc.from, tc.to); !ok || got != 2 {
			t.Errorf("#L%d-L%d: placed at %d, %v; want 2", tc.from, tc.to, got, ok)
		}
	}
}

// Code that moved goes to the nearest line that holds it as code, past a
// comment nearer that merely names it: lesson 2.2's d.DialContext went
// to "// DialNetwork dials addr over network with d, as d.DialContext
// does", once the call moved into DialNetwork below that comment. Only
// a comment holding it is still a place.
func TestPlacePrefersCodeToComment(t *testing.T) {
	lines := []string{
		"	c, err := DialNetwork(ctx, d, e.Network, e.Address)",
		"}",
		"// DialNetwork dials addr over network with d, as d.DialContext does.",
		"func DialNetwork(ctx context.Context, d net.Dialer, network, addr string) (net.Conn, error) {",
		"	if network != \"udp\" {",
		"		return d.DialContext(ctx, network, addr)",
	}
	if got, ok := place(lines, nil, "d.DialContext", 1, 1); !ok || got != 6 {
		t.Errorf("placed at %d, %v; want 6, the call, not 3, the comment", got, ok)
	}
	if got, ok := place(lines[:4], nil, "d.DialContext", 1, 1); !ok || got != 3 {
		t.Errorf("only a comment holds it: placed at %d, %v; want 3", got, ok)
	}
}

// A range whose lines hold the code only in a comment that names it goes
// to the code, as a single line does: the lesson's ReasonTooLarge link
// stayed on a blank line and transform's comment ("(ReasonTooLarge)"),
// since its lines were those it spanned at HEAD, while the code that
// drops the reply was nine lines below.
func TestPlaceRangeOffAComment(t *testing.T) {
	lines := []string{
		"}",
		"",
		"// transform writes d's reply; if it does not",
		"// fit (ReasonTooLarge), it reports false.",
		"func (p *packetConn) transform(d *DatagramInfo) bool {",
		"	switch {",
		"	case err == transform.ErrShortDst:",
		"		d.Reason = ReasonTooLarge",
		"		return false",
	}
	for _, old := range [][]string{lines, nil} {
		if got, ok := place(lines, old, "ReasonTooLarge", 2, 4); !ok || got != 6 {
			t.Errorf("HEAD %v: placed at %d, %v; want 6, lines 6-8 that hold the code", old != nil, got, ok)
		}
	}
	if got, ok := place(lines[:5], lines[:5], "ReasonTooLarge", 2, 4); !ok || got != 2 {
		t.Errorf("only a comment holds it: placed at %d, %v; want 2, where it was", got, ok)
	}
}
