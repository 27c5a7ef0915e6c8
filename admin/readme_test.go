package admin_test

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"

	"shout/admin"
	"shout/internal/promtest"
	"shout/server"
)

// readme is the README's text.
func readme(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// everySeries is every shout_ family NewMetrics may serve, with each
// label value it may carry: those from the start, and those that appear
// once they happen (a handshake failure that names no kind: unknown).
func everySeries(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	m := admin.NewMetrics(admin.Config{})
	local := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080}
	m.ConnClose(&server.ConnInfo{Local: local, Reason: server.ReasonWrap, Err: errors.New("a wrapper of one's own failed")})
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*dto.MetricFamily{}
	for _, f := range fams {
		if strings.HasPrefix(f.GetName(), "shout_") {
			byName[f.GetName()] = f
		}
	}
	return byName
}

// Each reason a shout_ series may have, the ones that appear only once
// they happen too (a handshake failure that says no kind: unknown), is
// named in the README's row for its metric, where a dashboard's author
// looks up what an errors-by-reason panel shows.
func TestReadmeNamesEveryReason(t *testing.T) {
	rows := map[string]string{} // metric name → its row in the README's table
	for _, line := range strings.Split(readme(t), "\n") {
		if !strings.HasPrefix(line, "| `shout_") {
			continue
		}
		names, _, _ := strings.Cut(strings.TrimPrefix(line, "| "), " | ")
		for _, n := range strings.Split(names, ", ") { // `a_total{transport}`, `b_total{transport}`
			n, _, _ = strings.Cut(strings.Trim(n, "`"), "{")
			rows[n] = line
		}
	}
	n := 0
	for _, f := range everySeries(t) {
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

var (
	promQLRE = regexp.MustCompile(`^    (\S.*?) +# \S.*$`) // an indented query, then what it shows
	nameRE   = regexp.MustCompile(`shout_[a-z_]+`)
	byRE     = regexp.MustCompile(`by \(([a-z_, ]+)\)`)
	matchRE  = regexp.MustCompile(`([a-z_]+)(!?=)"([^"]*)"`)
)

// The README's queries for a dashboard are PromQL that promtool takes,
// of metrics shout serves, grouped by labels those metrics have, and
// matching label values they may carry: a renamed metric or reason
// leaves no query showing nothing.
func TestReadmePromQL(t *testing.T) {
	// Every line of the indented block after "For a dashboard": one
	// that is no query of the form (not `sum by`, say) is checked as
	// well, not passed over.
	_, after, ok := strings.Cut(readme(t), "\nFor a dashboard")
	if !ok {
		t.Fatal(`the README has no "For a dashboard" paragraph: has the test lost its PromQL?`)
	}
	var queries [][]string
	block := false
	for line := range strings.Lines(after) {
		line = strings.TrimSuffix(line, "\n")
		if !strings.HasPrefix(line, "    ") {
			if block && line != "" {
				break
			}
			continue
		}
		block = true
		q := promQLRE.FindStringSubmatch(line)
		if q == nil {
			t.Errorf("%q: in the README's PromQL for a dashboard, not a query then `# what it shows`", line)
			continue
		}
		queries = append(queries, q)
	}
	if len(queries) == 0 {
		t.Fatal("the README has no PromQL for a dashboard (indented lines `sum by (...) (...)  # what it shows`)")
	}
	series := everySeries(t)
	rules := "groups:\n  - name: readme\n    rules:\n"
	for i, q := range queries {
		expr := strings.TrimSpace(q[1])
		rules += fmt.Sprintf("      - record: readme:query%d\n        expr: '%s'\n", i+1, expr)
		names := nameRE.FindAllString(expr, -1)
		if len(names) == 0 {
			t.Errorf("%s: names no shout_ metric", expr)
		}
		for _, name := range names {
			f, ok := series[name]
			if !ok {
				t.Errorf("%s: shout serves no %s", expr, name)
				continue
			}
			values := map[string][]string{} // label → the values it may have
			for _, s := range f.GetMetric() {
				for _, l := range s.GetLabel() {
					if !slices.Contains(values[l.GetName()], l.GetValue()) {
						values[l.GetName()] = append(values[l.GetName()], l.GetValue())
					}
				}
			}
			if m := byRE.FindStringSubmatch(expr); m != nil {
				for _, l := range strings.Split(m[1], ",") {
					if l = strings.TrimSpace(l); values[l] == nil {
						t.Errorf("%s: %s has no label %s to sum by", expr, name, l)
					}
				}
			}
			for _, m := range matchRE.FindAllStringSubmatch(expr, -1) {
				if !slices.Contains(values[m[1]], m[3]) {
					t.Errorf("%s: %s has no %s=%q (it has %v)", expr, name, m[1], m[3], values[m[1]])
				}
			}
		}
	}
	promtool := promtest.Promtool(t)
	file := filepath.Join(t.TempDir(), "readme.rules.yml")
	if err := os.WriteFile(file, []byte(rules), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool, "check", "rules", file).CombinedOutput(); err != nil {
		t.Errorf("promtool check rules: %v\n%s\n%s", err, out, rules)
	}
}
