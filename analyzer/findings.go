package analyzer

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Fixes, worded once. Each names the change that removes the load, not just the symptom.
const (
	fixCelerySpin = "Stop busy-waiting on results. Chain the work with a chord or a callback (group(...) | callback.s()) " +
		"instead of looping on AsyncResult.ready() / GroupResult.completed_count() / join(); where you must wait, " +
		"use result.get(interval=1.0) or at least time.sleep() between checks. Each check is one query per task."
	fixGenericPoll = "Poll less often with back-off (e.g. 0.5 s doubling to 5 s), or have the writer notify the reader " +
		"(LISTEN/NOTIFY, a queue) instead of re-reading the row."
	fixChurn = "Reuse connections: put a pooler (PgBouncer) in front, or keep a persistent engine/pool in the polling " +
		"process (SQLAlchemy's default QueuePool instead of NullPool; Celery's database backend opens a new connection " +
		"per poll outside forked workers)."
	fixAfterResult = "The result was already final when these polls ran: stop polling a task once its state is " +
		"SUCCESS, FAILURE or REVOKED (forget() the result or drop it from the set being watched)."
	fixRepeated = "The same read with the same values returns the same rows again and again: cache it in the " +
		"application for its natural lifetime, or poll with back-off."
)

// findings derives problems and fixes from a snapshot. It is a pure function of the snapshot,
// so the TUI, reports and logs all say the same thing.
func (a *Analyzer) findings(s *Snapshot) []Finding {
	out := a.keyFindings(s, nil)
	// Pollers whose polls over many keys storm: a loop over a group.
	for _, p := range s.Pollers {
		if p.Storming {
			out = append(out, a.pollerFinding(s, p))
		}
	}
	out = afterResultFinding(s, out)
	out = queueFindings(s, out)
	out = churnFindings(s, out)
	return repeatFindings(s, out)
}

// keyFindings appends the storming watched keys' findings: one per table, spin loops apart.
func (a *Analyzer) keyFindings(s *Snapshot, out []Finding) []Finding {
	type group struct {
		table, column string
		keys          []KeyStat
		spin          bool
	}
	groups := map[string]*group{}
	for _, k := range s.Keys {
		if !k.Storming {
			continue
		}
		id := k.Table + "." + k.Column
		if k.Spinning {
			id += "|spin"
		}
		g := groups[id]
		if g == nil {
			g = &group{table: k.Table, column: k.Column, spin: k.Spinning}
			groups[id] = g
		}
		g.keys = append(g.keys, k)
	}
	ids := make([]string, 0, len(groups))
	for id := range groups {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		g := groups[id]
		var qps, unchanged, polls float64
		var meds []float64
		for _, k := range g.keys {
			qps += k.QPS10
			unchanged += float64(k.UnchangedPolls)
			polls += float64(k.Polls)
			meds = append(meds, k.MedianIntervalMs)
		}
		sort.Float64s(meds)
		celery := strings.Contains(g.table, "celery")
		f := Finding{ID: "poll:" + id, Severity: "high", Fix: fixGenericPoll}
		if celery {
			f.Fix = fixCelerySpin
		}
		what := fmt.Sprintf("%d %s value(s) polled %.0f times/s in total", len(g.keys), g.table+"."+g.column, qps)
		if g.spin {
			f.Kind = "spin-poll"
			f.Summary = "Spin loop: " + what + fmt.Sprintf(", a poll every %.1f ms (median) with no wait in between", meds[len(meds)/2])
		} else {
			f.Kind = "poll-storm"
			f.Summary = "Poll storm: " + what
		}
		f.Evidence = append(f.Evidence,
			fmt.Sprintf("%.0f of %.0f queries/s in the last 10 s are watched polls", s.Rates.WatchedQPS10, s.Rates.QPS10))
		if !s.NoAnswers {
			f.Evidence = append(f.Evidence,
				fmt.Sprintf("%.0f%% of these polls returned exactly what the previous poll returned", 100*unchanged/max(polls, 1)))
		}
		if by := polledBy(sumTags(g.keys), int64(polls)); by != "" {
			f.Evidence = append(f.Evidence, by)
		}
		for i, k := range g.keys {
			if i == 5 {
				f.Evidence = append(f.Evidence, fmt.Sprintf("… and %d more keys", len(g.keys)-5))
				break
			}
			status := fmt.Sprintf("status %q", k.LastStatus)
			if s.NoAnswers {
				status = "status not in a log"
			}
			f.Evidence = append(f.Evidence, fmt.Sprintf("%s: %.0f/s, %d polls, median gap %.1f ms, %s, %s, %d client(s)",
				k.Key, k.QPS10, k.Polls, k.MedianIntervalMs, waitsPhrase(k.WaitsPct, a.cfg.SpinInterval), status, k.Clients))
		}
		out = append(out, f)
	}
	return out
}

// afterResultFinding appends the finding of polls that kept coming after the result was final.
func afterResultFinding(s *Snapshot, out []Finding) []Finding {
	var after []KeyStat
	for _, k := range s.Keys {
		if k.PollsAfterTerminal >= 10 {
			after = append(after, k)
		}
	}
	if len(after) > 0 {
		f := Finding{ID: "polls-after-result", Kind: "polls-after-result", Severity: "medium", Fix: fixAfterResult,
			Summary: fmt.Sprintf("%d key(s) kept being polled after reaching a final state", len(after))}
		for i, k := range after {
			if i == 5 {
				break
			}
			final := k.LastStatus
			if final == "" { // known from the write that stored the result, not from an answer
				final = "its result was stored"
			}
			f.Evidence = append(f.Evidence, fmt.Sprintf("%s: %d polls after %s", k.Key, k.PollsAfterTerminal, final))
		}
		out = append(out, f)
	}
	return out
}

