package analyzer

import "fmt"

// Queue describes a job queue kept in PostgreSQL tables: which statements poll it for work
// and which enqueue. A statement polls a queue when it reads one of its Tables (a SELECT, a
// subquery or CTE that reads it, an UPDATE or DELETE ... RETURNING, with or without FOR UPDATE
// SKIP LOCKED) or calls one of its PollFunctions; it enqueues when it inserts into a table or
// calls one of its EnqueueFunctions. An UPDATE or DELETE that returns nothing (finishing a job)
// is neither. The matching of names follows PostgreSQL's: unquoted names fold to lower case.
type Queue struct {
	Name    string // the preset's name ("oban", "solid_queue", ...) or "--watch-queue"
	Library string // as its users know it: "Oban", "Solid Queue", ...
	// Schema, when set, is the schema its tables and functions live in, and a statement must
	// name it: these libraries qualify their names, and an unqualified "job" is anybody's.
	Schema           string
	Tables           []string
	PollFunctions    []string
	EnqueueFunctions []string
	// Fix is the library's own remedy for polling faster than jobs arrive, by name: its poll
	// interval setting, LISTEN/NOTIFY where it has it, fewer workers per queue.
	Fix string
	// Source cites where the statements were read: repository, file and version.
	Source string
}

// QueueStat is what the polls of one queue looked like since start.
type QueueStat struct {
	Queue   string `json:"queue"`   // Queue.Name
	Library string `json:"library"` // Queue.Library
	Tables  string `json:"tables"`  // the queue's tables, comma-separated
	Polls   int64  `json:"polls"`
	// EmptyPolls are the polls that found nothing (no row came back). -1 when the source does
	// not see answers (a server log); EmptyPct is then -1 too.
	EmptyPolls     int64   `json:"empty_polls"`
	EmptyPct       float64 `json:"empty_pct"`
	Enqueued       int64   `json:"enqueued"` // enqueue statements (an INSERT of many rows counts its rows when the tag says)
	PollsPerSec10  float64 `json:"polls_per_sec_10s"`
	PollsPerSec    float64 `json:"polls_per_sec"`    // over the time it was polled, first poll to last
	EnqueuedPerSec float64 `json:"enqueued_per_sec"` // over the same span
	// IntervalP50Ms is the median time between two polls of the queue by one client (its
	// connections together); -1 with fewer than two polls from any client.
	IntervalP50Ms float64       `json:"interval_p50_ms"`
	Clients       []QueueClient `json:"clients"` // busiest first, at most 20
	Tags          []TagCount    `json:"tags,omitempty"`
}

// QueueClient is one client's polls of a queue.
type QueueClient struct {
	Address         string  `json:"address"`
	ApplicationName string  `json:"application_name"`
	User            string  `json:"user"`
	Database        string  `json:"database"`
	Polls           int64   `json:"polls"`
	EmptyPolls      int64   `json:"empty_polls"` // -1 without answers
	PollsPerSec10   float64 `json:"polls_per_sec_10s"`
	IntervalP50Ms   float64 `json:"interval_p50_ms"` // -1 with fewer than two polls
}

// TagCount is how many statements (or polls) carried one attribution tag: the key=value pairs
// of a sqlcommenter or marginalia comment that say which code ran the statement, e.g.
// "controller=jobs,action=show" or "job=PollJob". Tag values are bounded: past the cap every new
// tag counts as "other".
type TagCount struct {
	Tag      string  `json:"tag"`
	Count    int64   `json:"count"`
	PerSec10 float64 `json:"per_sec_10s"`
}

// TagStat is the statements that carried one attribution tag, from every client.
type TagStat struct {
	Tag     string  `json:"tag"`
	Queries int64   `json:"queries"`
	Polls   int64   `json:"polls"` // watched lookups and queue polls
	QPS10   float64 `json:"qps_10s"`
	// PollsPerSec10 counts watched lookups and queue polls over the last 10 s.
	PollsPerSec10 float64 `json:"polls_per_sec_10s"`
}

// ParseQueue reads --watch-queue's TABLE or SCHEMA.TABLE, names as written in SQL: unquoted
// ones fold to lower case, "Quoted" ones are kept. Its polls and enqueues are the statements
// that read or insert into the table (see Queue).
func ParseQueue(s string) (Queue, error) {
	w, err := ParseWatch(s + ".x")
	if err != nil || w.Column != "x" {
		return Queue{}, fmt.Errorf("--watch-queue %q: want TABLE or SCHEMA.TABLE", s)
	}
	return Queue{Name: s, Library: "--watch-queue", Schema: w.Schema, Tables: []string{w.Table}}, nil
}
