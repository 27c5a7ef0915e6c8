package shouttest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

var aptMu sync.Mutex

// Tool returns the path of the program name, installing Debian's package
// pkg with apt-get where it is missing (CI starts from a machine with Go
// and little else). When it cannot be had, the test is skipped, loudly,
// naming it.
func Tool(t testing.TB, name, pkg string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	aptMu.Lock()
	defer aptMu.Unlock()
	// The test binaries of several packages run at once, and apt-get
	// fails on a lock another holds: one installs, the others wait.
	if unlock, err := lockFile(filepath.Join(os.TempDir(), "shouttest-apt.lock")); err == nil {
		defer unlock()
	}
	if p, err := exec.LookPath(name); err == nil { // installed meanwhile
		return p
	}
	var out []byte
	var err error
	if _, aerr := exec.LookPath("apt-get"); aerr != nil || os.Geteuid() != 0 {
		t.Skipf("SKIP: %s is not installed, and apt-get cannot install Debian's %s here (not Debian, or not root)", name, pkg)
	}
	t.Logf("installing Debian's %s for %s", pkg, name)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-c", "apt-get update -qq && apt-get install -y -qq --no-install-recommends "+pkg)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	if out, err = cmd.CombinedOutput(); err != nil {
		t.Skipf("SKIP: %s is not installed, and installing Debian's %s failed: %v\n%s", name, pkg, err, out)
	}
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("SKIP: Debian's %s installed, but there is still no %s", pkg, name)
	}
	return p
}
