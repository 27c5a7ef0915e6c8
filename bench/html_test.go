package bench_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"html"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"shout/bench"
	"shout/endpoint"
	"shout/internal/shouttest"
)

// hostile is a first wrong reply a server could make: it must show as
// text, never become markup.
const hostile = `got "</pre><img src=x onerror=alert(1)></script><script>alert(2)</script>", want "X"`

// sampleReport is a 30-second run with a bad patch, as a page shows it.
func sampleReport() *bench.Report {
	r := &bench.Report{
		Sent: 2_900_000, Messages: 2_900_000, MessagesPerSec: 96_000, BytesPerSec: 6_144_000,
		LatencyUS:  bench.Latency{P50: 480, P90: 900, P99: 2100, P999: 5200, Max: 31000},
		Mismatches: 12, Errors: 1, FirstMismatch: hostile, FirstError: "read tcp 127.0.0.1:1->127.0.0.1:2: <reset>",
		Settings: bench.Settings{Addr: "127.0.0.1:8080", Network: "tcp", Conns: 50, Size: 64, Depth: 1,
			DurationS: 30, WarmupS: 1, TimeoutS: 5, Text: "utf8", Mode: "upper", Lang: "tr", SourceIPs: 16},
		MeasuredS: 30, ConnectS: 0.01, DrainS: 0.002,
	}
	for i := 1; i <= 30; i++ {
		s := bench.Second{T: float64(i), MessagesPerSec: 90_000 + 10_000*math.Sin(float64(i)/3),
			P50US: 450 + 5*float64(i), P99US: 2000 + 100*math.Cos(float64(i))}
		if i == 17 {
			s.Wrong, s.Errors = 12, 1
		}
		r.Timeline = append(r.Timeline, s)
	}
	for k := 0; k <= 60; k++ {
		q := 100 * (1 - math.Pow(10, -float64(k)/10))
		r.Percentiles = append(r.Percentiles, bench.Percentile{Percent: q, US: 400 * math.Pow(1.12, float64(k))})
	}
	r.Percentiles = append(r.Percentiles, bench.Percentile{Percent: 100, US: 31000})
	return r
}

// writeEach is r as the text report, the page and the JSON line say it.
func writeEach(t *testing.T, r *bench.Report) (text, page, line string) {
	t.Helper()
	var b strings.Builder
	r.WriteText(&b)
	_, page = writePage(t, r)
	j, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return b.String(), page, string(j)
}

func writePage(t *testing.T, r *bench.Report) (path string, page string) {
	t.Helper()
	var buf bytes.Buffer
	if err := r.WriteHTML(&buf); err != nil {
		t.Fatal(err)
	}
	path = filepath.Join(t.TempDir(), "report.html")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, buf.String()
}

