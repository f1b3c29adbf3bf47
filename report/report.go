// Package report turns an analyzer snapshot into report files (JSON, HTML, Markdown) and
// merges the reports of several proxies into one.
//
// The JSON form is the machine-readable, versioned one: [Report] with [SchemaVersion]. Its
// fields are documented in docs/report.md. A report never holds result data, passwords or SQL
// literals other than the watched keys: statements appear only in normalized form ($n in place
// of every constant), repeated reads carry a digest of their values, and the upstream address
// loses any password it was given with.
package report

import (
	"fmt"
	"math"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/pgpollwatch/pgpollwatch/analyzer"
)

// SchemaVersion is the version of the JSON report this package writes and reads. Fields are
// only added within a version; a removal or a change of meaning bumps it.
const SchemaVersion = 1

// Report is the versioned, machine-readable report of one proxy, or of several merged.
type Report struct {
	SchemaVersion int       `json:"schema_version"`
	StartedAt     time.Time `json:"started_at"`
	EndedAt       time.Time `json:"ended_at"`
	Generator     string    `json:"generator"` // "pgpollwatch VERSION"
	Proxies       []Proxy   `json:"proxies"`   // the sources: one entry per proxy merged

	Totals   Totals   `json:"totals"`
	Rates    Rates    `json:"rates"`
	Headline string   `json:"headline"`
	Peak     *Peak    `json:"peak,omitempty"` // the busiest 10 s of the timeline; nil when empty
	Timeline []Second `json:"timeline"`       // per second, oldest first

	Keys         []Key         `json:"keys"`
	Fingerprints []Fingerprint `json:"fingerprints"`
	Clients      []Client      `json:"clients"`
	Pollers      []Poller      `json:"pollers"`
	Repeats      []Repeat      `json:"repeats"`
	Storms       []Storm       `json:"storms"`
	Findings     []Finding     `json:"findings"`
	Watches      []Watch       `json:"watches"`
	Queues       []Queue       `json:"queues"` // job queues polled, busiest first
	Tags         []Tag         `json:"tags"`   // attribution tags of statements' comments, busiest first

	// NoAnswers says no source of the report saw answers (a server log): unchanged counts and
	// rows are -1 and last statuses empty. In a merge with a proxy's report, the keys the
	// proxy saw have them.
	NoAnswers bool `json:"no_answers,omitempty"`
	// Log describes the server log read (pgpollwatch analyze); nil for a proxy's report.
	Log *LogInput `json:"log,omitempty"`
	// Capture describes the packet captures read (pgpollwatch analyze, or watch --interface);
	// nil otherwise.
	Capture *CaptureInput `json:"capture,omitempty"`

	Coalesce *Coalesce `json:"coalesce,omitempty"` // the coalescing cache; nil when the proxy ran without it
	WhatIf   []WhatIf  `json:"what_if"`            // what a cache would have saved, per TTL, shortest first
	// Reuse is server connection reuse; nil when the proxy ran without
	// --reuse-server-connections (and in reports from before it was reported).
	Reuse *Reuse `json:"reuse,omitempty"`
	// Thresholds are the storm rules in force when the report was taken (a reload may change
	// them while the proxy runs); nil in reports from before they were reported.
	Thresholds *Thresholds `json:"thresholds,omitempty"`
	// Config is the proxy's configuration reloads (SIGHUP) up to the report; nil when none was
	// reported (a proxy run without a configuration file, analyze).
	Config *Config `json:"config,omitempty"`
}

// Config is what became of the proxy's configuration reloads.
type Config struct {
	Reloads        int64     `json:"reloads"`
	ReloadFailures int64     `json:"reload_failures"`
	LastOK         bool      `json:"last_ok"`
	LastReload     time.Time `json:"last_reload"`
}

// Thresholds are the storm rules the analysis ran with.
type Thresholds struct {
	StormQPS     float64 `json:"storm_qps"`
	SweepQPS     float64 `json:"sweep_qps"`
	StormWindowS float64 `json:"storm_window_s"`
}

// LogInput is what was read of a server log, and what could not be: an unreadable line is
// counted and shown, never fatal.
type LogInput struct {
	Files          []LogFile `json:"files"`
	Bytes          int64     `json:"bytes"` // of log text, after decompression
	Lines          int64     `json:"lines"`
	Statements     int64     `json:"statements"`
	Connections    int64     `json:"connections"`
	Disconnections int64     `json:"disconnections"`
	Filtered       int64     `json:"filtered"` // records left out by --since, --until, --dbname, --user, --app
	Unpaired       int64     `json:"unpaired"` // duration lines whose statement began before the log
	BadLines       int64     `json:"bad_lines"`
	// BadExamples are the first unreadable lines, "file:line: text", with their quoted
	// literals masked.
	BadExamples []string `json:"bad_examples,omitempty"`
	// Incomplete says why the log could not be read to its end (a truncated compressed
	// file); the report is of what was read before.
	Incomplete string `json:"incomplete,omitempty"`
}

