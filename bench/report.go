package bench

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"shout/internal/escape"
)

// WriteHeader writes the run's settings in one line, for the start of a
// run, so a long run shows at once what it does.
func (s Settings) WriteHeader(w io.Writer) {
	loop := loadShape(s.Rate)
	mode := s.Mode
	if s.Lang != "" {
		mode += " (" + s.Lang + ")"
	}
	from := ""
	if s.SourceIPs > 0 {
		from = fmt.Sprintf(" from 127.0.0.1-%d", s.SourceIPs)
	}
	unit := "conns"
	if s.Network == "udp" {
		unit = "sockets"
	}
	if s.Conns == 1 {
		unit = strings.TrimSuffix(unit, "s")
	}
	conns := fmt.Sprintf("%d %s", s.Conns, unit)
	if s.Churn {
		conns = fmt.Sprintf("churn: %d at once, a new connection for each message", s.Conns)
	}
	// UDP makes no connection: its bound is the socket's set-up, a name's
	// lookup (said "connecting within", a wait for nothing over UDP).
	connecting := "connecting within %v"
	if s.Network == "udp" {
		connecting = "each socket set up (a name looked up) within %v: UDP makes no connection"
	}
	depth := fmt.Sprintf("depth %d, ", s.Depth)
	if s.Rate > 0 {
		depth = "" // an open loop takes none
	}
	fmt.Fprintf(w, "%s: %s%s, %d-byte %s messages, %s%s, mode %s, %v measured after %v warm-up, replies due within %v, "+connecting+"\n",
		escape.Printable(s.URL()), conns, from, s.Size, s.Text, depth, loop, mode, seconds(s.DurationS), seconds(s.WarmupS), seconds(s.TimeoutS), seconds(s.ConnectTimeoutS))
}

// URL is the server the run is against, as shout bench takes it:
// tcp://127.0.0.1:8080, tls://…, udp://…, unix:///path.
func (s Settings) URL() string {
	scheme := s.Network
	if s.TLS {
		scheme = "tls"
	}
	return scheme + "://" + s.Addr
}

// WriteText writes the results for people: throughput, latency, what was
// wrong and the first instance of each kind, and the verdict last. Its
// texts are escaped (escape.Printable), where the report's fields (its
// JSON) hold them as they are: an error's may name a Unix socket, whose
// name may hold ESC or a newline, and a terminal would obey them.
func (r *Report) WriteText(w io.Writer) {
	shown := r.printable()
	shown.writeText(w)
}

// printable is a copy of r whose texts are escaped (escape.Printable),
// for people.
func (r *Report) printable() Report {
	shown := *r
	for _, t := range []*string{&shown.Addr, &shown.CutShort, &shown.FirstError, &shown.FirstWarmupError, &shown.FirstMismatch, &shown.FirstWarmupWrong, &shown.NeverServedWhy} {
		*t = escape.Printable(*t)
	}
	return shown
}

// outOfStep is what the wrong replies after an earlier one may be, said
// after their count: one newline cut or added, or one message answered
// with nothing, puts a stream out of step, and they may be right replies
// compared with the wrong message. Not where the first wrong reply was
// another mode's: that server answers every message so (the first wrong
// reply says which), and the rest are that.
func (r *Report) outOfStep() string {
	if errors.As(r.firstMismatch, new(otherMode)) {
		return ""
	}
	return ": if the server cut or added a newline, or answered nothing to a message, right replies compared with the wrong message"
}