// TestWriteHTMLEscapesAndStandsAlone: what the server sent is escaped,
// and the page fetches nothing.
func TestWriteHTMLEscapesAndStandsAlone(t *testing.T) {
	_, page := writePage(t, sampleReport())
	for _, bad := range []string{"<img", "<script>alert", "</pre><", "@import", "url("} {
		if i := strings.Index(page, bad); i >= 0 {
			t.Errorf("page contains %q: ...%s...", bad, page[max(0, i-80):min(len(page), i+80)])
		}
	}
	if m := regexp.MustCompile(`<[a-z]+\s[^>]*\b(src|href)\s*=[^>]*>`).FindString(page); m != "" {
		t.Errorf("page loads something: %s", m)
	}
	for _, want := range []string{
		`<pre id="first-mismatch">got &#34;&lt;/pre&gt;&lt;img src=x onerror=alert(1)&gt;`,
		`<pre id="first-error">read tcp 127.0.0.1:1-&gt;127.0.0.1:2: &lt;reset&gt;</pre>`,
		`not all right: 12 wrong, 1 error`,
		`<tr><th>expected reply</th><td>upper (tr)</td></tr>`,
		`<tr><th>connections</th><td>50 from 127.0.0.1-16</td></tr>`,
		"uPlot", // the library, inlined
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
}

// TestHTMLRenders opens the page in headless Chromium and checks that
// uPlot drew every chart: its DOM for each, with the series in the
// legends, and on the screenshot the throughput and latency-distribution
// lines, each across most of the page's width (a legend's colour swatch
// alone is a few pixels wide).
func TestHTMLRenders(t *testing.T) {
	t.Parallel()
	path, _ := writePage(t, sampleReport())
	chromium := shouttest.Tool(t, "chromium", "chromium")

	shot := filepath.Join(t.TempDir(), "shot.png")
	dom := string(shouttest.Headless(t, chromium, "--window-size=1100,2000", "--screenshot="+shot, "--dump-dom", "file://"+path))
	if n := strings.Count(dom, `class="uplot`); n != 4 {
		t.Errorf("%d uPlot charts in the DOM, want 4", n)
	}
	for _, id := range []string{"throughput", "latency", "distribution", "problems"} {
		if !regexp.MustCompile(`<div class="chart" id="` + id + `"><div class="uplot[^"]*"[^>]*>.*?<canvas `).MatchString(dom) {
			t.Errorf("chart %s has no uPlot canvas", id)
		}
	}
	for _, label := range []string{"messages/s", "p50", "p99", "latency", "max", "wrong", "lost", "errors"} {
		if !strings.Contains(dom, `<div class="u-label">`+label+`</div>`) {
			t.Errorf("no legend label %q in the DOM", label)
		}
	}
	if strings.Contains(dom, "<img") {
		t.Error("the first wrong reply became an element")
	}

	f, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		what string
		rgb  color.RGBA
	}{
		{"throughput", color.RGBA{0x1f, 0x6f, 0xeb, 0xff}},
		{"latency distribution", color.RGBA{0x82, 0x50, 0xdf, 0xff}},
	} {
		if n, w := columnsWith(img, c.rgb), img.Bounds().Dx(); n < w/2 {
			t.Errorf("the %s line's colour is in %d of %d columns of the screenshot; want at least half", c.what, n, w)
		}
	}
}

// columnsWith counts the columns of img that have a pixel close to c.
func columnsWith(img image.Image, c color.RGBA) int {
	near := func(a, b uint32) bool { return max(a, b)-min(a, b) <= 24<<8 }
	b, n := img.Bounds(), 0
	for x := b.Min.X; x < b.Max.X; x++ {
		for y := b.Min.Y; y < b.Max.Y; y++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			if near(r, uint32(c.R)<<8) && near(g, uint32(c.G)<<8) && near(bl, uint32(c.B)<<8) {
				n++
				break
			}
		}
	}
	return n
}

// TestUPlotChecksum: the vendored uPlot is the file its README records,
// and can be inlined.
func TestUPlotChecksum(t *testing.T) {
	readme, err := os.ReadFile("uplot/README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"uPlot.iife.min.js", "uPlot.min.css"} {
		b, err := os.ReadFile("uplot/" + name)
		if err != nil {
			t.Fatal(err)
		}
		// Inlined raw into <script> and <style>: these would end them early.
		for _, end := range []string{"</script", "</style", "<!--"} {
			if bytes.Contains(bytes.ToLower(b), []byte(end)) {
				t.Errorf("uplot/%s contains %q, which would break the page it is inlined into", name, end)
			}
		}
		sum := sha256.Sum256(b)
		if want := "| " + name + " sha256 | " + hex.EncodeToString(sum[:]) + " |"; !strings.Contains(string(readme), want) {
			t.Errorf("uplot/README.md does not record %q", want)
		}
	}
}

// A UDP run's page counts sockets, as its header does (11cb768): UDP has
// no connections.
func TestWriteHTMLUDPCountsSockets(t *testing.T) {
	r := sampleReport()
	r.Network, r.SourceIPs = "udp", 0
	_, page := writePage(t, r)
	if want := `<tr><th>sockets</th><td>50</td></tr>`; !strings.Contains(page, want) {
		i := strings.Index(page, `<table id="settings">`)
		t.Errorf("page lacks %q; its settings: %s", want, page[i:i+min(len(page)-i, 300)])
	}
}

