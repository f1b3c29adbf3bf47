package proxy

import "time"

// Cache is the coalescing hook: before forwarding a watched read, a session asks it for a
// recent answer; it tells it the server's answers to the reads it forwarded, and every write
// it sees. The proxy defines it and owns the protocol side (which session states allow a
// cached answer, holding and synthesizing messages); coalesce.Cache implements it and owns
// the entries, single-flight, invalidation and what counts as eligible.
//
// A nil Cache in Config means no coalescing at all: the sessions then do none of this work.
type Cache interface {
	// Enabled reports whether reads may be answered from the cache now. It can change while
	// the proxy runs (the TUI's c key); a change discards every entry and every fill begun
	// before it.
	Enabled() bool
	// Scope says in which session states a hit may be served.
	Scope() CacheScope
	// NewClassifier returns what reads one session's statements; it is used by that session's
	// client side only.
	NewClassifier() Classifier
	// Get looks up the answer to a read whose result depends on the watched keys in t. It
	// returns a hit; or, when no fill of that key is in flight, a Fill the caller completes with
	// the server's answer; or, when one is, it waits (boundedly) for it and returns its answer,
	// or neither when that fill failed (the caller forwards the read itself, never an error the
	// proxy made up).
	Get(key []byte, t Touch, now time.Time) (*Answer, Fill)
	// Invalidate marks what a write touched: no entry read before this call is served again.
	Invalidate(t Touch)
	// Bypassed counts an eligible read forwarded because the session's state forbade a hit.
	Bypassed()
	// MaxAnswer is the largest answer, in bytes, worth collecting for a fill.
	MaxAnswer() int
}

// CacheScope is where cached answers may be served.
type CacheScope uint8

const (
	// ScopeReadCommitted serves when the session is idle, or inside a transaction that so far
	// ran only a plain BEGIN and eligible reads (under read committed each statement sees the
	// latest committed data, so such a read is one the server could have answered).
	ScopeReadCommitted CacheScope = iota
	// ScopeIdle serves only when the session is idle, outside any transaction block.
	ScopeIdle
)

// Fill is the right, and the duty, to complete a cache entry with the server's answer to a
// read: exactly one of Done or Abandon must be called.
type Fill interface {
	// Done offers the server's answer. The cache keeps it only if nothing it depends on was
	// invalidated since Get (a fill that raced with a write is discarded).
	Done(a *Answer)
	// Abandon gives up: the server answered with an error, the answer was too large, or the
	// session ended. Readers waiting for this fill forward their reads themselves.
	Abandon()
}

// Classifier tells the session what a statement does, as far as the cache is concerned. Its
// results alias its own buffers until the next call.
type Classifier interface {
	// Classify reads one statement's text (a Query string, or a Parse's query).
	Classify(text []byte) Class
	// Taints is a cheap test used while coalescing is off: whether text changes session state
	// the server does not report (search_path, SET ROLE, DISCARD, set_config, ...), settings
	// that would only change the key included, since they are not tracked while it is off.
	Taints(text []byte) bool
	// BindTouch fills in the watched keys a statement classified as a read or a write reaches
	// through its bound parameters; false when they cannot be told (too many, unreadable).
	BindTouch(c *Class, bind BindMessage) (Touch, bool)
}

// StmtKind is what a statement is, for the cache.
type StmtKind uint8

const (
	// StmtOther is anything else. Inside a transaction it ends the reads a cache may answer.
	StmtOther StmtKind = iota
	// StmtBegin is a plain BEGIN / START TRANSACTION (read committed, or no isolation level).
	StmtBegin
	// StmtRead is an eligible watched read: one SELECT of a watched table by key, no locking
	// clause, no function that could change or vary.
	StmtRead
	// StmtWrite changes a watched table (INSERT/UPDATE/DELETE/TRUNCATE/COPY/DDL naming it, or a
	// statement that could write anything, such as CALL or DO).
	StmtWrite
	// StmtTaint changes session state the server does not report: the session bypasses the
	// cache from then on.
	StmtTaint
	// StmtSetting sets an unreported parameter that only changes how values are written out
	// (extra_float_digits, bytea_output): once it has taken effect the value becomes part of
	// the session's cache key, as a reported parameter's does. Class.Setting holds it.
	StmtSetting
	// StmtUnknown was not classified (coalescing was off when it was sent). A transaction that
	// ran one invalidates everything when it ends, in case the cache was switched on meanwhile.
	StmtUnknown
)

// Class is a classified statement.
type Class struct {
	Kind StmtKind
	// Touch is what the statement reads or writes, when its keys are literals in the text.
	Touch Touch
	// KeyParam is the 1-based parameter holding the key(s) (extended protocol); 0 none.
	KeyParam int
	// KeyArray says the parameter is an array (= ANY($n)).
	KeyArray bool
	// Watch is the watched table's index.
	Watch int
	// Taint says the statement (or one in its string) changes session state the server does
	// not report; always set for StmtTaint, and with StmtWrite for a string that does both.
	Taint bool
	// Setting is the NAME=value a StmtSetting sets.
	Setting string
}

// MaxTouchKeys is how many keys one cached read may depend on.
const MaxTouchKeys = 4

// Touch is what a statement depends on (a read) or changes (a write), in the cache's terms:
// slots of watched keys, a whole watched table, or everything.
type Touch struct {
	Watch int16
	N     uint8 // number of Slots in use
	Table bool  // the whole table (its keys could not be told)
	All   bool  // every watched table
	Slots [MaxTouchKeys]uint32
}

// Answer is a complete server answer to one read, as the messages the server sent (each with
// its type byte and length). Answers are immutable once filled.
type Answer struct {
	Desc     []byte // the RowDescription message, when the server sent one for this read
	Rows     []byte // the DataRow messages
	Complete []byte // the CommandComplete message
	// For the observer: what an Event of the same statement would carry.
	Columns  []byte // RowDescription body describing Rows (from Desc or the prepared statement)
	NRows    int64
	Digest   uint64
	FirstRow []byte
}

// Size is the memory the answer holds.
func (a *Answer) Size() int {
	return len(a.Desc) + len(a.Rows) + len(a.Complete) + len(a.Columns) + len(a.FirstRow)
}
