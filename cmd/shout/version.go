package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3";
// otherwise it comes from the module's build information.
var version = ""

type versionCmd struct{}

func (versionCmd) Run(std *stdio) error {
	fmt.Fprintln(std.stdout, versionLine())
	return nil
}

// versionLine is what shout version and shout --version print.
func versionLine() string {
	v := version
	if v == "" {
		info, _ := debug.ReadBuildInfo()
		v = versionString(info)
	}
	return fmt.Sprintf("shout %s %s %s/%s", v, runtime.Version(), runtime.GOOS, runtime.GOARCH)
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
func buildVersion() (v, revision string) {
	info, _ := debug.ReadBuildInfo()
	v = version
	if v == "" {
		v = "(devel)"
		if info != nil && info.Main.Version != "" {
			v = info.Main.Version
		}
	}
	if info != nil {
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" {
				revision = s.Value
			}
		}
	}
	return v, revision
}
