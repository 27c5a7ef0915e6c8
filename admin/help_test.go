package admin_test

import (
	"errors"
	"net"
	"os"
	"strings"
	"testing"

	"shout/admin"
	"shout/server"
)

// Each reason a shout_ series has from the start is one its HELP names,
// so that what Prometheus shows beside a series explains it.
func TestHelpNamesEveryReason(t *testing.T) {
	fams, err := admin.NewMetrics(admin.Config{}).Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if !strings.HasPrefix(f.GetName(), "shout_") {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" && !strings.Contains(f.GetHelp(), l.GetValue()) {
					t.Errorf("%s: the HELP (%q) does not name the reason %s", f.GetName(), f.GetHelp(), l.GetValue())
				}
			}
		}
	}
}

// Each reason a shout_ series may have, the ones that appear only once
// they happen too (a handshake failure that says no kind: unknown), is
// named in the README's row for its metric, where a dashboard's author
// looks up what an errors-by-reason panel shows.
func TestReadmeNamesEveryReason(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]string{} // metric name → its row in the README's table
	for _, line := range strings.Split(string(readme), "\n") {
		if !strings.HasPrefix(line, "| `shout_") {
			continue
		}
		names, _, _ := strings.Cut(strings.TrimPrefix(line, "| "), " | ")
		for _, n := range strings.Split(names, ", ") { // `a_total{transport}`, `b_total{transport}`
			n, _, _ = strings.Cut(strings.Trim(n, "`"), "{")
			rows[n] = line
		}
	}
	m := admin.NewMetrics(admin.Config{})
	local := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080}
	m.ConnClose(&server.ConnInfo{Local: local, Reason: server.ReasonWrap, Err: errors.New("a wrapper of one's own failed")})
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range fams {
		if !strings.HasPrefix(f.GetName(), "shout_") {
			continue
		}
		row, ok := rows[f.GetName()]
		for _, s := range f.GetMetric() {
			for _, l := range s.GetLabel() {
				if l.GetName() != "reason" {
					continue
				}
				n++
				if !ok {
					t.Errorf("%s{reason=%q}: the README's table of metrics has no row for %s", f.GetName(), l.GetValue(), f.GetName())
				} else if !strings.Contains(row, "`"+l.GetValue()+"`") {
					t.Errorf("%s{reason=%q}: the README's row for it does not name `%s`:\n%s", f.GetName(), l.GetValue(), l.GetValue(), row)
				}
			}
		}
	}
	if n == 0 {
		t.Fatal("no reason label found: has the test lost them?")
	}
}
