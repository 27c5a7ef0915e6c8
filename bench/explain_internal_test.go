package bench

import (
	"strings"
	"syscall"
	"testing"

	"shout/internal/named"
)

// A limit of this machine says what to change in the Config, by its
// fields (Conns, SourceIPs): a program using bench has no flag of shout
// bench's (--conns), which shout's errors name through named.Text.
func TestExplainLimitNamesFields(t *testing.T) {
	flag := func(f string) string { return map[string]string{"Conns": "--conns", "SourceIPs": "--source-ips"}[f] }
	for _, tc := range []struct {
		name       string
		err        error
		field, cli string
	}{
		{"out of files", limitError(9, syscall.EMFILE), "; raise it (ulimit -n) or use fewer Conns", "; raise it (ulimit -n) or use fewer --conns"},
		{"out of ports", limitError(9, syscall.EADDRNOTAVAIL), "; use more SourceIPs or fewer Conns", "; use more --source-ips or fewer --conns"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.err.Error(); !strings.HasPrefix(got, "connection 10: ") || !strings.HasSuffix(got, tc.field) {
				t.Errorf("error %q, want connection 10's, ending %q", got, tc.field)
			}
			if got := named.Text(tc.err, flag); !strings.HasSuffix(got, tc.cli) {
				t.Errorf("named by flags: %q, want it to end %q", got, tc.cli)
			}
		})
	}
}
