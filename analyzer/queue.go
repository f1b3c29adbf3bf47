package analyzer

import "fmt"

// Queue describes a job queue kept in PostgreSQL tables: which statements poll it for work
// and which enqueue.
//
// A statement polls a queue when it calls one of its PollFunctions, or when it looks for work
// in one of its Tables: it reads the table (a SELECT, a subquery or CTE that reads it, an
// UPDATE or DELETE ... RETURNING); it claims rows (FOR UPDATE, FOR NO KEY UPDATE, SKIP
// LOCKED, pg_try_advisory_lock), takes the first few (LIMIT) or lists what is there
// (DISTINCT); and it does not pick its rows by id (id = $1, id IN (1, 2), id = ANY($1):
// completing, reloading or heart-beating jobs it holds) nor count them (count(*): a
// dashboard). A queue whose library reads with none of these (PlainPolls) needs no claim. An
// UPDATE or DELETE of a queue table polls only if it returns rows, and a DELETE only if it
// locks them (else it is a pruner).
//
// It enqueues when it inserts into one of its EnqueueTables (Tables when none) or calls one of
// its EnqueueFunctions. The matching of names follows PostgreSQL's: unquoted names fold to
// lower case.
type Queue struct {
	Name    string // the preset's name ("oban", "solid_queue", ...) or "--watch-queue"
	Library string // as its users know it: "Oban", "Solid Queue", ...
	// Schema, when set, is the schema its tables and functions live in, and a statement must
	// name it: these libraries qualify their names, and an unqualified "job" is anybody's.
	Schema           string
	Tables           []string
	PollFunctions    []string
	EnqueueFunctions []string
	// EnqueueTables, when set, are the tables an insert into which is a new job; inserts into
	// the other Tables are steps of a job already counted (Solid Queue inserts each job into
	// solid_queue_jobs, then into solid_queue_ready_executions).
	EnqueueTables []string
	// HashedTablePrefix, when set, makes a table of the queue's schema named this prefix and
	// 56 hex digits one of its Tables: pg-boss keeps a queue created with partition: true in
	// its own table, j and a SHA-224 of the queue's name.
	HashedTablePrefix string
	// PlainPolls says the library looks for work with a plain read, no lock (Django-Q's ORM
	// broker; and a --watch-queue table, whose library is unknown).
	PlainPolls bool
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
	return Queue{Name: s, Library: "--watch-queue", Schema: w.Schema, Tables: []string{w.Table}, PlainPolls: true}, nil
}
