package bench

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"strconv"
)

// uPlot draws the charts; see uplot/README.md for where it comes from.
var (
	//go:embed uplot/uPlot.iife.min.js
	uplotJS string
	//go:embed uplot/uPlot.min.css
	uplotCSS string
)

var htmlPage = template.Must(template.New("report").Funcs(template.FuncMap{
	"us":  us,
	"dur": seconds,
	"mb":  func(bytesPerSec float64) string { return fmt.Sprintf("%.1f", bytesPerSec/1e6) },
}).Parse(htmlTemplate))

// WriteHTML writes the report as one HTML page that needs no network: the
// settings, the totals, charts of throughput, latency and problems over
// time and of the latency distribution, and the first wrong reply and
// first error. What the server sent is escaped: for HTML, and as the
// text report escapes it (WriteText), so that no control character, nor
// one that reorders the line, is shown as itself.
func (r *Report) WriteHTML(w io.Writer) error {
	shown := r.printable()
	r = &shown
	return htmlPage.Execute(w, struct {
		*Report
		Loop, Verdict, UnsentText  string
		MeasuredConns, ServedConns string
		MsgWord                    string
		UnawaitedWhy, OutOfStep    string
		SkippedText                string
		TimedFrom                  string
		TimelineSpan               float64
		UPlotJS                    template.JS
		UPlotCSS                   template.CSS
	}{
		Report:        r,
		Loop:          loadShape(r.Rate),
		Verdict:       r.verdict(),
		UnsentText:    r.unsentText(),
		MeasuredConns: r.measuredConns(),
		ServedConns:   r.servedConns(),
		MsgWord:       r.msgWord(),
		UnawaitedWhy:  unawaitedWhy,
		OutOfStep:     r.outOfStep(),
		SkippedText:   r.skippedText(),
		TimedFrom:     r.timedFrom(),
		TimelineSpan:  r.timelineSpan(),
		UPlotJS:       template.JS(uplotJS),
		UPlotCSS:      template.CSS(uplotCSS),
	})
}

// timelineSpan is the longest time one of r's timeline entries covers,
// if past a second and a half (0 otherwise): a run longer than
// maxTimeline seconds merged them, each point covering more than a
// second, which the page says.
func (r *Report) timelineSpan() float64 {
	most, from := 0.0, 0.0
	for _, s := range r.Timeline {
		most = max(most, s.T-from)
		from = s.T
	}
	if most < 1.5 {
		return 0
	}
	return most
}

// loadShape says how the load was made.
func loadShape(rate float64) string {
	if rate > 0 {
		return "open loop at " + strconv.FormatFloat(rate, 'f', -1, 64) + " msg/s" // 0.5 is not 0
	}
	return "closed loop"
}

