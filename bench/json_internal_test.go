package bench

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// The JSON line's timeline and percentiles are lists, empty when there
// is nothing in them (a run measured for less than 0.1 s, or one that no
// reply came back in), not null: jq's .timeline[] and a script's loop
// over it failed on null.
func TestJSONListsAreNeverNull(t *testing.T) {
	cfg := Config{Duration: 50 * time.Millisecond}
	r := bareRun(&cfg)
	line, err := json.Marshal(r.report(cfg.Duration, false))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"timeline":[]`, `"percentiles":[]`} {
		if !strings.Contains(string(line), want) {
			t.Errorf("the JSON of a run with no second measured and no reply lacks %s:\n%s", want, line)
		}
	}
}
