package admin_test

import (
	"strings"
	"testing"

	"shout/admin"
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