// Summary says in a sentence what was read of the log, and what could not be.
func (l *LogInput) Summary() string {
	s := fmt.Sprintf("Server log: %s lines, %s statements, %s connections", fmtInt(l.Lines), fmtInt(l.Statements), fmtInt(l.Connections))
	if l.Filtered > 0 {
		s += fmt.Sprintf(", %s records left out by the filters", fmtInt(l.Filtered))
	}
	if l.BadLines > 0 {
		s += fmt.Sprintf("; %s lines could not be read", fmtInt(l.BadLines))
	}
	if l.Incomplete != "" {
		s += "; INCOMPLETE, " + l.Incomplete
	}
	s += ". Answers are not in a log: unchanged polls and statuses are not known."
	return s
}

// CaptureInput is what was read of packet captures or an interface, and what could not be
// used: every case is counted, none is fatal.
type CaptureInput struct {
	Files         []string `json:"files,omitempty"`     // capture files; empty for an interface
	Interface     string   `json:"interface,omitempty"` // the interface captured live
	Packets       int64    `json:"packets"`
	Conversations int64    `json:"conversations"`
	Statements    int64    `json:"statements"`
	// What the capture lost or could not read.
	KernelDrops   int64 `json:"kernel_drops,omitempty"` // packets the kernel dropped before pgpollwatch read them (live)
	Gaps          int64 `json:"gaps"`                   // holes in a conversation's bytes
	GapBytes      int64 `json:"gap_bytes"`
	Retransmitted int64 `json:"retransmitted_bytes"`
	CutPackets    int64 `json:"cut_packets"`  // payloads cut by the snap length
	AnswersLost   int64 `json:"answers_lost"` // statements counted whose answer was lost in part: no digest, no status
	Unpaired      int64 `json:"unpaired"`     // answers whose statement the capture lost
	Encrypted     int64 `json:"encrypted"`    // conversations in TLS or GSSAPI: counted, not decoded
	MidStream     int64 `json:"mid_stream"`   // conversations joined after their start: client identity unknown
	NotDecoded    int64 `json:"not_decoded"`  // packets with no TCP segment: other protocols, fragments, headers cut
	// Incomplete says why a file could not be read to its end; the report is of what was read.
	Incomplete string `json:"incomplete,omitempty"`
}

// Summary says in a sentence what was read of the capture, and what it lost.
func (c *CaptureInput) Summary() string {
	s := fmt.Sprintf("Packet capture: %s packets, %s conversations, %s statements", fmtInt(c.Packets), fmtInt(c.Conversations), fmtInt(c.Statements))
	var lost []string
	if c.KernelDrops > 0 {
		lost = append(lost, fmtInt(c.KernelDrops)+" packets dropped by the kernel")
	}
	if c.Gaps > 0 {
		lost = append(lost, fmt.Sprintf("%s gaps (%s bytes)", fmtInt(c.Gaps), fmtInt(c.GapBytes)))
	}
	if c.AnswersLost > 0 {
		lost = append(lost, fmtInt(c.AnswersLost)+" answers lost in part (polls counted, answers unknown)")
	}
	if c.Unpaired > 0 {
		lost = append(lost, fmtInt(c.Unpaired)+" answers to statements not captured")
	}
	if c.CutPackets > 0 {
		lost = append(lost, fmtInt(c.CutPackets)+" packets cut by the snap length")
	}
	if c.Encrypted > 0 {
		lost = append(lost, fmtInt(c.Encrypted)+" encrypted conversations (not decoded)")
	}
	if c.MidStream > 0 {
		lost = append(lost, fmtInt(c.MidStream)+" conversations joined mid-way (client unknown)")
	}
	if len(lost) > 0 {
		s += "; " + strings.Join(lost, ", ")
	}
	if c.Incomplete != "" {
		s += "; INCOMPLETE, " + c.Incomplete
	}
	return s + "."
}

// LogFile is one file of a LogInput, as recognised.
type LogFile struct {
	Path        string `json:"path"` // "-" for standard input
	Format      string `json:"format"`
	Prefix      string `json:"prefix,omitempty"`
	Compression string `json:"compression,omitempty"`
	Size        int64  `json:"size"` // as stored; -1 for standard input
}