func (r *Report) writeText(w io.Writer) {
	measured := fmt.Sprintf("%.2fs", r.MeasuredS)
	switch {
	case r.CutShort != "":
		measured += fmt.Sprintf(" of %v, cut short: %s; every rate is over the %.2fs measured", seconds(r.DurationS), r.CutShort, r.MeasuredS)
	case r.Interrupted:
		measured += fmt.Sprintf(" of %v, interrupted", seconds(r.DurationS))
	}
	cut := ""
	if r.WaitCut {
		cut = ", until a signal ended the wait"
	}
	connecting := "connecting"
	if r.Network == "udp" {
		connecting = "setting the sockets up"
	}
	fmt.Fprintf(w, "  measured  %s (%s took %.2fs, the replies owed at the end %.2fs%s); every count is of messages sent, and errors met, while measuring\n",
		measured, connecting, r.ConnectS, r.DrainS, cut)
	fmt.Fprintf(w, "  messages  %d answered of %d sent  (%.0f msg/s, %.1f MB/s of replies came while measuring)\n", r.Messages, r.Sent, r.MessagesPerSec, r.BytesPerSec/1e6)
	if r.Churn {
		what := "connections"
		if r.TLS {
			what = "connections, each a TLS handshake,"
		}
		fmt.Fprintf(w, "  churn     %d %s at %.0f per second; latency is of the whole: connect to close\n", r.Messages, what, r.MessagesPerSec)
	}
	fmt.Fprintf(w, "  latency   %s", r.latencyText())
	if from := r.timedFrom(); from != "" {
		fmt.Fprintf(w, "  (%s)", from)
	}
	if r.Late > 0 {
		fmt.Fprintf(w, "  (of the replies within the timeout; %d came later)", r.Late)
	}
	fmt.Fprintln(w)
	// Over a stream a reply is lost only if still owed when a connection
	// failed or the run ended: say so only then.
	wrong := fmt.Sprintf("%d wrong", r.Mismatches)
	if r.MismatchesAfter > 0 {
		wrong += fmt.Sprintf(" (%d of them after an earlier wrong reply on the same connection, with no right one between%s)", r.MismatchesAfter, r.outOfStep())
	}
	switch {
	case r.Network == "udp":
		fmt.Fprintf(w, "  replies   %s, %d lost, %d duplicated, %d reordered%s", wrong, r.Lost, r.Duplicates, r.Reordered, r.lostWhy())
	case r.Skipped > 0:
		fmt.Fprintf(w, "  replies   %s, %d lost (%s)", wrong, r.Lost, r.skippedWhy())
	case r.Lost > r.Late:
		owed := "owed when a connection failed or the run ended"
		if r.Late > 0 {
			owed = r.lateText() + ", the rest " + owed
		}
		fmt.Fprintf(w, "  replies   %s, %d lost (%s)", wrong, r.Lost, owed)
	case r.Lost > 0:
		fmt.Fprintf(w, "  replies   %s, %d lost (each came later than the timeout, %v)", wrong, r.Lost, seconds(r.TimeoutS))
	default:
		fmt.Fprintf(w, "  replies   %s", wrong)
	}
	if r.Unawaited > 0 {
		fmt.Fprintf(w, ", %d not waited for (%s)", r.Unawaited, unawaitedWhy)
	}
	fmt.Fprintf(w, "; %s\n", count(r.Errors, "error", "errors"))
	if r.Unsent > 0 {
		fmt.Fprintf(w, "  behind    %s\n", r.unsentText())
	}
	if r.Reconnect {
		fmt.Fprintf(w, "  reconnect %s made again after the server closed %s or %s failed", count(r.Reconnects, "connection", "connections"), plural(r.Reconnects, "it", "them"), plural(r.Reconnects, "it", "they"))
		if r.Unserved > 0 {
			fmt.Fprintf(w, "; %d closed by the server before serving a reply", r.Unserved)
		}
		if r.Unmade > 0 {
			fmt.Fprintf(w, "; %d still being made again when the run stopped", r.Unmade)
		}
		fmt.Fprintf(w, "; %s owed at a graceful close %s sent again\n", count(r.Resent, "message", "messages"), plural(r.Resent, "was", "were"))
	}
	if r.FirstMismatch != "" {
		fmt.Fprintf(w, "  first wrong reply: %s\n", r.FirstMismatch)
	}
	if r.FirstError != "" {
		fmt.Fprintf(w, "  first error: %s\n", r.FirstError)
	}
	if r.WarmupErrors > 0 {
		fmt.Fprintf(w, "  warm-up   %s before measuring, in no count above%s; the first: %s\n", count(r.WarmupErrors, "error", "errors"), r.warmupFailed(), r.FirstWarmupError)
	}
	if r.WarmupLost > 0 {
		fmt.Fprintf(w, "  warm-up   %s given up with no reply within the timeout, %v, before measuring, in no count above\n", count(r.WarmupLost, r.msgWord(), r.msgWord()+"s"), seconds(r.TimeoutS))
	}
	if r.WarmupWrong > 0 {
		fmt.Fprintf(w, "  warm-up   %s before measuring, in no count above; the first: %s\n", count(r.WarmupWrong, "wrong reply", "wrong replies"), r.FirstWarmupWrong)
	}
	if r.Unmeasured > 0 {
		fmt.Fprintf(w, "  load      %s: less load than asked for\n", r.measuredConns())
	}
	if r.NeverServed > 0 {
		fmt.Fprintf(w, "  load      %s: less load than asked for\n", r.servedConns())
	}
	fmt.Fprintf(w, "  %s\n", r.verdict())
}

