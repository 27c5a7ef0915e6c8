package admin_test

import (
	"bufio"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"shout/admin"
)

// A ?seconds= that net/http/pprof would take for its default, or that is
// given twice, or asks for more than maxPprofSeconds, is answered 400 at once,
// saying why. /debug/pprof/profile?seconds=0 (or -1, or 1e-9) made a
// 30 s profile under a 30 s write time: after 30 s the client got an
// empty reply. Values that are not numbers got a profile or trace of
// the default length, not the one asked for.
func TestPprofBadSecondsRefused(t *testing.T) {
	hs := httptest.NewServer(admin.NewHandler(admin.NewMetrics(admin.Config{}), true))
	defer hs.Close()
	client := &http.Client{Timeout: bound}
	bad := map[string][]string{
		"profile":   {"0", "-1", "1e-9", "1.5", "NaN", "abc", "", "301", "99999999999999999999", "1&seconds=2"},
		"trace":     {"0", "-1", "-0", "NaN", "Inf", "+Inf", "abc", "", "300.5", "1e9", "0.5&seconds=0.5"},
		"heap":      {"0", "1.5", "abc", "301"},
		"goroutine": {"-5", "1e3"},
	}
	for path, values := range bad {
		for _, v := range values {
			u := hs.URL + "/debug/pprof/" + path + "?seconds=" + v
			resp, err := client.Get(u)
			if err != nil {
				t.Errorf("GET %s: %v", u, err)
				continue
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), `"seconds"`) {
				t.Errorf("GET %s: %d %.80q; want 400, saying what is wrong with \"seconds\"", u, resp.StatusCode, body)
			}
		}
	}
	// The bounds themselves are taken, and a trace's fraction.
	for _, u := range []string{"/debug/pprof/trace?seconds=0.1", "/debug/pprof/goroutine?seconds=1", "/debug/pprof/profile?seconds=1"} {
		resp, err := client.Get(hs.URL + u)
		if err != nil {
			t.Fatalf("GET %s: %v", u, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || len(body) == 0 {
			t.Errorf("GET %s: %d, %d bytes; want 200 and a profile", u, resp.StatusCode, len(body))
		}
	}
}

// A profile or trace longer than maxPprofSeconds is refused at once,
// saying the longest there is and why, and leaves the profiler free:
// only one CPU profile or trace is made at a time, and
// /debug/pprof/profile?seconds=3600 held it for an hour, every other
// profile answered "Could not enable CPU profiling" meanwhile.
func TestPprofLongRefused(t *testing.T) {
	hs := httptest.NewServer(admin.NewHandler(admin.NewMetrics(admin.Config{}), true))
	defer hs.Close()
	client := &http.Client{Timeout: bound}
	for _, u := range []string{"/debug/pprof/profile?seconds=3600", "/debug/pprof/trace?seconds=3600", "/debug/pprof/profile?seconds=301", "/debug/pprof/trace?seconds=300.5", "/debug/pprof/heap?seconds=301"} {
		resp, err := client.Get(hs.URL + u)
		if err != nil {
			t.Fatalf("GET %s: %v; want a 400 at once", u, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "at most 300") || !strings.Contains(string(body), "one at a time") {
			t.Errorf("GET %s: %d %q; want 400, saying at most 300 seconds, one at a time", u, resp.StatusCode, body)
		}
	}
	resp, err := client.Get(hs.URL + "/debug/pprof/profile?seconds=1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("a 1 s profile after them: %d %.80q; want 200", resp.StatusCode, body)
	}
}

// A profile asked for in a form in the body is made as long as the URL
// says, which the write time is set by. net/http/pprof's FormValue
// preferred the body's seconds: a POST .../profile?seconds=1 with
// seconds=8 in its body made an 8 s profile under a write time of 1 s
// more than 3 s, and the client got an empty reply. (The 3 s spare is
// for a busy machine, whose 1 s profile may end late.)
func TestPprofSecondsFromURLOnly(t *testing.T) {
	defer admin.SetWriteTimeout(3 * time.Second)()
	hs := admin.NewHandler(admin.NewMetrics(admin.Config{}), true).HTTPServer(slog.New(slog.DiscardHandler))
	ts := startHTTP(hs, nil)
	defer ts.Close()
	client := &http.Client{Timeout: bound}
	resp, err := client.PostForm(ts.URL+"/debug/pprof/profile?seconds=1", url.Values{"seconds": {"8"}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK || len(body) == 0 {
		t.Fatalf("a POST asking for 1 s in its URL and 8 s in its body, with a 3 s write time: %d, %d bytes, %v; want 200 and a profile", resp.StatusCode, len(body), err)
	}
}

// pprofSeconds takes maxPprofSeconds itself, for every path, and a
// trace's fraction down to a nanosecond; below that a trace's seconds
// make no time at all (?seconds=1e-10 was taken, for an empty trace),
// and are refused as 0 is. Only a seconds past the bound is told that
// profiles are made one at a time: said to ?seconds=0 or =abc, it was
// beside the point.
func TestPprofSecondsBounds(t *testing.T) {
	const tooLong = "one at a time"
	for _, tc := range []struct {
		path, seconds string
		want          time.Duration // 0: refused
		long          bool          // refused as past the bound
	}{
		{"/debug/pprof/profile", "300", 5 * time.Minute, false},
		{"/debug/pprof/trace", "300", 5 * time.Minute, false},
		{"/debug/pprof/heap", "300", 5 * time.Minute, false},
		{"/debug/pprof/trace", "0.5", 500 * time.Millisecond, false},
		{"/debug/pprof/trace", "1e-9", time.Nanosecond, false},
		{"/debug/pprof/trace", "1e-10", 0, false},
		{"/debug/pprof/trace", "5e-324", 0, false},
		{"/debug/pprof/trace", "0", 0, false},
		{"/debug/pprof/trace", "abc", 0, false},
		{"/debug/pprof/trace", "-1e999", 0, false},
		{"/debug/pprof/profile", "0", 0, false},
		{"/debug/pprof/profile", "abc", 0, false},
		{"/debug/pprof/profile", "-99999999999999999999", 0, false},
		{"/debug/pprof/profile", "301", 0, true},
		{"/debug/pprof/profile", "99999999999999999999", 0, true},
		{"/debug/pprof/trace", "300.000001", 0, true},
		{"/debug/pprof/trace", "1e999", 0, true},
		{"/debug/pprof/heap", "301", 0, true},
	} {
		d, err := admin.PprofSeconds(tc.path, url.Values{"seconds": {tc.seconds}})
		switch {
		case tc.want != 0 && (err != nil || d != tc.want):
			t.Errorf("%s?seconds=%s: %v, %v; want %v", tc.path, tc.seconds, d, err, tc.want)
		case tc.want == 0 && (err == nil || !strings.Contains(err.Error(), `"seconds"`) || strings.Contains(err.Error(), tooLong) != tc.long):
			t.Errorf("%s?seconds=%s: %v, %v; want it refused, saying why (%q: %v)", tc.path, tc.seconds, d, err, tooLong, tc.long)
		}
	}
}

// Whatever seconds says, pprofSeconds refuses it or says how long
// net/http/pprof, given it, makes the profile or trace: the write time
// is set by it.
func FuzzPprofSeconds(f *testing.F) {
	for _, s := range []string{"30", "1", "0", "-1", "1.5", "1e-9", "NaN", "Inf", "abc", "", "300", "301", "3600", "0x10", "+5", " 5", "99999999999999999999", "1e-10"} {
		f.Add("/debug/pprof/profile", s)
		f.Add("/debug/pprof/trace", s)
	}
	f.Add("/debug/pprof/heap", "5")
	f.Fuzz(func(t *testing.T, path, seconds string) {
		d, err := admin.PprofSeconds(path, url.Values{"seconds": {seconds}})
		if err != nil {
			return
		}
		if d <= 0 || d > 5*time.Minute {
			t.Fatalf("%s?seconds=%q: %v, want more than 0 and at most 5 minutes", path, seconds, d)
		}
		// As net/http/pprof reads it (Profile, Trace, and a delta
		// profile, which refuses what is not a positive integer).
		var want time.Duration
		if path == "/debug/pprof/trace" {
			sec, err := strconv.ParseFloat(seconds, 64)
			if err != nil || sec <= 0 || math.IsNaN(sec) {
				sec = 1
			}
			want = time.Duration(sec * float64(time.Second))
		} else {
			sec, err := strconv.ParseInt(seconds, 10, 64)
			if err != nil || sec <= 0 {
				t.Fatalf("%s?seconds=%q: taken as %v; net/http/pprof takes its default or refuses it", path, seconds, d)
			}
			want = time.Duration(sec) * time.Second
		}
		if d != want {
			t.Fatalf("%s?seconds=%q: %v, but net/http/pprof makes it %v", path, seconds, d, want)
		}
	})
}

// /debug/pprof/symbol reads a bounded body of addresses: it keeps its
// answer whole until it has read them all, a line with a function's name
// for each, so 180 MB of them took shout to a gigabyte of memory.
//
// The body is 4 MiB of blocks, each an address that has a name and
// zeros that have none, so that the answer for the addresses read is a
// few kilobytes. The request goes on a connection of the test's own, its
// body written apart from the reading of the answer: the server answers
// once it has read its bound, and closes with the rest of the body
// unread, which resets the connection (after net/http's half second for
// the client to read the answer). http.Client, whose write of the body
// then failed, closed the connection under its read of the answer: on a
// busy machine, which had not read it in half a second, that failed
// ('use of closed network connection'), one run in four under stalls.
// An answer that small is in the client's receive queue before the
// server closes, and the reset does not take it from there.
func TestPprofSymbolBodyBounded(t *testing.T) {
	hs := httptest.NewServer(admin.NewHandler(admin.NewMetrics(admin.Config{}), true))
	defer hs.Close()
	pc := "0x" + strconv.FormatUint(uint64(reflect.ValueOf(TestPprofSymbolBodyBounded).Pointer()), 16) + "+"
	block := pc + strings.Repeat("0+", (4<<10-len(pc))/2)
	blocks := 4 << 20 / len(block)
	sent := strings.Repeat(block, blocks)
	req, err := http.NewRequest("POST", hs.URL+"/debug/pprof/symbol", strings.NewReader(sent))
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.DialTimeout("tcp", hs.Listener.Addr().String(), bound)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(bound))
	wrote := make(chan error, 1)
	go func() { wrote <- req.Write(c) }() // fails, reset, once the server has answered
	defer func() { c.Close(); <-wrote }()
	resp, err := http.ReadResponse(bufio.NewReader(c), req)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%v, after %d bytes of the answer: %.200q", err, len(body), body)
	}
	named := strings.Count(string(body), "TestPprofSymbolBodyBounded\n")
	if named >= blocks || !strings.Contains(string(body), "request body too large") {
		t.Errorf("%d bytes, %d named addresses: %d of them named, ending %q; want the first addresses' names, not all, and to be told the rest was too large",
			len(sent), blocks, named, body[max(0, len(body)-80):])
	}
	if named == 0 {
		t.Errorf("the addresses read were not looked up: %.200q", body)
	}
}
