package report

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/pgpollwatch/pgpollwatch/analyzer"
)

// Merge combines the reports of several proxies (typically one per application host, all in
// front of the same server) into one. The inputs are not modified.
//
//   - totals, rates: summed. keys_tracked sums each proxy's count, so a key seen by two
//     proxies counts twice; keys_polled_10s likewise.
//   - timeline: aligned by absolute second and summed per second.
//   - keys, united by (table, column, key): polls, unchanged, cached polls, rows, writes, rates,
//     polls after the result and clients summed; history aligned by absolute second and summed;
//     peak_qps the largest of the proxies' peaks and of the summed history; first_seen the
//     earliest, last_seen the latest; last_status from the proxy that saw the key last;
//     storming and spinning if any proxy said so; time_to_result from the earliest first poll
//     to the earliest final status. median_interval_ms, p10_interval_ms and waits_pct are the
//     proxies' values weighted by their polls: an approximation, since polls from several hosts
//     interleave and the true gap between two polls of the merged stream is shorter.
//   - fingerprints, united by fingerprint: counts and total_ms summed, mean_ms recomputed,
//     p99_ms the largest (an upper bound), history aligned and summed.
//   - clients, united by (address, application_name, user, database): counts and rates
//     summed, poll_share and queries_per_connection recomputed.
//   - repeats, united by (fingerprint, values): each proxy hashes values with its own seed, so
//     in practice the same read seen by two proxies stays two entries.
//   - storms: concatenated, by start. findings: concatenated, deduplicated by id (the first
//     keeps its text, gains the evidence lines it lacked and the highest severity).
//   - queues, united by name: polls, enqueued and rates summed; empty polls summed over the
//     reports that saw answers, empty_pct recomputed over those reports' polls (-1 when none
//     did); interval_p50_ms weighted by polls, as keys' medians. Their clients united by
//     identity and their tags by tag, the same way.
//   - tags, united by tag: counts and rates summed.
//   - watches united by (table, column), counts summed. proxies: concatenated.
//   - coalesce: present if any report has it; counts, entries, bytes and their bounds summed,
//     served ages the largest, enabled if any proxy had it on, ttl the largest, scope the
//     common one ("mixed" when they differ).
//   - what_if united by TTL: polls and saved summed, saved_share recomputed.
//   - reuse: present if any report has it; every count summed (idle too: each proxy keeps its
//     own server connections).
//   - started_at the earliest, ended_at the latest; generator of the first report; headline
//     and peak recomputed.
//
// Reports of different schema versions are refused.
func Merge(reports ...*Report) (*Report, error) {
	if len(reports) == 0 {
		return nil, errors.New("merge: no reports")
	}
	for i, r := range reports {
		if r == nil {
			return nil, fmt.Errorf("merge: report %d is nil", i+1)
		}
	}
	for i, r := range reports {
		if r.SchemaVersion != reports[0].SchemaVersion {
			return nil, fmt.Errorf("merge: report %d has schema_version %d but report 1 has %d: cannot merge reports of different schema versions",
				i+1, r.SchemaVersion, reports[0].SchemaVersion)
		}
	}
	if v := reports[0].SchemaVersion; v != SchemaVersion {
		return nil, fmt.Errorf("merge: reports have schema_version %d; this pgpollwatch merges schema_version %d", v, SchemaVersion)
	}

	out := &Report{SchemaVersion: SchemaVersion, Generator: reports[0].Generator, NoAnswers: true}
	for _, r := range reports {
		out.NoAnswers = out.NoAnswers && r.NoAnswers
		out.StartedAt = minTime(out.StartedAt, r.StartedAt)
		out.EndedAt = maxTime(out.EndedAt, r.EndedAt)
		out.Proxies = append(out.Proxies, r.Proxies...)
		addTotals(&out.Totals, r.Totals)
		out.Rates.QPS += r.Rates.QPS
		out.Rates.QPS10 += r.Rates.QPS10
		out.Rates.WatchedQPS10 += r.Rates.WatchedQPS10
		out.Rates.ConnsPerSec10 += r.Rates.ConnsPerSec10
		out.Rates.KeysPolled10 += r.Rates.KeysPolled10
	}
	if out.Proxies == nil {
		out.Proxies = []Proxy{}
	}
	out.Log = mergeLogs(reports)
	out.Capture = mergeCaptures(reports)
	for _, r := range reports { // the first source's rules: merged sources may have run with others
		if r.Thresholds != nil {
			out.Thresholds = r.Thresholds
			break
		}
	}
	out.Timeline = mergeTimelines(reports)

	// Histories end at each report's last timeline second; the merged ones at the merged
	// timeline's last second.
	al := aligner{length: 0}
	for _, r := range reports {
		for _, k := range r.Keys {
			al.length = max(al.length, len(k.History))
		}
		for _, f := range r.Fingerprints {
			al.length = max(al.length, len(f.History))
		}
	}
	if n := len(out.Timeline); n > 0 {
		al.end = out.Timeline[n-1].Time.Unix()
	}

	out.Keys = mergeKeys(reports, &al)
	out.Fingerprints = mergeFingerprints(reports, &al)
	out.Clients = mergeClients(reports, out.Totals.WatchedLookups)
	out.Pollers = mergePollers(reports, out.Rates.QPS10)
	out.Repeats = mergeRepeats(reports)
	out.Queues = mergeQueues(reports)
	out.Tags = mergeTags(reports)
	out.Storms = []Storm{}
	out.Watches = []Watch{}
	watchAt := map[[2]string]int{}
	for _, r := range reports {
		for _, st := range r.Storms {
			st.Tags = slices.Clone(st.Tags)
			out.Storms = append(out.Storms, st)
		}
		for _, w := range r.Watches {
			id := [2]string{w.Table, w.Column}
			if i, ok := watchAt[id]; ok {
				out.Watches[i].Lookups += w.Lookups
				out.Watches[i].Writes += w.Writes
				if out.Watches[i].Origin == "" {
					out.Watches[i].Origin = w.Origin
				}
				continue
			}
			watchAt[id] = len(out.Watches)
			out.Watches = append(out.Watches, w)
		}
	}
	slices.SortStableFunc(out.Storms, func(a, b Storm) int { return a.StartedAt.Compare(b.StartedAt) })
	out.Findings = mergeFindings(reports)
	out.Coalesce = mergeCoalesce(reports)
	out.WhatIf = mergeWhatIf(reports)
	out.Reuse = mergeReuse(reports)
	out.Headline = Headline(out)
	out.Peak = peak(out.Timeline)
	return out, nil
}