// warmupFailed says, in brackets after the warm-up's errors, what
// became of a connection that failed then: gone while measuring (the
// load line says how many), unless it was made again (Reconnect) or
// was one message's own (Churn). A UDP socket's receive errors do not
// end it, so of a socket nothing is said.
func (r *Report) warmupFailed() string {
	switch {
	case r.Network == "udp":
		return ""
	case r.Churn:
		return " (each on a connection of its own)"
	case r.Reconnect:
		return " (a connection that failed then was made again)"
	}
	return " (a connection that failed then was not there while measuring)"
}

// latencyText is the latency percentiles for people, or, with no reply
// to time (Messages 0), that there is none: "p50 0µs" read as a fast
// server where none answered.
func (r *Report) latencyText() string {
	if r.Messages == 0 {
		return "none: no reply to time"
	}
	l := r.LatencyUS
	return fmt.Sprintf("p50 %s  p90 %s  p99 %s  p99.9 %s  max %s", us(l.P50), us(l.P90), us(l.P99), us(l.P999), us(l.Max))
}

// MarshalJSON is the report in JSON: its fields, then "ok", what OK
// reports, and "verdict", the text report's last line, so that a script
// that reads the JSON alone (bench --json > run.json) has why not too.
func (r *Report) MarshalJSON() ([]byte, error) {
	type fields Report // without this method, which would recurse
	return json.Marshal(struct {
		fields
		AllRight bool   `json:"ok"`
		Verdict  string `json:"verdict"`
	}{fields(*r), r.OK(), r.verdict()})
}

// verdict is the report's last line: all right, or why not.
func (r *Report) verdict() string {
	if r.OK() {
		// What is not to be missed even so: the server closed connections,
		// they failed, or replies came twice (over UDP: the server sent
		// them twice, or the network made copies).
		v := "every reply checked: all right"
		if r.Reconnects > 0 {
			v += fmt.Sprintf(", over %s made again", count(r.Reconnects, "connection", "connections"))
		}
		if r.Unserved > 0 {
			v += fmt.Sprintf(", %d of them after the server closed one before it served a reply", r.Unserved)
		}
		if r.Unmade > 0 {
			v += ", " + r.unmadeConns()
		}
		if r.Duplicates > 0 {
			v += fmt.Sprintf(", %s duplicated", count(r.Duplicates, "reply", "replies"))
		}
		return v
	}
	var why []string
	switch {
	case r.Empty() && r.CutShort == "" && r.warmupHeldEverySocket() && !r.WaitCut && !r.Interrupted:
		// Every socket waited out Timeout for a warm-up datagram's reply
		// that never came: the window was not too short, the replies
		// were missing (a silent server, or one past its budget). Not
		// of an interrupted run, which may have ended in the warm-up.
		why = append(why, fmt.Sprintf("no message was sent in the %v measured: every %s waited for the replies to its warm-up %ss, and %s never came within the timeout, %v",
			seconds(r.DurationS), r.connWord(), r.msgWord(), count(r.WarmupLost, "reply", "replies"), seconds(r.TimeoutS)))
	case r.Empty() && r.CutShort == "":
		// Nothing went out while measuring: a run of 1ns said "no reply
		// came back", of a server that answered every message.
		why = append(why, fmt.Sprintf("no message was sent in the %v measured, too short for one exchange", seconds(r.DurationS)))
	case r.Messages == 0 && r.Late > 0:
		why = append(why, fmt.Sprintf("no reply came within the timeout, %v", seconds(r.TimeoutS)))
	case r.Messages == 0 && r.Network == "udp":
		// A server, NAT or proxy that answers from another port has its
		// replies dropped by bench's connected sockets, unseen.
		why = append(why, "no reply came back (over UDP, a reply counts only from the address and port the datagrams went to)")
	case r.Messages == 0:
		why = append(why, "no reply came back")
	}
	lost := "lost" + r.lostWhy()
	for _, c := range []struct {
		n    int64
		what string
	}{{r.Mismatches, "wrong"}, {r.Lost, lost}, {r.Errors, plural(r.Errors, "error", "errors")}, {r.WarmupWrong, "wrong in the warm-up"}} {
		if c.n > 0 {
			why = append(why, fmt.Sprintf("%d %s", c.n, c.what))
		}
	}
	if r.Unsent > 0 {
		why = append(why, fmt.Sprintf("%d due never sent (%s)", r.Unsent, r.unsentWhy(false)))
	}
	if r.Unawaited > 0 {
		why = append(why, fmt.Sprintf("%d not waited for (%s)", r.Unawaited, unawaitedWhy))
	}
	if r.Unmeasured > 0 {
		why = append(why, r.measuredConns())
	}
	if r.NeverServed > 0 {
		why = append(why, r.servedConns())
	}
	if r.UnansweredSources != "" {
		why = append(why, r.UnansweredSources)
	}
	if r.Unmade > 0 { // not a fault by itself, but what the lost were owed on: a server down at the end
		why = append(why, r.unmadeConns())
	}
	if r.CutShort != "" {
		why = append(why, fmt.Sprintf("cut short after %.2fs of %v (%s)", r.MeasuredS, seconds(r.DurationS), r.CutShort))
	}
	return "not all right: " + strings.Join(why, ", ")
}

