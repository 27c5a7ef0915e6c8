// Package promtest scrapes a Prometheus endpoint in tests, reads values
// out of what it got, and finds or installs promtool to lint it.
package promtest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Scrape is one scrape: the text as served, and its metric families.
type Scrape struct {
	Text     []byte
	Families map[string]*dto.MetricFamily
}

// Get scrapes url, failing the test if it cannot.
func Get(t testing.TB, url string) *Scrape {
	t.Helper()
	s, err := TryGet(url)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var client = &http.Client{Timeout: 10 * time.Second}

// TryGet scrapes url.
func TryGet(url string) (*Scrape, error) {
	resp, err := client.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	text, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return Parse(text)
}

// Parse reads text in the Prometheus text format.
func Parse(text []byte) (*Scrape, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(text))
	if err != nil {
		return nil, err
	}
	return &Scrape{Text: text, Families: fams}, nil
}

// Value returns the value of the series of name with the labels given as
// name, value pairs (all of its labels), and whether it exists. A
// counter, gauge or untyped value is its value; a summary's or
// histogram's, its count.
func (s *Scrape) Value(name string, labels ...string) (float64, bool) {
	f := s.Families[name]
	if f == nil {
		return 0, false
	}
	for _, m := range f.Metric {
		if len(m.Label) != len(labels)/2 {
			continue
		}
		match := true
		for _, l := range m.Label {
			if !pairIn(l.GetName(), l.GetValue(), labels) {
				match = false
				break
			}
		}
		if !match {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Untyped != nil:
			return m.Untyped.GetValue(), true
		case m.Summary != nil:
			return float64(m.Summary.GetSampleCount()), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

func pairIn(name, value string, pairs []string) bool {
	for i := 0; i+1 < len(pairs); i += 2 {
		if pairs[i] == name && pairs[i+1] == value {
			return true
		}
	}
	return false
}

// Want is one expected value: a series, by name and label pairs.
type Want struct {
	Name   string
	Labels []string
	Value  float64
}

// V is the series name with labels (name, value pairs) at value.
func V(name string, value float64, labels ...string) Want {
	return Want{Name: name, Labels: labels, Value: value}
}

// Check fails the test for each series of want that is missing or has
// another value.
func (s *Scrape) Check(t testing.TB, want []Want) {
	t.Helper()
	for _, w := range want {
		got, ok := s.Value(w.Name, w.Labels...)
		if !ok {
			t.Errorf("%s%v: missing", w.Name, w.Labels)
		} else if got != w.Value {
			t.Errorf("%s%v = %v, want %v", w.Name, w.Labels, got, w.Value)
		}
	}
}

// Await scrapes url until every series of want has its value, then
// checks them, failing the test for each that does not by bound. A
// server counts an event after the client has seen its effect (a reply,
// an end of file), and a scrape is not one instant, so a test scrapes
// until the counts settle. The loop is bounded in time and in tries.
func Await(t testing.TB, url string, bound time.Duration, want []Want) *Scrape {
	t.Helper()
	deadline := time.Now().Add(bound)
	for delay := time.Millisecond; ; delay = min(2*delay, 100*time.Millisecond) {
		s := Get(t, url)
		if s.matches(want) || time.Now().After(deadline) {
			s.Check(t, want)
			return s
		}
		time.Sleep(delay) // polling: no event crosses HTTP
	}
}

func (s *Scrape) matches(want []Want) bool {
	for _, w := range want {
		if got, ok := s.Value(w.Name, w.Labels...); !ok || got != w.Value {
			return false
		}
	}
	return true
}

// debianPromtool is where Debian's prometheus package puts promtool, and
// where Promtool installs it (alone) is installedPromtool.
const (
	debianPromtool    = "./usr/bin/promtool"
	installedPromtool = "/usr/local/bin/promtool"
)

var (
	installOnce sync.Once
	installed   string
	installErr  error
)

// Promtool returns the path of promtool. If it is not installed, and the
// test runs as root on a system with apt-get, it installs promtool from
// Debian's prometheus package: not the whole package, which is the
// Prometheus server too (96 MB, and a service that its install starts
// listening on :9090 wherever an init system runs), but its promtool
// alone, taken out of the package with dpkg-deb into /usr/local/bin.
// Where it can be had neither way, the test is skipped, saying so.
func Promtool(t testing.TB) string {
	t.Helper()
	if p, err := exec.LookPath("promtool"); err == nil {
		return p
	}
	if _, err := os.Stat(installedPromtool); err == nil {
		return installedPromtool
	}
	installOnce.Do(func() { installed, installErr = install() })
	if installErr != nil {
		t.Skipf("SKIP: promtool (Debian's prometheus package) is not installed and could not be: %v", installErr)
	}
	return installed
}

func install() (string, error) {
	if os.Geteuid() != 0 {
		return "", errors.New("not root: install it with apt-get install prometheus")
	}
	for _, tool := range []string{"apt-get", "dpkg-deb"} {
		if _, err := exec.LookPath(tool); err != nil {
			return "", fmt.Errorf("no %s", tool)
		}
	}
	dir, err := os.MkdirTemp("", "promtest-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o755) // apt downloads as its own user
	var out bytes.Buffer
	run := func(name string, args ...string) error {
		cmd := exec.Command(name, args...)
		cmd.Dir, cmd.Stdout, cmd.Stderr = dir, &out, &out
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out.String())
		}
		return nil
	}
	// Another test may hold apt's locks: wait for them, and try again
	// after a failure (a mirror in the middle of an update).
	lock := []string{"-o", "DPkg::Lock::Timeout=120", "-qq"}
	var dlErr error
	for try := 0; try < 3; try++ {
		if try > 0 {
			time.Sleep(2 * time.Second)
		}
		if dlErr = run("apt-get", append(lock, "update")...); dlErr != nil {
			continue
		}
		if dlErr = run("apt-get", append(lock, "download", "prometheus")...); dlErr == nil {
			break
		}
	}
	if dlErr != nil {
		return "", dlErr
	}
	debs, _ := filepath.Glob(filepath.Join(dir, "prometheus_*.deb"))
	if len(debs) != 1 {
		return "", fmt.Errorf("apt-get download prometheus left %v", debs)
	}
	tmp := installedPromtool + ".partial"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o755)
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp)
	// dpkg-deb --fsys-tarfile | tar -xO, without a shell.
	deb := exec.Command("dpkg-deb", "--fsys-tarfile", debs[0])
	tarCmd := exec.Command("tar", "-xO", debianPromtool)
	pipe, err := deb.StdoutPipe()
	if err != nil {
		f.Close()
		return "", err
	}
	var errb bytes.Buffer
	tarCmd.Stdin, tarCmd.Stdout, tarCmd.Stderr, deb.Stderr = pipe, f, &errb, &errb
	if err := deb.Start(); err != nil {
		f.Close()
		return "", err
	}
	tarErr := tarCmd.Run()
	debErr := deb.Wait()
	if err := errors.Join(tarErr, debErr, f.Close()); err != nil {
		return "", fmt.Errorf("taking promtool out of %s: %v\n%s", filepath.Base(debs[0]), err, errb.String())
	}
	if err := os.Rename(tmp, installedPromtool); err != nil {
		return "", err
	}
	return installedPromtool, nil
}

// Lint runs promtool check metrics on text, failing the test with what
// it says if it finds a problem.
func Lint(t testing.TB, promtool string, text []byte) {
	t.Helper()
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(text)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
		return
	}
	t.Logf("promtool check metrics: no problems %s", strings.TrimSpace(string(out)))
}
