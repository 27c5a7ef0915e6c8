package bench

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"syscall"
	"testing"
	"time"

	"shout/endpoint"
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

// Each of the report's texts names the settings its error names, and
// NameSettings names them otherwise: NeverServedWhy too, though no error
// of Reconnect's names a setting yet (it refuses TLS, whose errors do).
func TestNameSettingsNamesEveryText(t *testing.T) {
	flag := func(f string) string {
		if flag, ok := map[string]string{"Conns": "--conns", "Mode": "--mode", "SourceIPs": "--source-ips"}[f]; ok {
			return flag
		}
		return f
	}
	r := &run{cfg: Config{Endpoint: endpoint.Endpoint{Network: "tcp", Address: "127.0.0.1:1"}}}
	r.cfg.defaults()
	r.total = r.newHist()
	r.epoch = time.Now()
	r.windowUntil.Store(math.MaxInt64) // measuring, without end: its error counts
	var err error
	if r.ref, err = reference(r.cfg.Mode, r.cfg.Lang); err != nil {
		t.Fatal(err)
	}
	r.msgs, r.wants = r.expected(1, r.cfg.Size)
	r.fail(fmt.Errorf("receive: %w", named.Errorf("use fewer %s", optConns)))
	warm := error(named.Errorf("use more %s", optSourceIPs))
	r.firstWarmErr.Store(&warm)
	// Two settings, in a Join: all of them, not the first alone.
	why := errors.Join(named.Errorf("refused at %s", optConns), named.Errorf("run with %s echo", optMode))
	r.neverServed, r.neverServedWhy = 1, why
	r.mismatch(r.msgs[0], r.wants[0], false) // an echo: "run bench with Mode echo"
	rep := r.report(time.Second, false)

	texts := func() []string {
		return []string{rep.FirstError, rep.FirstWarmupError, rep.FirstMismatch, rep.NeverServedWhy}
	}
	check := func(when string, want []string) {
		t.Helper()
		for i, got := range texts() {
			if !strings.Contains(got, want[i]) {
				t.Errorf("%s: text %d is %q, want it to hold %q", when, i, got, want[i])
			}
		}
	}
	check("by Run", []string{"receive: use fewer Conns", "use more SourceIPs", "run bench with Mode echo", "refused at Conns\nrun with Mode echo"})
	rep.NameSettings(flag)
	check("by flags", []string{"receive: use fewer --conns", "use more --source-ips", "run bench with --mode echo", "refused at --conns\nrun with --mode echo"})
	rep.NameSettings(nil)
	check("again by Run", []string{"receive: use fewer Conns", "use more SourceIPs", "run bench with Mode echo", "refused at Conns\nrun with Mode echo"})

	// A report Run did not make keeps its texts.
	var decoded Report
	decoded.NeverServedWhy = "refused at Conns"
	decoded.NameSettings(flag)
	if decoded.NeverServedWhy != "refused at Conns" {
		t.Errorf("a report not Run's: NeverServedWhy %q, want it as it was", decoded.NeverServedWhy)
	}
}