// msgWord is what the run's messages are called: datagrams over UDP.
func (r *Report) msgWord() string {
	if r.Network == "udp" {
		return "datagram"
	}
	return "message"
}

// warmupHeldEverySocket reports whether the warm-up's datagrams given up
// with no reply (WarmupLost) may have held every place (Depth) of every
// socket measured, as they must have for a closed loop that sent nothing
// while measuring to have waited for them. (Of 2 sockets with 4 places
// each, one such datagram was said to have held them all, where a
// window of 1ns was too short for one exchange.) An open loop waits for
// no reply.
func (r *Report) warmupHeldEverySocket() bool {
	places := (int64(r.Conns) - r.Unmeasured) * int64(r.Depth)
	return r.Rate <= 0 && r.WarmupLost > 0 && r.WarmupLost >= places
}

// unawaitedWhy is what Unawaited are.
const unawaitedWhy = "owed, within the timeout, when a signal ended the wait at the end: not checked, and not lost"

// measuredConns says how many connections (sockets) were measured of
// those asked for, and why not the rest: "2 of 5 connections measured,
// 3 failed in the warm-up".
func (r *Report) measuredConns() string {
	return fmt.Sprintf("%d of %s measured, %d failed in the warm-up", int64(r.Conns)-r.Unmeasured, count(int64(r.Conns), r.connWord(), r.connWord()+"s"), r.Unmeasured)
}

// servedConns says how many connections served a reply while measuring
// (Reconnect), and why not the rest: "2 of 5 connections served a reply
// while measuring, 3 did not (the first: …)". Not "never": a server at
// its connection limit may serve the rest in the wait at the end.
func (r *Report) servedConns() string {
	return fmt.Sprintf("%d of %s served a reply while measuring, %d did not (the first: %s)",
		int64(r.Conns)-r.NeverServed, count(int64(r.Conns), "connection", "connections"), r.NeverServed, r.NeverServedWhy)
}

// unmadeConns says how many connections were still being made again
// when the run stopped (Reconnect).
func (r *Report) unmadeConns() string {
	return count(r.Unmade, "connection", "connections") + " still being made again when the run stopped"
}

// lostWhy is what is known of the lost, in brackets: how many came late,
// how many the server skipped, and how many bench's own sockets dropped;
// "" if none.
func (r *Report) lostWhy() string {
	var why []string
	if r.Late > 0 {
		why = append(why, r.lateText())
	}
	if r.Skipped > 0 {
		why = append(why, fmt.Sprintf("%d skipped", r.Skipped))
	}
	if r.DroppedByBench > 0 {
		why = append(why, r.droppedText())
	}
	if why == nil {
		return ""
	}
	return " (" + strings.Join(why, "; ") + ")"
}

// count is n and what it counts, in the singular for one: "1 error",
// "2 errors".
func count(n int64, one, many string) string {
	return fmt.Sprintf("%d %s", n, plural(n, one, many))
}