// Source says where a snapshot comes from.
type Source struct {
	Listen   string // the proxy's listen address
	Upstream string // the server it forwards to; a password in it is removed
	Host     string // the host the proxy ran on
	Version  string // pgpollwatch's version
	// Input names what was analysed instead of a proxy's traffic: "server log: a.log, b.log.gz".
	Input string
}

// Proxy is one source of a report.
type Proxy struct {
	Listen    string    `json:"listen"`
	Upstream  string    `json:"upstream"`
	Host      string    `json:"host"`
	Version   string    `json:"version"`
	Input     string    `json:"input,omitempty"` // what was analysed when not a proxy's traffic (a server log)
	StartedAt time.Time `json:"started_at"`
	EndedAt   time.Time `json:"ended_at"`
}

// Totals are counts since the proxy started.
type Totals struct {
	Queries          int64 `json:"queries"`
	WatchedLookups   int64 `json:"watched_lookups"`
	WatchedWrites    int64 `json:"watched_writes"`
	Failed           int64 `json:"failed"`
	CachedAnswers    int64 `json:"cached_answers"`
	Connections      int64 `json:"connections"`
	OpenConnections  int64 `json:"open_connections"`
	AuthFailures     int64 `json:"auth_failures"`
	KeysTracked      int   `json:"keys_tracked"`
	KeysEvicted      int64 `json:"keys_evicted"`
	FingerprintsSeen int   `json:"fingerprints_tracked"`
	StormsActive     int   `json:"storms_active"`
}

// Rates are per-second averages over the last complete seconds before ended_at.
type Rates struct {
	QPS           float64 `json:"qps"`
	QPS10         float64 `json:"qps_10s"`
	WatchedQPS10  float64 `json:"watched_qps_10s"`
	ConnsPerSec10 float64 `json:"connections_per_sec_10s"`
	KeysPolled10  int     `json:"keys_polled_10s"`
}

// Peak is the busiest window of the timeline by watched polls (by queries when nothing was
// watched).
type Peak struct {
	From       time.Time `json:"from"` // first second of the window
	To         time.Time `json:"to"`   // last second of the window
	QPS        float64   `json:"qps"`
	WatchedQPS float64   `json:"watched_qps"`
}

// Second is one second of whole-proxy traffic.
type Second struct {
	Time        time.Time `json:"t"`
	Queries     uint32    `json:"queries"`
	Watched     uint32    `json:"watched"`
	Cached      uint32    `json:"cached"`
	Connections uint32    `json:"connections"`
}

// Key is one watched key (a Celery task_id, a group id, ...).
type Key struct {
	Table              string     `json:"table"`
	Column             string     `json:"column"`
	Key                string     `json:"key"`
	Polls              int64      `json:"polls"`
	UnchangedPolls     int64      `json:"unchanged_polls"` // -1: answers not seen (a server log)
	CachedPolls        int64      `json:"cached_polls"`
	Rows               int64      `json:"rows"`
	Writes             int64      `json:"writes"`
	QPS1               float64    `json:"qps_1s"`
	QPS10              float64    `json:"qps_10s"`
	QPS60              float64    `json:"qps_60s"`
	PeakQPS            float64    `json:"peak_qps"`
	MedianIntervalMs   float64    `json:"median_interval_ms"` // -1: fewer than two polls
	P10IntervalMs      float64    `json:"p10_interval_ms"`    // -1: fewer than two polls
	WaitsPct           float64    `json:"waits_pct"`          // -1: fewer than two polls, or not in the report read
	FirstSeen          time.Time  `json:"first_seen"`
	LastSeen           time.Time  `json:"last_seen"`
	LastStatus         string     `json:"last_status"`
	TimeToResultMs     float64    `json:"time_to_result_ms"` // -1: no final status seen
	PollsAfterTerminal int64      `json:"polls_after_terminal"`
	Clients            int        `json:"clients"`
	Storming           bool       `json:"storming"`
	Spinning           bool       `json:"spinning"`
	History            []uint32   `json:"history"` // polls per second, the last one aligned with the timeline's last
	WhatIfSaved500ms   int64      `json:"what_if_saved_500ms"`
	Tags               []TagCount `json:"tags,omitempty"` // the attribution tags its polls carried most, at most 3
}