func minTime(a, b time.Time) time.Time {
	if a.IsZero() || !b.IsZero() && b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func addTotals(t *Totals, o Totals) {
	t.Queries += o.Queries
	t.WatchedLookups += o.WatchedLookups
	t.WatchedWrites += o.WatchedWrites
	t.Failed += o.Failed
	t.CachedAnswers += o.CachedAnswers
	t.Connections += o.Connections
	t.OpenConnections += o.OpenConnections
	t.AuthFailures += o.AuthFailures
	t.KeysTracked += o.KeysTracked
	t.KeysEvicted += o.KeysEvicted
	t.FingerprintsSeen += o.FingerprintsSeen
	t.StormsActive += o.StormsActive
}

// mergeTimelines sums the seconds of every timeline by absolute second (Unix time, so
// sub-second differences between proxies' clocks fall into the same second).
func mergeTimelines(reports []*Report) []Second {
	bySec := map[int64]*Second{}
	for _, r := range reports {
		for _, s := range r.Timeline {
			t := s.Time.Unix()
			m := bySec[t]
			if m == nil {
				m = &Second{Time: time.Unix(t, 0).UTC()}
				bySec[t] = m
			}
			m.Queries += s.Queries
			m.Watched += s.Watched
			m.Cached += s.Cached
			m.Connections += s.Connections
		}
	}
	out := make([]Second, 0, len(bySec))
	for _, s := range bySec {
		out = append(out, *s)
	}
	slices.SortFunc(out, func(a, b Second) int { return a.Time.Compare(b.Time) })
	return out
}

// aligner adds per-second histories that end at different seconds into one that ends at end.
type aligner struct {
	length int
	end    int64 // unix second of the merged history's last element
}

// historyEnd is the unix second of the last element of r's histories: its timeline's last
// second. ok is false when r has no timeline (its histories are then all zero).
func historyEnd(r *Report) (int64, bool) {
	if len(r.Timeline) == 0 {
		return 0, false
	}
	return r.Timeline[len(r.Timeline)-1].Time.Unix(), true
}

func (a *aligner) add(dst []uint32, src []uint32, srcEnd int64, ok bool) {
	if !ok {
		return
	}
	for j, v := range src {
		t := srcEnd - int64(len(src)-1-j)
		i := len(dst) - 1 - int(a.end-t)
		if i >= 0 && i < len(dst) {
			dst[i] += v
		}
	}
}

type keyID struct{ table, column, key string }

// weightedMean averages the reports' values of a per-key figure by their polls, leaving out the
// reports that have none (-1).
type weightedMean struct{ sum, w float64 }

func (m *weightedMean) add(v, w float64) {
	if v >= 0 {
		m.sum += v * w
		m.w += w
	}
}

// value is the mean, or -1 if no report had a value.
func (m *weightedMean) value() float64 {
	if m.w == 0 {
		return -1
	}
	return m.sum / m.w
}

func mergeKeys(reports []*Report, al *aligner) []Key {
	type acc struct {
		k                  Key
		med, p10, waits    weightedMean
		terminal           time.Time
		statusAt           time.Time
		haveStatusFromLast bool
	}
	var order []keyID
	accs := map[keyID]*acc{}
	for _, r := range reports {
		end, ok := historyEnd(r)
		for _, k := range r.Keys {
			id := keyID{k.Table, k.Column, k.Key}
			a := accs[id]
			if a == nil {
				a = &acc{k: Key{Table: k.Table, Column: k.Column, Key: k.Key, History: make([]uint32, al.length),
					UnchangedPolls: -1, Rows: -1}}
				accs[id] = a
				order = append(order, id)
			}
			m := &a.k
			m.Polls += k.Polls
			m.UnchangedPolls = addKnown(m.UnchangedPolls, k.UnchangedPolls)
			m.CachedPolls += k.CachedPolls
			m.Rows = addKnown(m.Rows, k.Rows)
			m.Writes += k.Writes
			m.QPS1 += k.QPS1
			m.QPS10 += k.QPS10
			m.QPS60 += k.QPS60
			m.PeakQPS = max(m.PeakQPS, k.PeakQPS)
			m.PollsAfterTerminal += k.PollsAfterTerminal
			m.Clients += k.Clients
			m.Storming = m.Storming || k.Storming
			m.Spinning = m.Spinning || k.Spinning
			m.WhatIfSaved500ms += k.WhatIfSaved500ms
			m.Tags = topTags(mergeTagCounts(m.Tags, k.Tags))
			w := float64(max(k.Polls, 1))
			a.med.add(k.MedianIntervalMs, w)
			a.p10.add(k.P10IntervalMs, w)
			a.waits.add(k.WaitsPct, w)
			if k.TimeToResultMs >= 0 && !k.FirstSeen.IsZero() {
				a.terminal = minTime(a.terminal, k.FirstSeen.Add(time.Duration(k.TimeToResultMs*float64(time.Millisecond))))
			}
			m.FirstSeen = minTime(m.FirstSeen, k.FirstSeen)
			m.LastSeen = maxTime(m.LastSeen, k.LastSeen)
			if !a.haveStatusFromLast || k.LastSeen.After(a.statusAt) {
				m.LastStatus, a.statusAt, a.haveStatusFromLast = k.LastStatus, k.LastSeen, true
			}
			al.add(m.History, k.History, end, ok)
		}
	}
	out := make([]Key, 0, len(order))
	for _, id := range order {
		a := accs[id]
		k := a.k
		k.MedianIntervalMs, k.P10IntervalMs, k.WaitsPct, k.TimeToResultMs = a.med.value(), a.p10.value(), a.waits.value(), -1
		if !a.terminal.IsZero() {
			k.TimeToResultMs = float64(a.terminal.Sub(k.FirstSeen)) / float64(time.Millisecond)
		}
		for _, v := range k.History {
			k.PeakQPS = max(k.PeakQPS, float64(v))
		}
		out = append(out, k)
	}
	// As the analyzer ranks them: storming first, then by current rate, then by polls.
	slices.SortStableFunc(out, func(x, y Key) int {
		if x.Storming != y.Storming {
			if x.Storming {
				return -1
			}
			return 1
		}
		return cmp.Or(cmp.Compare(y.QPS10, x.QPS10), cmp.Compare(y.Polls, x.Polls), cmp.Compare(x.Key, y.Key))
	})
	return out
}

func mergeFingerprints(reports []*Report, al *aligner) []Fingerprint {
	var order []string
	accs := map[string]*Fingerprint{}
	for _, r := range reports {
		end, ok := historyEnd(r)
		for _, f := range r.Fingerprints {
			m := accs[f.Fingerprint]
			if m == nil {
				m = &Fingerprint{Fingerprint: f.Fingerprint, History: make([]uint32, al.length), Rows: -1, TotalMs: -1, P99Ms: -1}
				accs[f.Fingerprint] = m
				order = append(order, f.Fingerprint)
			}
			m.Query = cmp.Or(m.Query, f.Query)
			m.Example = cmp.Or(m.Example, f.Example)
			m.Command = cmp.Or(m.Command, f.Command)
			m.Table = cmp.Or(m.Table, f.Table)
			m.Calls += f.Calls
			m.Failed += f.Failed
			m.Cached += f.Cached
			m.Rows = addKnown(m.Rows, f.Rows)
			m.QPS1 += f.QPS1
			m.QPS10 += f.QPS10
			if f.TotalMs >= 0 { // -1: that source knew no duration
				m.TotalMs = max(m.TotalMs, 0) + f.TotalMs
			}
			m.P99Ms = max(m.P99Ms, f.P99Ms)
			m.Watched = m.Watched || f.Watched
			m.Write = m.Write || f.Write
			m.FirstSeen = minTime(m.FirstSeen, f.FirstSeen)
			m.LastSeen = maxTime(m.LastSeen, f.LastSeen)
			al.add(m.History, f.History, end, ok)
		}
	}
	out := make([]Fingerprint, 0, len(order))
	for _, id := range order {
		f := *accs[id]
		switch {
		case f.TotalMs < 0:
			f.MeanMs = -1 // no source knew a duration
		case f.Calls > 0:
			f.MeanMs = f.TotalMs / float64(f.Calls)
		}
		out = append(out, f)
	}
	slices.SortStableFunc(out, func(x, y Fingerprint) int {
		return cmp.Or(cmp.Compare(y.Calls, x.Calls), cmp.Compare(x.Fingerprint, y.Fingerprint))
	})
	return out
}

func mergeClients(reports []*Report, totalPolls int64) []Client {
	type id struct{ addr, app, user, db string }
	var order []id
	accs := map[id]*Client{}
	for _, r := range reports {
		for _, c := range r.Clients {
			k := id{c.Address, c.ApplicationName, c.User, c.Database}
			m := accs[k]
			if m == nil {
				m = &Client{Address: c.Address, ApplicationName: c.ApplicationName, User: c.User, Database: c.Database}
				accs[k] = m
				order = append(order, k)
			}
			m.Queries += c.Queries
			m.Polls += c.Polls
			m.Connections += c.Connections
			m.OpenConnections += c.OpenConnections
			m.QPS10 += c.QPS10
			m.ConnsPerSec10 += c.ConnsPerSec10
		}
	}
	out := make([]Client, 0, len(order))
	for _, k := range order {
		c := *accs[k]
		c.PollShare, c.QueriesPerConn = analyzer.ClientRatios(c.Polls, totalPolls, c.Queries, c.Connections)
		out = append(out, c)
	}
	slices.SortStableFunc(out, func(x, y Client) int {
		return cmp.Or(cmp.Compare(y.QPS10, x.QPS10), cmp.Compare(y.Queries, x.Queries), cmp.Compare(x.Address, y.Address))
	})
	return out
}

// mergePollers adds up one identity's polling seen by several proxies; its waits and key gaps
// are averaged weighted by polls, and it spins if it spun anywhere.
func mergePollers(reports []*Report, qps10 float64) []Poller {
	type id struct{ addr, app, user, db string }
	var order []id
	accs := map[id]*Poller{}
	waitW, gapW := map[id]float64{}, map[id]float64{}
	for _, r := range reports {
		for _, p := range r.Pollers {
			k := id{p.Address, p.ApplicationName, p.User, p.Database}
			m := accs[k]
			if m == nil {
				m = &Poller{Address: p.Address, ApplicationName: p.ApplicationName, User: p.User, Database: p.Database,
					Table: p.Table, Column: p.Column, WaitsPct: -1, KeyGapMs: -1}
				accs[k] = m
				order = append(order, k)
			}
			w := float64(max(p.Polls, 1))
			if p.WaitsPct >= 0 {
				m.WaitsPct = (max(m.WaitsPct, 0)*waitW[k] + p.WaitsPct*w) / (waitW[k] + w)
				waitW[k] += w
			}
			if p.KeyGapMs >= 0 {
				m.KeyGapMs = (max(m.KeyGapMs, 0)*gapW[k] + p.KeyGapMs*w) / (gapW[k] + w)
				gapW[k] += w
			}
			m.Polls += p.Polls
			m.PollQPS10 += p.PollQPS10
			m.PeakQPS += p.PeakQPS
			m.Keys += p.Keys
			m.OverlapPct = max(m.OverlapPct, p.OverlapPct)
			m.Storming = m.Storming || p.Storming
			m.Spinning = m.Spinning || p.Spinning
			m.Tags = topTags(mergeTagCounts(m.Tags, p.Tags))
		}
	}
	out := make([]Poller, 0, len(order))
	for _, k := range order {
		p := *accs[k]
		if qps10 > 0 {
			p.QueryShare = min(1, p.PollQPS10/qps10)
		}
		out = append(out, p)
	}
	slices.SortStableFunc(out, func(x, y Poller) int {
		return cmp.Or(cmp.Compare(y.PollQPS10, x.PollQPS10), cmp.Compare(y.Polls, x.Polls))
	})
	return out
}

func mergeRepeats(reports []*Report) []Repeat {
	type id struct{ fp, values string }
	var order []id
	accs := map[id]*Repeat{}
	for _, r := range reports {
		for _, p := range r.Repeats {
			k := id{p.Fingerprint, p.Values}
			m := accs[k]
			if m == nil {
				m = &Repeat{Fingerprint: p.Fingerprint, Query: p.Query, Values: p.Values, Unchanged: -1}
				accs[k] = m
				order = append(order, k)
			}
			m.Reads += p.Reads
			m.Unchanged = addKnown(m.Unchanged, p.Unchanged)
			m.QPS10 += p.QPS10
			m.PeakQPS = max(m.PeakQPS, p.PeakQPS)
			m.Storming = m.Storming || p.Storming
		}
	}
	out := make([]Repeat, 0, len(order))
	for _, k := range order {
		out = append(out, *accs[k])
	}
	slices.SortStableFunc(out, func(x, y Repeat) int {
		return cmp.Or(cmp.Compare(y.QPS10, x.QPS10), cmp.Compare(y.Reads, x.Reads))
	})
	return out
}

// emptyPct is the share in percent of empty polls among the polls of the reports that saw
// answers (knownPolls): a server log's polls, whose answers are unknown, must not dilute a
// proxy's share. -1 when no report saw answers.
func emptyPct(empty, knownPolls int64) float64 {
	switch {
	case empty < 0:
		return -1
	case knownPolls == 0:
		return 0
	}
	return 100 * float64(empty) / float64(knownPolls)
}

func mergeQueues(reports []*Report) []Queue {
	type acc struct {
		q          Queue
		knownPolls int64 // polls of the reports that saw answers
		interval   weightedMean
		clients    []QueueClient
		tags       [][]TagCount
	}
	var order []string
	accs := map[string]*acc{}
	for _, r := range reports {
		for _, q := range r.Queues {
			a := accs[q.Queue]
			if a == nil {
				a = &acc{q: Queue{Queue: q.Queue, EmptyPolls: -1}}
				accs[q.Queue] = a
				order = append(order, q.Queue)
			}
			m := &a.q
			m.Library = cmp.Or(m.Library, q.Library)
			m.Tables = cmp.Or(m.Tables, q.Tables)
			m.Polls += q.Polls
			m.EmptyPolls = addKnown(m.EmptyPolls, q.EmptyPolls)
			if q.EmptyPolls >= 0 {
				a.knownPolls += q.Polls
			}
			m.Enqueued += q.Enqueued
			m.PollsPerSec10 += q.PollsPerSec10
			m.PollsPerSec += q.PollsPerSec
			m.EnqueuedPerSec += q.EnqueuedPerSec
			a.interval.add(q.IntervalP50Ms, float64(max(q.Polls, 1)))
			a.clients = append(a.clients, q.Clients...)
			a.tags = append(a.tags, q.Tags)
		}
	}
	out := make([]Queue, 0, len(order))
	for _, id := range order {
		a := accs[id]
		q := a.q
		q.EmptyPct, q.IntervalP50Ms = emptyPct(q.EmptyPolls, a.knownPolls), a.interval.value()
		q.Clients = mergeQueueClients(a.clients)
		q.Tags = mergeTagCounts(a.tags...)
		out = append(out, q)
	}
	slices.SortStableFunc(out, func(x, y Queue) int {
		return cmp.Or(cmp.Compare(y.PollsPerSec10, x.PollsPerSec10), cmp.Compare(y.Polls, x.Polls), cmp.Compare(x.Queue, y.Queue))
	})
	return out
}

// mergeQueueClients unites one queue's clients from several reports by identity.
func mergeQueueClients(all []QueueClient) []QueueClient {
	type id struct{ addr, app, user, db string }
	var order []id
	accs := map[id]*QueueClient{}
	intervals := map[id]*weightedMean{}
	for _, c := range all {
		k := id{c.Address, c.ApplicationName, c.User, c.Database}
		m := accs[k]
		if m == nil {
			m = &QueueClient{Address: c.Address, ApplicationName: c.ApplicationName, User: c.User, Database: c.Database, EmptyPolls: -1}
			accs[k], intervals[k] = m, &weightedMean{}
			order = append(order, k)
		}
		m.Polls += c.Polls
		m.EmptyPolls = addKnown(m.EmptyPolls, c.EmptyPolls)
		m.PollsPerSec10 += c.PollsPerSec10
		intervals[k].add(c.IntervalP50Ms, float64(max(c.Polls, 1)))
	}
	out := make([]QueueClient, 0, len(order))
	for _, k := range order {
		c := *accs[k]
		c.IntervalP50Ms = intervals[k].value()
		out = append(out, c)
	}
	slices.SortStableFunc(out, func(x, y QueueClient) int {
		return cmp.Or(cmp.Compare(y.PollsPerSec10, x.PollsPerSec10), cmp.Compare(y.Polls, x.Polls))
	})
	return out
}

// mergeTagCounts unites lists of tag counts by tag, counts and rates summed, the most counted
// first.
func mergeTagCounts(lists ...[]TagCount) []TagCount {
	out := []TagCount{}
	at := map[string]int{}
	for _, l := range lists {
		for _, t := range l {
			m := unite(&out, at, t.Tag, TagCount{Tag: t.Tag})
			m.Count += t.Count
			m.PerSec10 += t.PerSec10
		}
	}
	slices.SortStableFunc(out, func(x, y TagCount) int {
		return cmp.Or(cmp.Compare(y.Count, x.Count), cmp.Compare(y.PerSec10, x.PerSec10))
	})
	return out
}

func mergeTags(reports []*Report) []Tag {
	out := []Tag{}
	at := map[string]int{}
	for _, r := range reports {
		for _, t := range r.Tags {
			m := unite(&out, at, t.Tag, Tag{Tag: t.Tag})
			m.Queries += t.Queries
			m.Polls += t.Polls
			m.QPS10 += t.QPS10
			m.PollsPerSec10 += t.PollsPerSec10
		}
	}
	slices.SortStableFunc(out, func(x, y Tag) int {
		return cmp.Or(cmp.Compare(y.QPS10, x.QPS10), cmp.Compare(y.Queries, x.Queries), cmp.Compare(x.Tag, y.Tag))
	})
	return out
}

var severityRank = map[string]int{"low": 1, "medium": 2, "high": 3}

func mergeFindings(reports []*Report) []Finding {
	out := []Finding{}
	at := map[string]int{}
	for _, r := range reports {
		for _, f := range r.Findings {
			f.Evidence = append([]string{}, f.Evidence...)
			i, dup := at[f.ID]
			if !dup || f.ID == "" {
				if f.ID != "" {
					at[f.ID] = len(out)
				}
				out = append(out, f)
				continue
			}
			m := &out[i]
			if severityRank[f.Severity] > severityRank[m.Severity] {
				m.Severity = f.Severity
			}
			if m.Until.IsZero() || f.Until.IsZero() { // holds at the end of one source: holds
				m.Until = time.Time{}
			} else {
				m.Until = maxTime(m.Until, f.Until)
			}
			for _, e := range f.Evidence {
				if !slices.Contains(m.Evidence, e) {
					m.Evidence = append(m.Evidence, e)
				}
			}
		}
	}
	return out
}

func mergeCoalesce(reports []*Report) *Coalesce {
	var out *Coalesce
	for _, r := range reports {
		c := r.Coalesce
		if c == nil {
			continue
		}
		if out == nil {
			cp := *c
			out = &cp
			continue
		}
		out.Enabled = out.Enabled || c.Enabled
		out.TTLMs = max(out.TTLMs, c.TTLMs)
		if out.Scope != c.Scope {
			out.Scope = "mixed"
		}
		out.Hits += c.Hits
		out.Misses += c.Misses
		out.Fills += c.Fills
		out.Invalidations += c.Invalidations
		out.DiscardedFills += c.DiscardedFills
		out.Bypassed += c.Bypassed
		out.Entries += c.Entries
		out.Bytes += c.Bytes
		out.MaxEntries += c.MaxEntries
		out.MaxBytes += c.MaxBytes
		out.AgeP50Ms = max(out.AgeP50Ms, c.AgeP50Ms)
		out.AgeMaxMs = max(out.AgeMaxMs, c.AgeMaxMs)
		out.Saved += c.Saved
	}
	return out
}

func mergeReuse(reports []*Report) *Reuse {
	var out *Reuse
	for _, r := range reports {
		u := r.Reuse
		if u == nil {
			continue
		}
		if out == nil {
			out = &Reuse{}
		}
		out.Reused += u.Reused
		out.Kept += u.Kept
		out.Discarded += u.Discarded
		out.Idle += u.Idle
	}
	return out
}

func mergeWhatIf(reports []*Report) []WhatIf {
	out := []WhatIf{}
	at := map[float64]int{}
	for _, r := range reports {
		for _, w := range r.WhatIf {
			m := unite(&out, at, w.TTLMs, WhatIf{TTLMs: w.TTLMs})
			m.Polls += w.Polls
			m.Saved += w.Saved
		}
	}
	for i := range out {
		if out[i].Polls > 0 {
			out[i].SavedShare = float64(out[i].Saved) / float64(out[i].Polls)
		}
	}
	slices.SortFunc(out, func(a, b WhatIf) int { return cmp.Compare(a.TTLMs, b.TTLMs) })
	return out
}

// unite returns the entry of *out whose identity is id (at indexes them), appending first
// when there is none yet. The pointer is valid until the next append.
func unite[K comparable, T any](out *[]T, at map[K]int, id K, first T) *T {
	i, ok := at[id]
	if !ok {
		i = len(*out)
		at[id] = i
		*out = append(*out, first)
	}
	return &(*out)[i]
}

// addKnown adds count v to sum, where -1 means not known (a server log sees no answers): the
// sum is of the sources that know, and -1 only when none does.
func addKnown(sum, v int64) int64 {
	switch {
	case v < 0:
		return sum
	case sum < 0:
		return v
	}
	return sum + v
}

// mergeLogs adds up what the reports made from server logs read; nil when none was.
func mergeLogs(reports []*Report) *LogInput {
	var out *LogInput
	for _, r := range reports {
		l := r.Log
		if l == nil {
			continue
		}
		if out == nil {
			out = &LogInput{}
		}
		out.Files = append(out.Files, l.Files...)
		out.Bytes += l.Bytes
		out.Lines += l.Lines
		out.Statements += l.Statements
		out.Connections += l.Connections
		out.Disconnections += l.Disconnections
		out.Filtered += l.Filtered
		out.Unpaired += l.Unpaired
		out.BadLines += l.BadLines
		out.BadExamples = append(out.BadExamples, l.BadExamples...)
		if l.Incomplete != "" {
			out.Incomplete = strings.TrimPrefix(out.Incomplete+"; "+l.Incomplete, "; ")
		}
	}
	return out
}

// mergeCaptures adds up what the reports made from packet captures read; nil when none was.
func mergeCaptures(reports []*Report) *CaptureInput {
	var out *CaptureInput
	for _, r := range reports {
		c := r.Capture
		if c == nil {
			continue
		}
		if out == nil {
			out = &CaptureInput{}
		}
		out.Files = append(out.Files, c.Files...)
		if c.Interface != "" {
			out.Interface = strings.TrimPrefix(out.Interface+", "+c.Interface, ", ")
		}
		out.Packets += c.Packets
		out.Conversations += c.Conversations
		out.Statements += c.Statements
		out.KernelDrops += c.KernelDrops
		out.Gaps += c.Gaps
		out.GapBytes += c.GapBytes
		out.Retransmitted += c.Retransmitted
		out.CutPackets += c.CutPackets
		out.AnswersLost += c.AnswersLost
		out.Unpaired += c.Unpaired
		out.Encrypted += c.Encrypted
		out.MidStream += c.MidStream
		out.NotDecoded += c.NotDecoded
		if c.Incomplete != "" {
			out.Incomplete = strings.TrimPrefix(out.Incomplete+"; "+c.Incomplete, "; ")
		}
	}
	return out
}

// topTags keeps a merged key's or poller's three most counted tags, as the analyzer does; nil
// when there are none, as a report without tags has.
func topTags(ts []TagCount) []TagCount {
	if len(ts) == 0 {
		return nil
	}
	return ts[:min(len(ts), 3)]
}