// An open loop's page says no depth, which it does not take (--depth
// with --rate is a usage error): it said "open loop at 1000 msg/s,
// depth 1", as the header did, and its JSON "depth": 1.
func TestOpenLoopSaysNoDepth(t *testing.T) {
	s := bench.Config{Endpoint: endpoint.Endpoint{Network: "tcp", Address: "127.0.0.1:1"}, Rate: 1000}.Settings()
	if s.Depth != 0 {
		t.Errorf("an open loop's settings have depth %d, want 0 (none)", s.Depth)
	}
	r := sampleReport()
	r.Rate, r.Depth = 1000, 1
	_, page := writePage(t, r)
	if want := "<tr><th>load</th><td>open loop at 1000 msg/s</td></tr>"; !strings.Contains(page, want) {
		i := strings.Index(page, `<table id="settings">`)
		t.Errorf("page lacks %q; its settings: %s", want, page[i:i+min(len(page)-i, 700)])
	}
	r = sampleReport() // a closed loop's says its depth
	r.Rate, r.Depth = 0, 4
	if _, page := writePage(t, r); !strings.Contains(page, "closed loop, depth 4") {
		t.Errorf("a closed loop's page lacks %q", "closed loop, depth 4")
	}
}

// A UDP run's report and page say how long setting its sockets up took,
// not connecting, as its header does (37d6eb8): UDP makes no connection.
func TestUDPSetUpIsNoConnecting(t *testing.T) {
	for _, tc := range []struct{ network, text, row, not string }{
		{"tcp", "(connecting took 0.01s", "<tr><th>connecting</th><td>took 0.01 s", "setting"},
		{"udp", "(setting the sockets up took 0.01s", "<tr><th>setting up</th><td>took 0.01 s", "connecting"},
	} {
		r := sampleReport()
		r.Network = tc.network
		var text strings.Builder
		r.WriteText(&text)
		_, page := writePage(t, r)
		if !strings.Contains(text.String(), tc.text) || strings.Contains(text.String(), tc.not) {
			t.Errorf("%s: the report lacks %q, or has %q:\n%s", tc.network, tc.text, tc.not, text.String())
		}
		if !strings.Contains(page, tc.row) || strings.Contains(page, "<th>"+tc.not) {
			i := strings.Index(page, `<table id="settings">`)
			t.Errorf("%s: the page lacks %q, or has a row %q; its settings: %s", tc.network, tc.row, tc.not, page[i:i+min(len(page)-i, 1500)])
		}
	}
}

// The page says which lost replies came late, as the text does.
func TestPageSaysLate(t *testing.T) {
	r := sampleReport()
	r.Lost, r.Late, r.DroppedByBench = 5, 3, 0
	if _, page := writePage(t, r); !strings.Contains(page, "<td>3 came later than the timeout</td>") {
		t.Errorf("the page does not say 3 came late")
	}
}

// The warm-up's datagrams given up with no reply (warmup_lost) are
// shown apart, as its errors are, in the text and on the page: they were
// in the JSON alone (but for the verdict of a run that sent nothing),
// where README says they are reported apart as the warm-up's errors are.
func TestWarmupLostShownApart(t *testing.T) {
	r := sampleReport()
	r.Network, r.SourceIPs, r.WarmupLost = "udp", 0, 3
	var text bytes.Buffer
	r.WriteText(&text)
	_, page := writePage(t, r)
	for _, out := range []struct{ name, got, want string }{
		{"text", text.String(), "  warm-up   3 datagrams given up with no reply within the timeout, 5s, before measuring, in no count above\n"},
		{"page", page, `<tr><th>lost in the warm-up</th><td class="n">3</td><td>datagrams given up with no reply within 5s, before measuring, in no other count</td></tr>`},
	} {
		if !strings.Contains(out.got, out.want) {
			t.Errorf("the %s lacks %q", out.name, out.want)
		}
	}
}