// plural is one if n is 1, else many.
func plural(n int64, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// unsentText says what Unsent is, and why, of the reasons it has.
func (r *Report) unsentText() string {
	return fmt.Sprintf("%s fell due while measuring and %s never sent: %s; they are in no other count, and their latency in no percentile", count(r.Unsent, "message", "messages"), plural(r.Unsent, "was", "were"), r.unsentWhy(true))
}

// unsentWhy says why Unsent were not sent: in a few words, or at length
// (long); a reason alone if it is the only one, else how many each.
func (r *Report) unsentWhy(long bool) string {
	reasons := []struct {
		n           int64
		short, long string
	}{
		{r.UnsentFailed, fmt.Sprintf("on failed %ss", r.connWord()),
			fmt.Sprintf("the %s they fell due on had failed", r.connWord())},
		{r.UnsentUnanswered, "replies too far behind",
			"the server answered so far behind the rate that bench had as many in flight, unanswered, as it keeps (twice the timeout's worth of the rate, and 8,388,608 at most across connections), and held the rest back"},
		{r.Unsent - r.UnsentFailed - r.UnsentUnanswered, "behind the rate",
			"bench sent slower than the rate, held back by a server that took the bytes of those sent slower (or by its own sending: a machine too busy, or over UDP a rate past what one socket sends), and was that far behind it when the time was up"},
	}
	var parts []string
	for _, c := range reasons {
		what := c.short
		if long {
			what = c.long
		}
		switch {
		case c.n >= r.Unsent:
			return what
		case c.n > 0 && long:
			parts = append(parts, fmt.Sprintf("%d because %s", c.n, what))
		case c.n > 0:
			parts = append(parts, fmt.Sprintf("%d %s", c.n, what))
		}
	}
	if long {
		return strings.Join(parts, "; ")
	}
	return strings.Join(parts, ", ")
}

// connWord is what the run's connections are called.
func (r *Report) connWord() string {
	if r.Network == "udp" {
		return "socket"
	}
	return "connection"
}

// timedFrom says where each message's time starts, what a reader of
// wrk2 or fortio asks first: whether a server's stall counts against the
// messages it held up. In a closed loop it does not (coordinated
// omission), and the percentiles look as if the stall were one slow
// reply a connection. "" with no reply timed.
func (r *Report) timedFrom() string {
	switch {
	case r.Messages == 0:
		return ""
	case r.Churn: // a closed loop, each message a connection of its own
		return "each timed from its connect, so the connections a stall held back are in no percentile"
	case r.Rate == 0:
		return "each timed from its send, so the messages a stall held back are in no percentile: an open loop counts them"
	case r.Network == "udp":
		return "each timed from its send, which never waits for the server"
	}
	return "each timed from when it fell due: a stall counts for every message it held up"
}

// skippedWhy says what became of a stream's lost, some of them skipped
// (Skipped): skipped, came late, or owed at the end.
func (r *Report) skippedWhy() string {
	why := []string{r.skippedText()}
	if r.Late > 0 {
		why = append(why, r.lateText())
	}
	if rest := r.Lost - r.Late - r.Skipped; rest > 0 {
		why = append(why, fmt.Sprintf("%d owed when a connection failed or the run ended", rest))
	}
	return strings.Join(why, "; ")
}

// skippedText says how many of the lost the server skipped (Skipped).
func (r *Report) skippedText() string {
	return fmt.Sprintf("%d skipped: the server answered nothing to %s, and answered a later message on %s connection",
		r.Skipped, plural(r.Skipped, "it", "them"), plural(r.Skipped, "its", "their"))
}

// lateText says how many of the lost came late.
func (r *Report) lateText() string {
	return fmt.Sprintf("%d came later than the timeout, %v", r.Late, seconds(r.TimeoutS))
}

// seconds is s seconds as a Go duration, for people: 200µs, not 0.0002s.
//
// At most the longest Duration: that one (someone's "never"), as float64
// seconds, rounds up past it, and converted back wrapped to
// -2562047h47m16.854775808s.
func seconds(s float64) time.Duration {
	ns := math.Round(s * 1e9)
	if ns >= math.MaxInt64 { // (2^63 as a float64)
		return math.MaxInt64
	}
	return time.Duration(ns)
}

// us formats microseconds for people.
func us(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fs", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.2fms", v/1e3)
	}
	return fmt.Sprintf("%.0fµs", v)
}

// droppedText says that bench's own sockets dropped replies.
func (r *Report) droppedText() string {
	return fmt.Sprintf("%d dropped by bench's own sockets, their receive buffers full: bench did not read in time, and the server is not to blame for them", r.DroppedByBench)
}
