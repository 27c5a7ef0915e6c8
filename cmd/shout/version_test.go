package main

import (
	"runtime/debug"
	"testing"
)

func TestVersionString(t *testing.T) {
	rev := func(r string) []debug.BuildSetting { return []debug.BuildSetting{{Key: "vcs.revision", Value: r}} }
	for _, tc := range []struct {
		name string
		info *debug.BuildInfo
		want string
	}{
		{"none", nil, "(devel)"},
		{"devel", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, "(devel)"},
		{"tag", &debug.BuildInfo{Main: debug.Module{Version: "v1.2.3"}, Settings: rev("0123456789abcdef0123")}, "v1.2.3 0123456789ab"},
		// Go 1.24 and later put the revision in the pseudo-version already.
		{"pseudo", &debug.BuildInfo{
			Main:     debug.Module{Version: "v0.0.0-20261125141932-0123456789ab+dirty"},
			Settings: rev("0123456789abcdef0123"),
		}, "v0.0.0-20261125141932-0123456789ab+dirty"},
		{"devel with revision", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: rev("0123456789abcdef0123")}, "(devel) 0123456789ab"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := versionString(tc.info); got != tc.want {
				t.Errorf("versionString = %q, want %q", got, tc.want)
			}
		})
	}
}