// The warm-up's wrong replies (warmup_wrong) are shown apart, in the
// text, the JSON and on the page, the first as the measured first is,
// and make a run whose every measured reply was right not all right: a
// server that answered wrong in the warm-up answers wrong. They were
// counted nowhere, and such a run said "every reply checked: all right".
func TestWarmupWrongShownApart(t *testing.T) {
	r := sampleReport()
	r.Mismatches, r.Errors, r.FirstMismatch, r.FirstError = 0, 0, "", ""
	for k := range r.Timeline {
		r.Timeline[k].Wrong, r.Timeline[k].Errors = 0, 0
	}
	if !r.OK() {
		t.Fatalf("the sample, its wrong replies and errors taken out, is not all right: %+v", r)
	}
	first := `got "NOT\x1b[31m\n", want "ABC\n" (first difference at byte 0)`
	r.WarmupWrong, r.FirstWarmupWrong = 2, strings.Replace(first, `\x1b`, "\x1b", 1) // (an ESC the server chose, raw)
	text, page, line := writeEach(t, r)
	for _, out := range []struct{ name, got, want string }{
		{"text", text, "  warm-up   2 wrong replies before measuring, in no count above; the first: " + first + "\n"},
		{"verdict", text, "  not all right: 2 wrong in the warm-up\n"},
		{"JSON", line, `"warmup_wrong":2,"first_warmup_wrong":"got \"NOT\u001b[31m\\n\", want \"ABC\\n\" (first difference at byte 0)",`},
		{"JSON's verdict", line, `"ok":false,"verdict":"not all right: 2 wrong in the warm-up"`},
		{"page", page, `<tr><th>wrong in the warm-up</th><td class="n">2</td><td>replies before measuring, in no other count; the first: ` + html.EscapeString(first) + `</td></tr>`},
	} {
		if !strings.Contains(out.got, out.want) {
			t.Errorf("the %s lacks %s:\n%s", out.name, out.want, out.got[:min(len(out.got), 3000)])
		}
	}
	if strings.Contains(text, "\x1b") {
		t.Errorf("the text report holds the server's ESC raw")
	}
}

// The page names a TLS server as tls://, as bench takes it (it said
// tcp://), and shows the reconnections of a run that made them.
func TestPageSaysTLSAndReconnects(t *testing.T) {
	r := sampleReport()
	r.TLS, r.Reconnect, r.Reconnects, r.Unserved, r.Resent = true, true, 7, 2, 16
	_, page := writePage(t, r)
	for _, want := range []string{"<h1>shout bench: tls://127.0.0.1:8080</h1>",
		"<tr><th>made again</th><td class=\"n\">7</td><td>connections made again after the server closed them or they failed; 2 closed by the server before serving a reply; 16 messages owed at a graceful close sent again</td></tr>"} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %s", want)
		}
	}
	if strings.Contains(page, "tcp://") {
		t.Errorf("the page names the TLS server tcp://")
	}
}

// The page calls the count of messages answered "messages", as the text
// report and the JSON do: it called them "replies", the word the text
// uses for wrong and lost.
func TestPageNamesMessagesAsTheTextDoes(t *testing.T) {
	text, page, line := writeEach(t, sampleReport())
	for _, out := range []struct{ name, got, want string }{
		{"text", text, "  messages  2900000 answered of 2900000 sent  (96000 msg/s, 6.1 MB/s of replies came while measuring)"},
		{"page", page, `<tr><th>messages</th><td class="n">2900000</td><td>answered of 2900000 sent; 96000 msg/s, 6.1 MB/s of replies came while measuring</td></tr>`},
		{"JSON", line, `"sent":2900000,"messages":2900000,`},
	} {
		if !strings.Contains(out.got, out.want) {
			t.Errorf("the %s lacks %s", out.name, out.want)
		}
	}
}

// A page whose timeline's points each cover more than a second (a run
// longer than a day merges them in pairs) says how long, and what a
// point's counts and percentiles are then; one of seconds says nothing.
// The page drew merged points as seconds: a point's wrong, lost and
// errors were of days, charted as of one second.
func TestWriteHTMLSaysWhatAMergedPointCovers(t *testing.T) {
	r := sampleReport()
	_, page := writePage(t, r)
	if strings.Contains(page, `id="timeline-span"`) {
		t.Errorf("a timeline of seconds says its points are merged")
	}
	for k := range r.Timeline {
		r.Timeline[k].T *= 4 // merged twice: each point covers 4 s
	}
	_, page = writePage(t, r)
	if !strings.Contains(page, `<p class="none" id="timeline-span">Each point over time covers the time since the one before it: up to 4s here`) ||
		!strings.Contains(page, "p99 the highest of the seconds in it") {
		t.Errorf("a timeline of 4 s points does not say so:\n%s", page[:min(len(page), 4000)])
	}
}
