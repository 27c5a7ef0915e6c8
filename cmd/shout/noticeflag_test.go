package main

import "testing"

// A wait notice names its setting by the flag, whichever setting it is,
// though one setting's name begins another's (MaxConns, MaxConnsPerIP)
// and flagNames is a map, read in no fixed order: the setting is matched
// whole, up to the space after it. Matched without that space,
// "MaxConnsPerIP" became "--max-connsPerIP" whenever the map gave
// MaxConns first (the check runs 50 times over: each range over the map
// takes an order of its own). A file's name that is a setting's stays.
func TestNoticeFlag(t *testing.T) {
	for range 50 {
		for setting, flag := range flagNames {
			msg := "waiting for " + setting + " MaxConns.pem: a pipe with nothing written yet"
			want := "waiting for " + flag + " MaxConns.pem: a pipe with nothing written yet"
			if got := noticeFlag(msg); got != want {
				t.Fatalf("noticeFlag(%q) = %q; want %q", msg, got, want)
			}
		}
	}
	const unknown = "waiting for Unknown.Setting f.pem: a pipe with nothing written yet"
	if got := noticeFlag(unknown); got != unknown {
		t.Errorf("noticeFlag(%q) = %q; want it as it is", unknown, got)
	}
}
