// Package event is what a source of traffic tells an observer: connections opening,
// authenticating and closing, and the statements the server completed. The proxy is the live
// source (package proxy re-exports these types under the same names); replay turns a server's
// log into the same events; the analyzer is the observer. Views (tui, metrics, report) read the
// analyzer's snapshots and need neither this package nor the proxy.
package event

import (
	"time"

	"github.com/pgpollwatch/pgpollwatch/internal/pgwire"
)

// Observer hears what passes through the proxy. The proxy calls it; the analyzer implements it.
//
// Every method is called on a session's own goroutine, after the bytes it describes have been
// forwarded, so an observer never delays traffic by more than its own running time. An
// implementation must therefore be quick and must not block: when it cannot keep up it should
// drop and count, never wait. Slices inside an Event alias the session's buffers and are valid
// only during the call; copy what you keep.
type Observer interface {
	// ConnOpened is called once the client's startup message has been read.
	ConnOpened(c *ConnInfo)
	// ConnAuthenticated is called when the server accepts or refuses the client. On refusal
	// sqlstate holds the server's code (e.g. 28P01); the connection closes right after.
	ConnAuthenticated(c *ConnInfo, ok bool, sqlstate string)
	// Statements is called with every statement the server completed in one read from it.
	Statements(c *ConnInfo, batch []Event)
	// ConnClosed is called once, when both sides of the session are closed.
	ConnClosed(c *ConnInfo, st ConnStats)
}

// NopObserver ignores everything. Embed it to implement only part of Observer.
type NopObserver struct{}

func (NopObserver) ConnOpened(*ConnInfo)                      {}
func (NopObserver) ConnAuthenticated(*ConnInfo, bool, string) {}
func (NopObserver) Statements(*ConnInfo, []Event)             {}
func (NopObserver) ConnClosed(*ConnInfo, ConnStats)           {}

// ConnInfo identifies one client connection. It is immutable after ConnOpened (but for Local), and stays valid
// (and the same pointer) for the session's life, so an observer may use it as a map key.
type ConnInfo struct {
	ID              uint64
	ClientAddr      string // the client's address as the proxy saw it (ip:port)
	User            string
	Database        string
	ApplicationName string
	// Params are the startup parameters exactly as the client sent them. The startup packet
	// never carries a password; authentication messages are never decoded.
	Params      map[string]string
	Protocol    uint32 // 196608 for 3.0, 196610 for 3.2
	TLS         bool   // the client connection is TLS-terminated by the proxy
	Replication bool   // a replication connection: forwarded raw, no statement events
	// OpenedAt is when the proxy accepted the client's TCP connection: from then on the client
	// is busy opening it (SSLRequest, startup packet, login), not idle.
	OpenedAt time.Time

	// Local is the observer's own per-connection state: set it in ConnOpened and read it in
	// the later calls, which all come from this connection's goroutines one at a time.
	Local any
}

// ConnStats describes a finished connection.
type ConnStats struct {
	Duration        time.Duration
	BytesFromClient int64
	BytesFromServer int64
	Statements      int64
	// Err is why the session ended, nil for an orderly Terminate or close.
	Err error
}

// Protocol says which flow a statement came through.
type Protocol uint8

const (
	// Simple is a Query message: Text is the whole query string, Index the statement's place in it.
	Simple Protocol = iota
	// Extended is Parse/Bind/Execute: Text is the prepared statement's text, Bind its parameters.
	Extended
	// FunctionCall is the legacy FunctionCall message (fast-path); Text is empty.
	FunctionCall
)

// Event is one statement the server completed (CommandComplete, EmptyQueryResponse,
// PortalSuspended) or refused (ErrorResponse).
type Event struct {
	Protocol Protocol
	// Text is the SQL: the Query string (which may hold several statements; Index says which one
	// this is) or the prepared statement's text.
	Text []byte
	// Index is the 0-based position of this statement in a multi-statement Query string.
	Index int
	// StatementName is the prepared statement's name ("" for the unnamed statement).
	StatementName []byte
	// Bind is the raw body of the Bind message that created the executed portal (extended only);
	// use Params and ResultFormats to read it.
	Bind BindMessage

	Start    time.Time
	Duration time.Duration

	// Columns is the RowDescription body describing the returned rows, when the server sent one
	// for this statement (a Describe in the same batch, or any simple query returning rows).
	Columns []byte
	// FirstRow is the start (at most FirstRowPrefix bytes) of the first DataRow body, so an
	// observer can read a short leading column such as a task's status without the proxy
	// holding results. Never store it.
	FirstRow []byte

	Tag       []byte // command tag from CommandComplete, e.g. "SELECT 1"
	Rows      int64  // DataRows returned
	Digest    uint64 // hash of the DataRow bytes in order; 0 when no row came back
	SQLState  [5]byte
	Failed    bool // the server answered with an ErrorResponse; SQLState holds its code
	Suspended bool // Execute stopped at its row limit (PortalSuspended); the portal may continue
	Empty     bool // EmptyQueryResponse: the statement was empty
	Cached    bool // answered by the coalescing cache, not by the server
	// Exchange marks a round trip that ran no statement: an extended-protocol batch up to its
	// Sync with no Execute (a Parse/Describe/Sync to prepare, a bare Sync). It is no statement
	// (no Text, not counted), but the client waited on the server meanwhile, which is what an
	// observer of pauses needs to know.
	Exchange bool
	// Untimed says the source does not know how long the statement took (a server log without
	// durations: log_statement without log_min_duration_statement); Duration is then 0 and is
	// no measurement.
	Untimed bool
	// AnswerLost says the source saw the statement and the end of its answer, but not all of the
	// answer: a packet capture that lost segments or cut them at its snap length. Rows, Digest,
	// FirstRow and Tag are then unknown (zero) and are no measurement; the statement still ran.
	AnswerLost bool
}

// FirstRowPrefix is how much of a statement's first DataRow an Event carries.
const FirstRowPrefix = 512

// BindMessage is the body of a Bind message, decoded lazily and without allocating
// (pgwire.Bind: Params, NumParams, ResultFormats).
type BindMessage = pgwire.Bind
