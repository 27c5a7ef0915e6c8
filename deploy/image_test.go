package deploy_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The image's source label is the origin remote's URL without the user
// name and token a CI clone carries in it (https://gitlab-ci-token:…@):
// the label ships with every push of the image. It was the URL as it was.
func TestImageSourceHasNoCredentials(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("SKIP: git is not installed")
	}
	script, err := os.ReadFile("image.sh")
	if err != nil {
		t.Fatal(err)
	}
	for origin, want := range map[string]string{
		"https://ci-token:SECRET123@git.example.com/shout.git": "https://git.example.com/shout.git",
		"https://user@git.example.com/shout.git":               "https://git.example.com/shout.git",
		"git@github.com:someone/shout.git":                     "https://github.com/someone/shout.git",
		"https://github.com/someone/shout":                     "https://github.com/someone/shout",
	} {
		dir := t.TempDir()
		if err := os.MkdirAll(filepath.Join(dir, "deploy"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "deploy", "image.sh"), script, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, args := range [][]string{{"init", "-q"}, {"remote", "add", "origin", origin}} {
			if out, err := exec.Command("git", append([]string{"-C", dir}, args...)...).CombinedOutput(); err != nil {
				t.Fatalf("git %v: %v\n%s", args, err, out)
			}
		}
		cmd := exec.Command(filepath.Join(dir, "deploy", "image.sh"), "--source")
		cmd.Env = append(os.Environ(), "SOURCE=")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("image.sh --source with origin %s: %v", origin, err)
		}
		if got := strings.TrimSpace(string(out)); got != want {
			t.Errorf("origin %s: source label %q, want %q", origin, got, want)
		}
	}
}
