package server

import (
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// README's list of the ports whose datagrams shout turns away is the
// loop guard's: a port added to one and not the other leaves users
// wondering why a client is never answered, or trusting a guard that is
// not there.
func TestReflectorPortsInREADME(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Join(strings.Fields(string(b)), " ")
	const start, end = "from a port whose service answers datagrams (", "; the reason for each is in `server/guard.go`"
	i, j := strings.Index(text, start), strings.Index(text, end)
	if i < 0 || j < i {
		t.Fatalf("README.md has no list of ports between %q and %q", start, end)
	}
	listed := make(map[int]bool)
	for _, m := range regexp.MustCompile(`(\d+)(?:–(\d+))?`).FindAllStringSubmatch(text[i+len(start):j], -1) {
		lo, _ := strconv.Atoi(m[1])
		hi := lo
		if m[2] != "" {
			hi, _ = strconv.Atoi(m[2])
		}
		for p := lo; p <= hi; p++ {
			listed[p] = true
		}
	}
	for p := range 1 << 16 {
		if got := reflectorPort(uint16(p)); got != listed[p] {
			t.Errorf("port %d: reflectorPort %v, listed in README.md %v", p, got, listed[p])
		}
	}
}

// No port in Linux's (32768-60999) or Windows' and macOS's (49152-65535)
// default ephemeral range is a reflector port: nearly every client's
// socket gets its port from one of them, and a client's own port must
// not be refused, whatever service elsewhere is abused on it.
func TestReflectorPortsOutsideEphemeralRanges(t *testing.T) {
	for _, r := range []struct {
		system string
		lo, hi int
	}{{"Linux", 32768, 60999}, {"Windows and macOS", 49152, 65535}} {
		for p := r.lo; p <= r.hi; p++ {
			if reflectorPort(uint16(p)) {
				t.Errorf("port %d, in %s's ephemeral range %d-%d, is a reflector port: a client there would never be answered", p, r.system, r.lo, r.hi)
			}
		}
	}
}