// churnFindings appends a finding per client that opens connections fast and runs few queries
// on each.
func churnFindings(s *Snapshot, out []Finding) []Finding {
	for _, c := range s.Clients {
		if c.ConnsPerSec10 < 1 || c.QueriesPerConn > 20 {
			continue
		}
		out = append(out, Finding{ID: "churn:" + c.Address + "|" + c.ApplicationName + "|" + c.User + "|" + c.Database,
			Kind: "connection-churn", Severity: "high", Fix: fixChurn,
			Summary: fmt.Sprintf("Connection churn: %s (%s) opens %.1f connections/s and runs %.1f queries on each",
				c.Address, orDash(c.ApplicationName), c.ConnsPerSec10, c.QueriesPerConn),
			Evidence: []string{
				fmt.Sprintf("%d connections, %d queries, %d watched polls from %s as %s@%s", c.Connections, c.Queries, c.Polls, c.Address, c.User, c.Database),
				"every connection costs a backend fork and authentication on the server",
			}})
	}
	return out
}

// repeatFindings appends a finding per storming repeated read nobody configured.
func repeatFindings(s *Snapshot, out []Finding) []Finding {
	for _, r := range s.Repeats {
		if !r.Storming {
			continue
		}
		out = append(out, Finding{ID: "repeat:" + r.Fingerprint + r.Values, Kind: "repeated-read", Severity: "medium", Fix: fixRepeated,
			Summary: fmt.Sprintf("Repeated read: the same values %.0f times/s on: %s", r.QPS10, shorten(r.Query, 160)),
			Evidence: []string{
				fmt.Sprintf("%d reads with values %s, %d returned the same rows as the read before", r.Reads, r.Values, r.Unchanged),
				"fingerprint " + r.Fingerprint + "; name its table with --watch TABLE.COLUMN to see it per key",
			}})
	}
	return out
}

// overlapDoubt is the share of a poller's polling statements overlapping another of its
// connections from which its spin verdict may be several processes, not one loop.
const overlapDoubt = 10

// pollerFinding explains a poller's storm: who polls how many keys, how fast, whether it waits.
func (a *Analyzer) pollerFinding(s *Snapshot, p PollerStat) Finding {
	who := clientName(clientKey{Host: p.Address, App: p.ApplicationName, User: p.User, Database: p.Database})
	f := Finding{ID: "poller:" + p.Address + "|" + p.ApplicationName + "|" + p.User + "|" + p.Database, Severity: "high", Fix: fixGenericPoll}
	if strings.Contains(p.Table, "celery") {
		f.Fix = fixCelerySpin
	}
	what := fmt.Sprintf("%s polls %d %s.%s keys %.0f times/s in total", who, p.Keys, p.Table, p.Column, p.PollQPS10)
	if p.Spinning {
		f.ID += "|spin"
		f.Kind = "spin-poll"
		f.Summary = "Spin loop: " + what + ", with no wait between two polls of a key"
		if p.WaitsPct > 50 { // the verdict holds for the storm; say that it has changed since
			f.Summary = "Spin loop: " + what + fmt.Sprintf("; it spun earlier in this storm and waits in %.0f%% of its gaps now", p.WaitsPct)
		}
		if p.OverlapPct >= overlapDoubt {
			// A single loop's connections never overlap: several processes share the identity,
			// and together they may fill each other's sleeps (docs/report.md, Spin loops).
			f.Summary = "Spin loop, or several processes polling together: " + what +
				", and not 20 ms passes between its polls of a key without one of its connections busy"
		}
	} else {
		f.Kind = "poll-storm"
		f.Severity = "medium"
		f.Summary = "Poll storm: " + what + fmt.Sprintf(" (%.0f%% of all queries)", 100*p.QueryShare)
	}
	f.Evidence = append(f.Evidence,
		fmt.Sprintf("%.0f of %.0f queries/s in the last 10 s are this client's polls (%.0f%%), peak %.0f/s", p.PollQPS10, s.Rates.QPS10, 100*p.QueryShare, p.PeakQPS),
		fmt.Sprintf("%d keys polled in the last 10 s, each about every %s (median gap between two polls of a key); no single key reaches the storm rate of its own",
			p.Keys, fmtGap(p.KeyGapMs)),
		fmt.Sprintf("a wait of %v or more (no statement in flight, no connection being opened) in %.0f%% of its latest gaps between two polls of a key, across its connections",
			a.cfg.SpinInterval, max(p.WaitsPct, 0)))
	if by := polledBy(p.Tags, p.Polls); by != "" {
		f.Evidence = append(f.Evidence, by)
	}
	if p.OverlapPct > 0 {
		f.Evidence = append(f.Evidence, fmt.Sprintf("%.0f%% of its polling statements began while another of its connections was busy: "+
			"more than one process shares this address, user, database and application_name; polite processes polling densely together can look like one loop", p.OverlapPct))
	} else {
		f.Evidence = append(f.Evidence, "its polling connections never overlapped in time: one loop, one poll after another")
	}
	return f
}

func fmtGap(ms float64) string {
	if ms < 0 {
		return "-"
	}
	return time.Duration(ms * float64(time.Millisecond)).Round(time.Millisecond).String()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// waitsPhrase says in how many of a key's latest gaps between polls the poller waited.
func waitsPhrase(pct float64, wait time.Duration) string {
	if pct < 0 {
		return "no gap yet"
	}
	return fmt.Sprintf("a wait of %v or more in %.0f%% of gaps", wait, pct)
}