// Fingerprint is one normalized statement.
type Fingerprint struct {
	Fingerprint string    `json:"fingerprint"`
	Query       string    `json:"query"`             // normalized: every constant is $n
	Example     string    `json:"example,omitempty"` // the text as sent, literals included: only with --report-literals
	Command     string    `json:"command"`
	Calls       int64     `json:"calls"`
	Failed      int64     `json:"failed"`
	Cached      int64     `json:"cached"`
	Rows        int64     `json:"rows"` // -1: answers not seen (a server log)
	QPS1        float64   `json:"qps_1s"`
	QPS10       float64   `json:"qps_10s"`
	TotalMs     float64   `json:"total_ms"`
	MeanMs      float64   `json:"mean_ms"`
	P99Ms       float64   `json:"p99_ms"`
	Watched     bool      `json:"watched"`
	Write       bool      `json:"write"`
	Table       string    `json:"table,omitempty"`
	FirstSeen   time.Time `json:"first_seen"`
	LastSeen    time.Time `json:"last_seen"`
	History     []uint32  `json:"history"`
}

// Client is one (address, application_name, user, database).
type Client struct {
	Address         string  `json:"address"`
	ApplicationName string  `json:"application_name"`
	User            string  `json:"user"`
	Database        string  `json:"database"`
	Queries         int64   `json:"queries"`
	Polls           int64   `json:"polls"`
	Connections     int64   `json:"connections"`
	OpenConnections int64   `json:"open_connections"`
	QPS10           float64 `json:"qps_10s"`
	ConnsPerSec10   float64 `json:"connections_per_sec_10s"`
	PollShare       float64 `json:"poll_share"`
	QueriesPerConn  float64 `json:"queries_per_connection"`
}

// Poller is one client identity as a poller: its watched polls over all keys, and whether it
// waited between two polls of a key (docs/report.md, "Spin loops").
type Poller struct {
	Address         string     `json:"address"`
	ApplicationName string     `json:"application_name"`
	User            string     `json:"user"`
	Database        string     `json:"database"`
	Table           string     `json:"table"`
	Column          string     `json:"column"`
	Polls           int64      `json:"polls"`
	PollQPS10       float64    `json:"poll_qps_10s"`
	PeakQPS         float64    `json:"peak_qps"`
	QueryShare      float64    `json:"query_share"`
	Keys            int        `json:"keys"`
	KeyGapMs        float64    `json:"key_gap_ms"` // -1: no gap yet
	WaitsPct        float64    `json:"waits_pct"`  // -1: no gap yet
	OverlapPct      float64    `json:"overlap_pct"`
	Storming        bool       `json:"storming"`
	Spinning        bool       `json:"spinning"`
	Tags            []TagCount `json:"tags,omitempty"` // the attribution tags its polls carried most, at most 3
}

// Repeat is a read nobody configured that kept being repeated with the same values.
type Repeat struct {
	Fingerprint string  `json:"fingerprint"`
	Query       string  `json:"query"`
	Values      string  `json:"values"` // a digest of the values, never the values
	Reads       int64   `json:"reads"`
	Unchanged   int64   `json:"unchanged"` // -1: answers not seen (a server log)
	QPS10       float64 `json:"qps_10s"`
	PeakQPS     float64 `json:"peak_qps"`
	Storming    bool    `json:"storming"`
}

// Storm is a period during which a key (or a repeated read) was polled at or above the storm
// rate, or a poller polled many keys at or above the sweep rate.
type Storm struct {
	Kind             string    `json:"kind"` // "key", "poller" or "repeat"
	Table            string    `json:"table,omitempty"`
	Column           string    `json:"column,omitempty"`
	Key              string    `json:"key,omitempty"`
	Query            string    `json:"query,omitempty"`
	StartedAt        time.Time `json:"started_at"`
	EndedAt          time.Time `json:"ended_at,omitzero"` // zero while active
	Active           bool      `json:"active"`
	Polls            int64     `json:"polls"`
	PeakQPS          float64   `json:"peak_qps"`
	Spin             bool      `json:"spin"`
	MedianIntervalMs float64   `json:"median_interval_ms"`
	WaitsPct         float64   `json:"waits_pct"` // -1: not in the report read

	// A poller's storm: who, how many keys, its share of all queries, how often its
	// connections overlapped.
	Address         string  `json:"address,omitempty"`
	ApplicationName string  `json:"application_name,omitempty"`
	User            string  `json:"user,omitempty"`
	Database        string  `json:"database,omitempty"`
	Keys            int     `json:"keys,omitempty"`
	QueryShare      float64 `json:"query_share,omitempty"`
	OverlapPct      float64 `json:"overlap_pct,omitempty"`

	Tags []TagCount `json:"tags,omitempty"` // the attribution tags its polls carried most, at most 3
}