const htmlTemplate = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>shout bench: {{.URL}}</title>
<style>{{.UPlotCSS}}</style>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em auto; max-width: 1100px; padding: 0 1em; color: #1f2328; }
h1 { font-size: 1.4em; margin: 0 0 .3em; }
h2 { font-size: 1.1em; margin: 1.4em 0 .4em; }
.verdict { font-weight: 600; padding: .4em .7em; border-radius: 4px; display: inline-block; }
.ok { background: #dafbe1; } .bad { background: #ffebe9; }
table { border-collapse: collapse; margin: .3em 0; }
th, td { text-align: left; padding: .15em 1.2em .15em 0; vertical-align: top; }
th { font-weight: 500; color: #59636e; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
.cols { display: flex; gap: 2em; flex-wrap: wrap; }
pre { white-space: pre-wrap; word-break: break-all; background: #f6f8fa; padding: .6em; border-radius: 4px; }
.chart { margin: .6em 0 1.2em; }
.none { color: #59636e; }
</style>
</head>
<body>
<h1>shout bench: {{.URL}}</h1>
<p class="verdict {{if .OK}}ok{{else}}bad{{end}}" id="verdict">{{.Verdict}}</p>

<div class="cols">
<div>
<h2>Settings</h2>
<table id="settings">
<tr><th>server</th><td>{{.URL}}</td></tr>
<tr><th>{{if eq .Network "udp"}}sockets{{else}}connections{{end}}</th><td>{{.Conns}}{{if .SourceIPs}} from 127.0.0.1-{{.SourceIPs}}{{end}}</td></tr>
<tr><th>messages</th><td>{{.Size}} bytes, {{.Text}} text</td></tr>
<tr><th>expected reply</th><td>{{.Mode}}{{if .Lang}} ({{.Lang}}){{end}}</td></tr>
<tr><th>load</th><td>{{.Loop}}{{if le .Rate 0.0}}, depth {{.Depth}}{{end}}{{if .Churn}}, a connection per message{{end}}{{if .TLS}}, over TLS{{end}}</td></tr>
<tr><th>measured</th><td>{{printf "%.2f" .MeasuredS}} s{{if .CutShort}} of {{dur .DurationS}}, cut short: {{.CutShort}}{{else if .Interrupted}} of {{dur .DurationS}}, interrupted{{end}}, after {{dur .WarmupS}} warm-up</td></tr>
<tr><th>replies due</th><td>within {{dur .TimeoutS}}</td></tr>
{{if eq .Network "udp"}}<tr><th>setting up</th><td>took {{printf "%.2f" .ConnectS}} s, each socket due within {{dur .ConnectTimeoutS}} (a name looked up: UDP makes no connection)</td></tr>
{{- else}}<tr><th>connecting</th><td>took {{printf "%.2f" .ConnectS}} s, each connection due within {{dur .ConnectTimeoutS}}</td></tr>{{end}}
<tr><th>at the end</th><td>{{printf "%.2f" .DrainS}} s waiting for owed replies{{if .WaitCut}}, until a signal ended the wait{{end}}</td></tr>
</table>
</div>
<div>
<h2>Totals</h2>
<table id="totals">
<tr><th>messages</th><td class="n">{{.Messages}}</td><td>answered of {{.Sent}} sent; {{printf "%.0f" .MessagesPerSec}} msg/s, {{mb .BytesPerSec}} MB/s of replies came while measuring</td></tr>
<tr><th>latency</th><td colspan="2">{{if .Messages}}p50 {{us .LatencyUS.P50}}, p90 {{us .LatencyUS.P90}}, p99 {{us .LatencyUS.P99}}, p99.9 {{us .LatencyUS.P999}}, max {{us .LatencyUS.Max}}{{with .TimedFrom}} ({{.}}){{end}}{{else}}none: no reply to time{{end}}</td></tr>
<tr><th>wrong</th><td class="n">{{.Mismatches}}</td>{{if .MismatchesAfter}}<td>{{.MismatchesAfter}} after an earlier wrong reply on the same connection, with no right one between{{.OutOfStep}}</td>{{end}}</tr>
<tr><th>lost</th><td class="n">{{.Lost}}</td>{{if or .Late .DroppedByBench .Skipped}}<td>{{if .Skipped}}{{.SkippedText}}{{if or .Late .DroppedByBench}}; {{end}}{{end}}{{if .Late}}{{.Late}} came later than the timeout{{if .DroppedByBench}}; {{end}}{{end}}{{if .DroppedByBench}}{{.DroppedByBench}} dropped by bench's own sockets (their receive buffers full: bench did not read in time){{end}}</td>{{end}}</tr>
<tr><th>errors</th><td class="n">{{.Errors}}</td></tr>
{{- if .Unawaited}}
<tr><th>not waited for</th><td class="n">{{.Unawaited}}</td><td>{{.UnawaitedWhy}}</td></tr>
{{- end}}
{{- if .Unsent}}
<tr><th>never sent</th><td class="n">{{.Unsent}}</td><td>{{.UnsentText}}</td></tr>
{{- end}}
{{- if .Unmeasured}}
<tr><th>not measured</th><td class="n">{{.Unmeasured}}</td><td>{{.MeasuredConns}}: less load than asked for</td></tr>
{{- end}}
{{- if .NeverServed}}
<tr><th>not served while measuring</th><td class="n">{{.NeverServed}}</td><td>{{.ServedConns}}: less load than asked for</td></tr>
{{- end}}
{{- if .WarmupErrors}}
<tr><th>in the warm-up</th><td class="n">{{.WarmupErrors}}</td><td>errors before measuring, in no other count; the first: {{.FirstWarmupError}}</td></tr>
{{- end}}
{{- if .WarmupLost}}
<tr><th>lost in the warm-up</th><td class="n">{{.WarmupLost}}</td><td>{{.MsgWord}}s given up with no reply within {{dur .TimeoutS}}, before measuring, in no other count</td></tr>
{{- end}}
{{- if .WarmupWrong}}
<tr><th>wrong in the warm-up</th><td class="n">{{.WarmupWrong}}</td><td>replies before measuring, in no other count; the first: {{.FirstWarmupWrong}}</td></tr>
{{- end}}
{{- if .Reconnect}}
<tr><th>made again</th><td class="n">{{.Reconnects}}</td><td>connections made again after the server closed them or they failed{{if .Unserved}}; {{.Unserved}} closed by the server before serving a reply{{end}}{{if .Unmade}}; {{.Unmade}} still being made again when the run stopped{{end}}; {{.Resent}} messages owed at a graceful close sent again</td></tr>
{{- end}}
{{- if eq .Network "udp"}}
<tr><th>duplicated</th><td class="n">{{.Duplicates}}</td></tr>
<tr><th>reordered</th><td class="n">{{.Reordered}}</td></tr>
{{- end}}
</table>
</div>
</div>
<p class="none">Every count is of messages sent, and errors met, while measuring.</p>

<h2>First wrong reply</h2>
{{if .FirstMismatch}}<pre id="first-mismatch">{{.FirstMismatch}}</pre>{{else}}<p class="none">none</p>{{end}}
<h2>First error</h2>
{{if .FirstError}}<pre id="first-error">{{.FirstError}}</pre>{{else}}<p class="none">none</p>{{end}}

{{- with .TimelineSpan}}
<p class="none" id="timeline-span">Each point over time covers the time since the one before it: up to {{dur .}} here (a run longer than a day of seconds merges its points in pairs, as often as it takes; a stalled machine samples late). A point's counts are of that time, its messages/s over it, and its p50 and p99 the highest of the seconds in it.</p>
{{- end}}
<h2>Throughput</h2>
<div class="chart" id="throughput"></div>
<h2>Latency over time</h2>
<div class="chart" id="latency"></div>
<h2>Latency distribution</h2>
<div class="chart" id="distribution"></div>
<h2>Wrong, lost and errors over time</h2>
<div class="chart" id="problems"></div>

<script>{{.UPlotJS}}</script>
<script>
"use strict";
const R = {{.Report}};

// fmtUS formats microseconds as bench's text report does, without
// trailing zeros.
function fmtUS(v) {
	if (v == null) return "";
	if (v >= 1e6) return +(v / 1e6).toFixed(2) + "s";
	if (v >= 1e3) return +(v / 1e3).toFixed(2) + "ms";
	return v.toFixed(0) + "µs";
}
function fmtNum(v) { return v == null ? "" : Math.round(v).toLocaleString("en"); }
// pct turns x = 1/(1-q) of the distribution's log axis back into "99.9%".
function pct(x) { return (+(100 - 100 / x).toPrecision(10)) + "%"; }

// chart draws one uPlot chart into the element id, or says why not.
function chart(id, opts, data, empty) {
	const el = document.getElementById(id);
	if (data[0].length == 0) {
		el.innerHTML = '<p class="none"></p>';
		el.firstChild.textContent = empty;
		return;
	}
	const size = () => ({ width: Math.max(320, el.clientWidth), height: 260 });
	const u = new uPlot(Object.assign(opts, size()), data, el);
	window.addEventListener("resize", () => u.setSize(size()));
}
// uPlot keeps and changes the option objects it is given: a new one each time.
const fromZero = () => ({ range: (u, min, max) => [0, max > 0 ? max * 1.1 : 1] });
const xSeconds = () => ({ label: "seconds measured", value: (u, v) => v == null ? "" : v.toFixed(1) + " s" });
const xAxis = () => ({ label: "seconds measured" });

const tl = R.timeline || [];
const t = tl.map(s => s.t);
const noSecond = "No whole second was measured.";

chart("throughput", {
	scales: { x: { time: false }, y: fromZero() },
	axes: [xAxis(), { label: "messages/s", size: 80, values: (u, vs) => vs.map(fmtNum) }],
	series: [xSeconds(), { label: "messages/s", stroke: "#1f6feb", width: 2, value: (u, v) => fmtNum(v) }],
}, [t, tl.map(s => s.messages_per_sec)], noSecond);

// A second without replies has no latency: a gap, not 0 on a log scale.
const pos = v => v > 0 ? v : null;
chart("latency", {
	scales: { x: { time: false }, y: { distr: 3 } },
	axes: [xAxis(), { label: "latency", size: 80, values: (u, vs) => vs.map(fmtUS) }],
	series: [xSeconds(),
		{ label: "p50", stroke: "#1a7f37", width: 2, value: (u, v) => fmtUS(v) },
		{ label: "p99", stroke: "#bf8700", width: 2, value: (u, v) => fmtUS(v) }],
}, [t, tl.map(s => pos(s.p50_us)), tl.map(s => pos(s.p99_us))], noSecond);

// The distribution on a log axis of 1/(1-q): 0%, 90%, 99%, 99.9%, ...
// evenly spaced, as HdrHistogram plots it; the maximum is a line.
const all = R.percentiles || [];
const ps = all.filter(p => p.percent < 100);
const qx = ps.map(p => 1 / (1 - p.percent / 100));
const maxUS = all.length ? all[all.length - 1].us : null;
chart("distribution", {
	scales: { x: { time: false, distr: 3 }, y: { distr: 3 } },
	axes: [
		{ label: "percentile", splits: (u, i, min, max) => {
			const s = [];
			for (let x = 1; x <= max * 1.0001; x *= 10) s.push(x);
			return s;
		}, values: (u, vs) => vs.map(pct) },
		{ label: "latency", size: 80, values: (u, vs) => vs.map(fmtUS) }],
	series: [{ label: "percentile", value: (u, v) => v == null ? "" : pct(v) },
		{ label: "latency", stroke: "#8250df", width: 2, value: (u, v) => fmtUS(v) },
		{ label: "max", stroke: "#59636e", width: 1, dash: [6, 4], points: { show: false }, value: (u, v) => fmtUS(v) }],
	padding: [null, 40, null, null],
}, [qx, ps.map(p => pos(p.us)), ps.map(() => maxUS)], "No reply came back.");

// Counts are whole: no ticks between them.
const counts = [];
for (let i = 1; i <= 1e12; i *= 10) counts.push(i, 2 * i, 5 * i);
chart("problems", {
	scales: { x: { time: false }, y: fromZero() },
	axes: [xAxis(), { label: "messages", size: 80, incrs: counts, values: (u, vs) => vs.map(fmtNum) }],
	series: [xSeconds(),
		{ label: "wrong", stroke: "#cf222e", width: 2 },
		{ label: "lost", stroke: "#bf3989", width: 2 },
		{ label: "errors", stroke: "#e16f24", width: 2 }],
}, [t, tl.map(s => s.wrong), tl.map(s => s.lost), tl.map(s => s.errors)], noSecond);
</script>
</body>
</html>
`
