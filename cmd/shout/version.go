package main

import (
	"cmp"
	"fmt"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
)

// version and revision are set at build time with -ldflags
// "-X main.version=v1.2.3 -X main.revision=<commit>" (deploy/image.sh
// does); otherwise they come from the build information. go build finds
// no revision outside a git checkout, nor in a git worktree.
var version, revision = "", ""

type versionCmd struct{}

func (versionCmd) Run(std *stdio) error {
	fmt.Fprintln(std.stdout, versionLine())
	return nil
}

// versionLine is what shout version and shout --version print.
func versionLine() string {
	info, _ := debug.ReadBuildInfo()
	v := versionString(stamped(info, version, revision))
	return fmt.Sprintf("shout %s %s %s/%s", v, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// stamped is info with the version and revision set at build time, where
// they are set, in place of what go build found.
func stamped(info *debug.BuildInfo, version, revision string) *debug.BuildInfo {
	var s debug.BuildInfo
	if info != nil {
		s = *info
	}
	if version != "" {
		s.Main.Version = version
	}
	if revision != "" {
		s.Settings = slices.DeleteFunc(slices.Clone(s.Settings), func(b debug.BuildSetting) bool { return b.Key == "vcs.revision" })
		s.Settings = append(s.Settings, debug.BuildSetting{Key: "vcs.revision", Value: revision})
	}
	return &s
}

// versionString is the module's version with its revision, once: since Go
// 1.24 a pseudo-version already ends in the revision's first 12 digits.
func versionString(info *debug.BuildInfo) string {
	if info == nil || info.Main.Version == "" {
		return "(devel)"
	}
	v := info.Main.Version
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 && !strings.Contains(v, s.Value[:12]) {
			v += " " + s.Value[:12]
		}
	}
	return v
}

// buildVersion is the version and the VCS revision apart, for
// shout_build_info; the revision is empty if unknown.
func buildVersion() (v, rev string) {
	info, _ := debug.ReadBuildInfo()
	info = stamped(info, version, revision)
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" {
			rev = s.Value
		}
	}
	return cmp.Or(info.Main.Version, "(devel)"), rev
}