// Queue is one job queue kept in PostgreSQL tables (Oban, Solid Queue, ...): how often it was
// polled for work, how often a poll found none, and how often work was enqueued.
type Queue struct {
	Queue          string        `json:"queue"`
	Library        string        `json:"library"`
	Tables         string        `json:"tables"` // comma-separated
	Polls          int64         `json:"polls"`
	EmptyPolls     int64         `json:"empty_polls"` // -1: answers not seen (a server log)
	EmptyPct       float64       `json:"empty_pct"`   // of the polls whose answers were seen; -1 when none were
	Enqueued       int64         `json:"enqueued"`
	PollsPerSec10  float64       `json:"polls_per_sec_10s"`
	PollsPerSec    float64       `json:"polls_per_sec"`    // from its first poll to its last
	EnqueuedPerSec float64       `json:"enqueued_per_sec"` // over the same span
	IntervalP50Ms  float64       `json:"interval_p50_ms"`  // -1: no client polled it twice
	Clients        []QueueClient `json:"clients"`          // busiest first
	Tags           []TagCount    `json:"tags"`             // the attribution tags its polls carried
}

// QueueClient is one client's polls of a queue.
type QueueClient struct {
	Address         string  `json:"address"`
	ApplicationName string  `json:"application_name"`
	User            string  `json:"user"`
	Database        string  `json:"database"`
	Polls           int64   `json:"polls"`
	EmptyPolls      int64   `json:"empty_polls"` // -1: answers not seen
	PollsPerSec10   float64 `json:"polls_per_sec_10s"`
	IntervalP50Ms   float64 `json:"interval_p50_ms"` // -1: fewer than two polls
}

// TagCount is how many statements (or polls) carried one attribution tag.
type TagCount struct {
	Tag      string  `json:"tag"`
	Count    int64   `json:"count"`
	PerSec10 float64 `json:"per_sec_10s"`
}

// Tag is the statements that carried one attribution tag (a sqlcommenter or marginalia
// comment's key=value pairs: which code sent them), from every client.
type Tag struct {
	Tag           string  `json:"tag"`
	Queries       int64   `json:"queries"`
	Polls         int64   `json:"polls"` // watched lookups and queue polls
	QPS10         float64 `json:"qps_10s"`
	PollsPerSec10 float64 `json:"polls_per_sec_10s"`
}

// Finding is a problem with its evidence and a concrete fix.
type Finding struct {
	ID       string   `json:"id"`
	Kind     string   `json:"kind"`
	Severity string   `json:"severity"`
	Summary  string   `json:"summary"`
	Evidence []string `json:"evidence"`
	Fix      string   `json:"fix"`
	// Until is absent while the problem holds at the report's end; for one that held earlier
	// only (a server log's storm of an hour ago), the last second it was seen.
	Until time.Time `json:"until,omitzero"`
}

// HeldUntil says, for a finding that no longer held at the end, until when it did.
func (f Finding) HeldUntil() string {
	if f.Until.IsZero() {
		return ""
	}
	return " (held until " + fmtClock(f.Until) + " UTC)"
}

// Watch counts the statements on one watched table.column.
type Watch struct {
	Table   string `json:"table"`
	Column  string `json:"column"`
	Origin  string `json:"origin"`
	Lookups int64  `json:"lookups"`
	Writes  int64  `json:"writes"`
}

// Coalesce is the state of the coalescing cache at ended_at, counts since start.
type Coalesce struct {
	Enabled        bool    `json:"enabled"`
	TTLMs          float64 `json:"ttl_ms"`
	Scope          string  `json:"scope"`
	Hits           int64   `json:"hits"`
	Misses         int64   `json:"misses"`
	Fills          int64   `json:"fills"`
	Invalidations  int64   `json:"invalidations"`
	DiscardedFills int64   `json:"discarded_fills"`
	Bypassed       int64   `json:"bypassed"`
	Entries        int     `json:"entries"`
	Bytes          int64   `json:"bytes"`
	MaxEntries     int     `json:"max_entries"`
	MaxBytes       int64   `json:"max_bytes"`
	AgeP50Ms       float64 `json:"age_p50_ms"`
	AgeMaxMs       float64 `json:"age_max_ms"`
	Saved          int64   `json:"saved"`
}

// HitRatio is hits / (hits + misses); 0 before the first eligible read.
func (c *Coalesce) HitRatio() float64 {
	if n := c.Hits + c.Misses; n > 0 {
		return float64(c.Hits) / float64(n)
	}
	return 0
}

// Reuse is server connection reuse's state at ended_at (--reuse-server-connections), counts
// since start.
type Reuse struct {
	Reused    int64 `json:"reused"`    // clients served by a kept server connection instead of a new one
	Kept      int64 `json:"kept"`      // server connections reset and kept after their client left
	Discarded int64 `json:"discarded"` // kept connections closed: expired, closed by the server, reset failed, no room
	Idle      int   `json:"idle"`      // kept connections waiting for a client at ended_at
}

