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

// A version and revision set with -ldflags -X take the place of what go
// build found, and the revision is shown once.
func TestStamped(t *testing.T) {
	pseudo := &debug.BuildInfo{
		Main:     debug.Module{Version: "v0.0.0-20261125141932-0123456789ab"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "0123456789abcdef0123"}},
	}
	for _, tc := range []struct {
		name              string
		info              *debug.BuildInfo
		version, revision string
		want              string
	}{
		{"nothing set", pseudo, "", "", "v0.0.0-20261125141932-0123456789ab"},
		{"no build info", nil, "v1.2.3", "fedcba9876543210fedc", "v1.2.3 fedcba987654"},
		{"tag", pseudo, "v1.2.3", "fedcba9876543210fedc", "v1.2.3 fedcba987654"},
		{"describe", &debug.BuildInfo{}, "fedcba987654-dirty", "fedcba9876543210fedc", "fedcba987654-dirty"},
		{"version only", pseudo, "v1.2.3", "", "v1.2.3 0123456789ab"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := versionString(stamped(tc.info, tc.version, tc.revision)); got != tc.want {
				t.Errorf("versionString(stamped(%q, %q)) = %q, want %q", tc.version, tc.revision, got, tc.want)
			}
		})
	}
	if pseudo.Settings[0].Value != "0123456789abcdef0123" {
		t.Errorf("stamped changed the build info it was given")
	}
}
