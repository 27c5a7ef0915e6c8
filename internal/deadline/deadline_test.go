package deadline

import (
	"testing"
	"time"
)

func TestRefresh(t *testing.T) {
	var by time.Time
	var sets []time.Time
	set := func(t time.Time) error { sets = append(sets, t); return nil }
	Refresh(&by, 0, set)
	if len(sets) != 0 {
		t.Fatal("zero duration set a deadline")
	}
	Refresh(&by, time.Hour, set)
	if len(sets) != 1 || by != sets[0] || time.Until(by) < 59*time.Minute {
		t.Fatalf("first refresh: %v, by %v", sets, by)
	}
	Refresh(&by, time.Hour, set) // still most of an hour away: untouched
	if len(sets) != 1 {
		t.Fatalf("refreshed again at once: %v", sets)
	}
	by = time.Now().Add(50 * time.Minute) // less than 7/8 of an hour left
	Refresh(&by, time.Hour, set)
	if len(sets) != 2 || time.Until(by) < 59*time.Minute {
		t.Fatalf("stale deadline not moved: %v", sets)
	}
}