// WhatIf is the estimate, for one TTL, of the watched polls a cache would have answered.
type WhatIf struct {
	TTLMs      float64 `json:"ttl_ms"`
	Polls      int64   `json:"polls"`
	Saved      int64   `json:"saved"`
	SavedShare float64 `json:"saved_share"`
}

// FromSnapshot builds the report of one proxy from its snapshot. The report owns all its data:
// later changes to s do not show in it.
func FromSnapshot(s *analyzer.Snapshot, src Source) *Report {
	started, ended := utc(s.StartedAt), utc(s.TakenAt)
	r := &Report{
		SchemaVersion: SchemaVersion,
		StartedAt:     started,
		EndedAt:       ended,
		Generator:     generator(src.Version),
		Proxies: []Proxy{{Listen: src.Listen, Upstream: RedactDSN(src.Upstream), Host: src.Host,
			Version: src.Version, Input: src.Input, StartedAt: started, EndedAt: ended}},
		Totals: Totals(s.Totals),
		Rates: Rates{QPS: finite(s.Rates.QPS), QPS10: finite(s.Rates.QPS10), WatchedQPS10: finite(s.Rates.WatchedQPS10),
			ConnsPerSec10: finite(s.Rates.ConnsPerSec10), KeysPolled10: s.Rates.KeysPolled10},
		Headline:     s.Headline,
		NoAnswers:    s.NoAnswers,
		Timeline:     make([]Second, 0, len(s.Timeline)),
		Keys:         make([]Key, 0, len(s.Keys)),
		Fingerprints: make([]Fingerprint, 0, len(s.Fingerprints)),
		Clients:      make([]Client, 0, len(s.Clients)),
		Pollers:      make([]Poller, 0, len(s.Pollers)),
		Repeats:      make([]Repeat, 0, len(s.Repeats)),
		Storms:       make([]Storm, 0, len(s.Storms)),
		Findings:     make([]Finding, 0, len(s.Findings)),
		Watches:      make([]Watch, 0, len(s.Watches)),
		Queues:       make([]Queue, 0, len(s.Queues)),
		Tags:         make([]Tag, 0, len(s.Tags)),
	}
	for _, t := range s.Timeline {
		r.Timeline = append(r.Timeline, Second{Time: utc(t.Time), Queries: t.Queries, Watched: t.Watched,
			Cached: t.Cached, Connections: t.Connections})
	}
	for _, k := range s.Keys {
		r.Keys = append(r.Keys, Key{
			Table: k.Table, Column: k.Column, Key: k.Key,
			Polls: k.Polls, UnchangedPolls: k.UnchangedPolls, CachedPolls: k.CachedPolls, Rows: k.Rows, Writes: k.Writes,
			QPS1: finite(k.QPS1), QPS10: finite(k.QPS10), QPS60: finite(k.QPS60), PeakQPS: finite(k.PeakQPS),
			MedianIntervalMs: finiteOr(k.MedianIntervalMs, -1), P10IntervalMs: finiteOr(k.P10IntervalMs, -1),
			WaitsPct:  finiteOr(k.WaitsPct, -1),
			FirstSeen: utc(k.FirstSeen), LastSeen: utc(k.LastSeen), LastStatus: k.LastStatus,
			TimeToResultMs: finiteOr(k.TimeToResultMs, -1), PollsAfterTerminal: k.PollsAfterTerminal,
			Clients: k.Clients, Storming: k.Storming, Spinning: k.Spinning, History: cloneHistory(k.History),
			WhatIfSaved500ms: k.WhatIfSaved500ms, Tags: tagCounts(k.Tags, false),
		})
	}
	for _, f := range s.Fingerprints {
		r.Fingerprints = append(r.Fingerprints, Fingerprint{
			Fingerprint: f.Fingerprint, Query: f.Query, Example: f.Example, Command: f.Command,
			Calls: f.Calls, Failed: f.Failed, Cached: f.Cached, Rows: f.Rows,
			QPS1: finite(f.QPS1), QPS10: finite(f.QPS10), TotalMs: finite(f.TotalMs), MeanMs: finite(f.MeanMs), P99Ms: finite(f.P99Ms),
			Watched: f.Watched, Write: f.Write, Table: f.Table,
			FirstSeen: utc(f.FirstSeen), LastSeen: utc(f.LastSeen), History: cloneHistory(f.History),
		})
	}
	for _, c := range s.Clients {
		r.Clients = append(r.Clients, Client{
			Address: c.Address, ApplicationName: c.ApplicationName, User: c.User, Database: c.Database,
			Queries: c.Queries, Polls: c.Polls, Connections: c.Connections, OpenConnections: c.OpenConnections,
			QPS10: finite(c.QPS10), ConnsPerSec10: finite(c.ConnsPerSec10), PollShare: finite(c.PollShare),
			QueriesPerConn: finite(c.QueriesPerConn),
		})
	}
	for _, p := range s.Pollers {
		r.Pollers = append(r.Pollers, Poller{
			Address: p.Address, ApplicationName: p.ApplicationName, User: p.User, Database: p.Database,
			Table: p.Table, Column: p.Column, Polls: p.Polls, PollQPS10: finite(p.PollQPS10), PeakQPS: finite(p.PeakQPS),
			QueryShare: finite(p.QueryShare), Keys: p.Keys, KeyGapMs: finiteOr(p.KeyGapMs, -1), WaitsPct: finiteOr(p.WaitsPct, -1),
			OverlapPct: finite(p.OverlapPct), Storming: p.Storming, Spinning: p.Spinning, Tags: tagCounts(p.Tags, false),
		})
	}
	for _, p := range s.Repeats {
		r.Repeats = append(r.Repeats, Repeat{Fingerprint: p.Fingerprint, Query: p.Query, Values: p.Values,
			Reads: p.Reads, Unchanged: p.Unchanged, QPS10: finite(p.QPS10), PeakQPS: finite(p.PeakQPS), Storming: p.Storming})
	}
	for _, st := range s.Storms {
		r.Storms = append(r.Storms, Storm{Kind: st.Kind, Table: st.Table, Column: st.Column, Key: st.Key, Query: st.Query,
			StartedAt: utc(st.StartedAt), EndedAt: utc(st.EndedAt), Active: st.Active, Polls: st.Polls,
			PeakQPS: finite(st.PeakQPS), Spin: st.Spin, MedianIntervalMs: finite(st.MedianIntervalMs), WaitsPct: finiteOr(st.WaitsPct, -1),
			Address: st.Address, ApplicationName: st.ApplicationName, User: st.User, Database: st.Database,
			Keys: st.Keys, QueryShare: finite(st.QueryShare), OverlapPct: finite(st.OverlapPct), Tags: tagCounts(st.Tags, false)})
	}
	for _, f := range s.Findings {
		r.Findings = append(r.Findings, Finding{ID: f.ID, Kind: f.Kind, Severity: f.Severity, Summary: f.Summary,
			Evidence: append(make([]string, 0, len(f.Evidence)), f.Evidence...), Fix: f.Fix, Until: utc(f.Until)})
	}
	for _, w := range s.Watches {
		r.Watches = append(r.Watches, Watch(w))
	}
	for _, q := range s.Queues {
		clients := make([]QueueClient, 0, len(q.Clients))
		for _, c := range q.Clients {
			clients = append(clients, QueueClient{Address: c.Address, ApplicationName: c.ApplicationName, User: c.User, Database: c.Database,
				Polls: c.Polls, EmptyPolls: c.EmptyPolls, PollsPerSec10: finite(c.PollsPerSec10), IntervalP50Ms: finiteOr(c.IntervalP50Ms, -1)})
		}
		r.Queues = append(r.Queues, Queue{Queue: q.Queue, Library: q.Library, Tables: q.Tables,
			Polls: q.Polls, EmptyPolls: q.EmptyPolls, EmptyPct: finiteOr(q.EmptyPct, -1), Enqueued: q.Enqueued,
			PollsPerSec10: finite(q.PollsPerSec10), PollsPerSec: finite(q.PollsPerSec), EnqueuedPerSec: finite(q.EnqueuedPerSec),
			IntervalP50Ms: finiteOr(q.IntervalP50Ms, -1), Clients: clients, Tags: tagCounts(q.Tags, true)})
	}
	for _, t := range s.Tags {
		r.Tags = append(r.Tags, Tag{Tag: t.Tag, Queries: t.Queries, Polls: t.Polls, QPS10: finite(t.QPS10), PollsPerSec10: finite(t.PollsPerSec10)})
	}
	if c := s.Coalesce; c != nil {
		r.Coalesce = &Coalesce{Enabled: c.Enabled, TTLMs: ms(c.TTL), Scope: c.Scope, Hits: c.Hits, Misses: c.Misses,
			Fills: c.Fills, Invalidations: c.Invalidations, DiscardedFills: c.DiscardedFills, Bypassed: c.Bypassed,
			Entries: c.Entries, Bytes: c.Bytes, MaxEntries: c.MaxEntries, MaxBytes: c.MaxBytes,
			AgeP50Ms: ms(c.AgeP50), AgeMaxMs: ms(c.AgeMax), Saved: c.Saved}
	}
	if u := s.Reuse; u != nil {
		r.Reuse = &Reuse{Reused: u.Reused, Kept: u.Kept, Discarded: u.Discarded, Idle: u.Idle}
	}
	if c := s.Config; c != nil {
		r.Config = &Config{Reloads: c.Reloads, ReloadFailures: c.ReloadFailures, LastOK: c.LastOK, LastReload: c.LastReload}
	}
	if th := s.Thresholds; th.StormQPS > 0 {
		r.Thresholds = &Thresholds{StormQPS: th.StormQPS, SweepQPS: th.SweepQPS, StormWindowS: th.StormWindow.Seconds()}
	}
	r.WhatIf = make([]WhatIf, 0, len(s.WhatIf))
	for _, w := range s.WhatIf {
		r.WhatIf = append(r.WhatIf, WhatIf{TTLMs: ms(w.TTL), Polls: w.Polls, Saved: w.Saved, SavedShare: finite(w.SavedShare)})
	}
	r.Peak = peak(r.Timeline)
	return r
}

