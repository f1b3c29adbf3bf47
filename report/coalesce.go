package report

import (
	"fmt"
	"strconv"
)

// What the HTML and Markdown writers say about coalescing: the cache's own numbers, and the
// what-if estimate of what a cache would have saved; and about server connection reuse.

// measure is one line of the Coalescing table.
type measure struct {
	Label, Value, Note string
}

// coalesceMeasures lists the cache's state and counts.
func coalesceMeasures(c *Coalesce) []measure {
	state := "off"
	if c.Enabled {
		state = "on"
	}
	of := func(v, bound string, hasBound bool) string {
		if !hasBound {
			return v
		}
		return v + " of " + bound
	}
	return []measure{
		{"coalescing", state, "at the end of the report"},
		{"TTL", fmtMs(c.TTLMs), "no answer served is older than this"},
		{"scope", orDash(c.Scope), scopeNote(c.Scope)},
		{"hits", fmtInt(c.Hits), "eligible reads answered from the cache"},
		{"misses", fmtInt(c.Misses), "eligible reads that went to the server"},
		{"hit ratio", fmtPct(float64(c.Hits), float64(c.Hits+c.Misses)), "hits / (hits + misses)"},
		{"upstream queries saved", fmtInt(c.Saved), "queries the server did not have to run"},
		{"fills", fmtInt(c.Fills), "entries stored from a server's answer"},
		{"invalidations", fmtInt(c.Invalidations), "entries ended by a write through the proxy"},
		{"discarded fills", fmtInt(c.DiscardedFills), "answers not stored because a write raced with them"},
		{"bypassed", fmtInt(c.Bypassed), "reads forwarded because the session's state forbade a cached answer"},
		{"entries", of(fmtInt(c.Entries), fmtInt(c.MaxEntries), c.MaxEntries > 0), "held at the end"},
		{"bytes", of(fmtBytes(c.Bytes), fmtBytes(c.MaxBytes), c.MaxBytes > 0), "held at the end"},
		{"age served, p50", fmtMs(c.AgeP50Ms), "age of an entry when it answered, median"},
		{"age served, max", fmtMs(c.AgeMaxMs), "the oldest answer served"},
	}
}

// reuseMeasures lists what server connection reuse did; connections is the report's count of
// client connections, of which reused ones are a share.
func reuseMeasures(u *Reuse, connections int64) []measure {
	return []measure{
		{"clients on a reused connection", fmtInt(u.Reused), "served by a kept server connection instead of a new one"},
		{"share of client connections", fmtPct(float64(u.Reused), float64(connections)), "reused / client connections opened"},
		{"kept", fmtInt(u.Kept), "server connections reset (DISCARD ALL) and kept after their client left"},
		{"discarded", fmtInt(u.Discarded), "kept connections closed: expired, closed by the server, reset failed, or no room"},
		{"idle", fmtInt(int64(u.Idle)), "kept connections waiting for a client at the end"},
	}
}

func scopeNote(scope string) string {
	switch scope {
	case "read-committed":
		return "hits when idle, or in a transaction that so far only read"
	case "idle":
		return "hits only outside transactions"
	case "mixed":
		return "the merged proxies used different scopes"
	}
	return ""
}

// whatIfRow is one line of the what-if table.
type whatIfRow struct {
	TTL, Polls, Saved, Share, Left string
	Highlight                      bool // the 500 ms row: the default TTL
}

func whatIfRows(ws []WhatIf) []whatIfRow {
	var out []whatIfRow
	for _, w := range ws {
		out = append(out, whatIfRow{TTL: fmtMs(w.TTLMs), Polls: fmtInt(w.Polls), Saved: fmtInt(w.Saved),
			Share: fmtPct(float64(w.Saved), float64(w.Polls)), Left: fmtInt(w.Polls - w.Saved), Highlight: w.TTLMs == 500})
	}
	return out
}

// whatIfPolls is how many polls the estimate considered (the same for every TTL).
func whatIfPolls(ws []WhatIf) int64 {
	var n int64
	for _, w := range ws {
		n = max(n, w.Polls)
	}
	return n
}

// whatIfSentence sums the estimate up at the default TTL (500 ms), or at the first TTL there is.
func whatIfSentence(ws []WhatIf) string {
	if whatIfPolls(ws) == 0 {
		return ""
	}
	w := ws[0]
	for _, x := range ws {
		if x.TTLMs == 500 {
			w = x
		}
	}
	return fmt.Sprintf("A %s cache would have answered %s of the %s watched polls (%s) without asking the server.",
		fmtMs(w.TTLMs), fmtInt(w.Saved), fmtInt(w.Polls), fmtPct(float64(w.Saved), float64(w.Polls)))
}

// whatIfNote says what the estimate models and what it leaves out.
const whatIfNote = "Simulated over the watched polls since the start, key by key (each key of an IN list counts as a poll): " +
	"a cache entry lives for the TTL from the poll that filled it, however often it is read, and a write to the key " +
	"that passed through the proxy (or to its whole table, when the key cannot be told) ends it. " +
	"Session rules are not simulated: a real cache forwards reads in a transaction after a write, " +
	"so it saves somewhat less than this."

// fmtBytes writes a size in bytes with a binary unit: 512 B, 1.5 KiB, 64 MiB.
func fmtBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatInt(n, 10) + " B"
	}
	v, i := float64(n), -1
	for v >= unit && i < 4 {
		v /= unit
		i++
	}
	s := strconv.FormatFloat(v, 'f', 1, 64)
	if v >= 100 || v == float64(int64(v)) {
		s = strconv.FormatFloat(v, 'f', 0, 64)
	}
	return s + " " + []string{"KiB", "MiB", "GiB", "TiB", "PiB"}[i]
}