// ms is a duration in milliseconds, the report's unit.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func generator(version string) string {
	if version == "" {
		version = "dev"
	}
	return "pgpollwatch " + version
}

// utc drops the monotonic clock reading and the location, so a report compares equal to
// itself after a JSON round trip.
func utc(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC()
}

func finite(f float64) float64 { return finiteOr(f, 0) }

func finiteOr(f, or float64) float64 {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return or
	}
	return f
}

func cloneHistory(h []uint32) []uint32 { return append(make([]uint32, 0, len(h)), h...) }

// tagCounts copies a snapshot's tag counts; none is nil unless always, when a list must be
// written even empty.
func tagCounts(ts []analyzer.TagCount, always bool) []TagCount {
	if len(ts) == 0 && !always {
		return nil
	}
	out := make([]TagCount, 0, len(ts))
	for _, t := range ts {
		out = append(out, TagCount{Tag: t.Tag, Count: t.Count, PerSec10: finite(t.PerSec10)})
	}
	return out
}

// peakWindow is the width, in seconds, of the window Peak reports.
const peakWindow = 10

// peak finds the peakWindow seconds of the timeline with the most watched polls (the most
// queries when nothing was watched). Seconds missing from the timeline count as zero.
func peak(tl []Second) *Peak {
	if len(tl) == 0 {
		return nil
	}
	var best *Peak
	var bestW, bestQ uint64
	var w, q uint64
	lo := 0
	for hi := range tl {
		w += uint64(tl[hi].Watched)
		q += uint64(tl[hi].Queries)
		for tl[hi].Time.Sub(tl[lo].Time) >= peakWindow*time.Second {
			w -= uint64(tl[lo].Watched)
			q -= uint64(tl[lo].Queries)
			lo++
		}
		if best == nil || w > bestW || w == bestW && q > bestQ {
			bestW, bestQ = w, q
			best = &Peak{From: tl[lo].Time, To: tl[hi].Time}
		}
	}
	// A timeline shorter than the window averages over the seconds it has.
	n := min(peakWindow, int(tl[len(tl)-1].Time.Sub(tl[0].Time)/time.Second)+1)
	best.QPS = float64(bestQ) / float64(n)
	best.WatchedQPS = float64(bestW) / float64(n)
	return best
}

// Headline is the report's sentence, in the analyzer's words: "N of M queries/s are polls of K
// watched keys (last 10 s); S storming".
func Headline(r *Report) string {
	return analyzer.Headline(r.Rates.WatchedQPS10, r.Rates.QPS10, r.Rates.KeysPolled10, r.Totals.StormsActive)
}

var dsnPassword = regexp.MustCompile(`(?i)(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s]*)`)

// RedactDSN removes a password from a postgres:// URL or a key=value connection string, so a
// report can name its upstream without leaking a secret.
func RedactDSN(dsn string) string {
	if dsn == "" {
		return ""
	}
	if strings.Contains(dsn, "://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "(unparsable upstream address)"
		}
		if u.User != nil {
			if _, ok := u.User.Password(); ok {
				u.User = url.UserPassword(u.User.Username(), "xxxxx")
			}
		}
		q := u.Query()
		if q.Has("password") {
			q.Set("password", "xxxxx")
			u.RawQuery = q.Encode()
		}
		return u.String()
	}
	return dsnPassword.ReplaceAllString(dsn, "${1}xxxxx")
}
