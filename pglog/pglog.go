// Package pglog reads PostgreSQL server logs and turns them into a stream of typed records:
// connections, disconnections and statements, with their sessions, clients, parameters,
// durations and failures. It is what `pgpollwatch analyze` feeds to the analyzer instead of the
// proxy's live events.
//
// # Formats
//
// Three log formats are read, each detected per file unless Options.Format says which:
//
//   - stderr (also what logging_collector writes to *.log, and what syslog-less hosted services
//     offer for download), with any log_line_prefix. Give the prefix exactly as configured
//     (Options.Prefix, e.g. "%m [%p] %q%u@%d "); without it the prefixes in DetectPrefixes are
//     tried on the first lines of the file and the one that parses most of them wins. Every
//     PostgreSQL 15 escape is understood: %a %u %d %r %h %b %p %P %t %m %n %i %e %c %l %s %v
//     %x %q %Q %%, with padding (%-10u). Lines continuing a message start with a tab.
//   - csvlog (log_destination = 'csvlog'), PostgreSQL 12 to 17 columns.
//   - jsonlog (log_destination = 'jsonlog', PostgreSQL 15 and later).
//
// Files may be compressed with gzip, bzip2, xz or zstd, detected by their magic bytes, and "-"
// is standard input. Several files are read one after the other in the order of the first
// timestamp each holds (rotated logs: not the order of their names).
//
// Messages are expected in English (lc_messages = 'C' or 'en_*'), as PostgreSQL recommends for
// logs that tools read.
//
// # What becomes a record
//
//   - A Connection record per session: from "connection received" (host, port) and
//     "connection authorized" (user, database, application_name), at the time the connection
//     was received. Failed is set when the session ended with a FATAL error (a wrong password)
//     before it was authorized.
//   - A Disconnection record from "disconnection: session time: ..." (log_disconnections), at
//     the time it was logged, with the session's length as Duration.
//   - A Statement record per statement executed, from whichever the log has:
//     "statement: ..." and "execute NAME: ..." (log_statement), logged when the statement
//     starts; "duration: N ms  statement: ..." and "duration: N ms  execute NAME: ..."
//     (log_min_duration_statement), logged when it ends, so that Time = logged time - duration;
//     and, for a statement that failed and was logged neither way, its ERROR's STATEMENT text
//     (such a record says Simple and has no Params: a statement that fails in Parse or Bind,
//     before its execute is logged, shows neither in the log).
//     When both log_statement and duration logging are on, PostgreSQL logs the statement when
//     it starts and a bare "duration: N ms" when it ends; the two are paired per session into
//     one record. The extended protocol's "parse" and "bind" duration lines are not statements
//     of their own: the execute is. "execute fetch from" (the next rows of a portal that
//     stopped at its row limit) is not a new execution either and yields no record. An ERROR
//     (or FATAL) logged in the same session right after a statement marks it Failed.
//
// # Order
//
// Records come out in the order of their Time (a statement's start), with ties in log order:
// a record is held back until the log has moved Options.Window past it (2 s by default), which
// is also how long a statement logged at its start waits for its duration or error line. A
// statement that ran for longer than the window may come out after records that started later
// than it.
package pglog

import (
	"time"
)

// Kind says what a Record describes.
type Kind uint8

const (
	// Statement is one statement executed (or refused) by the server.
	Statement Kind = iota + 1
	// Connection is a client connection received (and, unless Failed, authorized).
	Connection
	// Disconnection is the end of a session.
	Disconnection
)

func (k Kind) String() string {
	switch k {
	case Statement:
		return "statement"
	case Connection:
		return "connection"
	case Disconnection:
		return "disconnection"
	}
	return "unknown"
}

// Protocol says how a statement was sent.
type Protocol uint8

const (
	// Simple is the simple query protocol (a Query message; psql, pgx's simple mode,
	// psycopg2): Text is the whole query string, which may hold several statements.
	Simple Protocol = iota
	// Extended is Parse/Bind/Execute: Text is the prepared statement's text with $n
	// placeholders, Params its parameters as logged.
	Extended
)

func (p Protocol) String() string {
	if p == Extended {
		return "extended"
	}
	return "simple"
}

// Record is one connection, disconnection or statement read from the log.
type Record struct {
	Kind Kind
	// Time is when the statement started (for a duration line: the logged time minus the
	// duration), when the connection was received, or when the disconnection was logged. It
	// is zero when the log line has no time stamp (a log_line_prefix without %t, %m or %n).
	Time time.Time
	// Duration is the statement's duration, or the session's length for a Disconnection;
	// -1 when the log does not say.
	Duration time.Duration
	// Session identifies the session: PostgreSQL's session id (%c, csvlog's and jsonlog's
	// session_id: the backend's start time and PID in hexadecimal, "65a1b2c3.4d2"); without
	// it one is made the same way from the PID and the session start (%s), else from the
	// time its "connection received" line was logged (a new one each time, so that a reused
	// PID is a new session), else from the first line seen for the PID.
	Session string
	PID     int
	// Host is the client's address (%h, %r, "connection received: host=", csvlog's
	// connection_from, jsonlog's remote_host); "[local]" for a Unix socket. Port is its port,
	// 0 when unknown or local.
	Host     string
	Port     int
	User     string
	Database string
	App      string // application_name: from the line (%a, csvlog, jsonlog) or the connection's
	Protocol Protocol
	// Name is the prepared statement's name for the extended protocol ("" for the unnamed
	// statement, PostgreSQL's "<unnamed>"), with "/portal" when the portal was named.
	Name string
	// Text is the statement exactly as logged: several lines, comments, quotes, E'' and
	// dollar quotes preserved; for Simple, possibly several statements separated by ';'.
	Text string
	// Params are the extended protocol's parameters, from "DETAIL:  parameters: $1 = '...'".
	Params []Param
	// Failed says an ERROR or FATAL followed the statement in its session, or, for a
	// Connection, that the session ended before it was authorized.
	Failed bool
}

// Param is one bound parameter as PostgreSQL logged it (in text form).
type Param struct {
	Value string
	Null  bool
	// Truncated says the log shows only the start of the value (log_parameter_max_length):
	// Value is that start, without the "..." PostgreSQL appended, and is not the value sent.
	Truncated bool
}

// Stats describes what a Reader has read so far.
type Stats struct {
	Files []FileInfo
	// Bytes is the log text read (after decompression).
	Bytes int64
	// Lines is the number of physical lines read.
	Lines int64
	// Records is the number of records Next returned; Statements, Connections and
	// Disconnections break it down.
	Records, Statements, Connections, Disconnections int64
	// Filtered is the number of records left out by Since, Until, Database, User or App.
	Filtered int64
	// Unpaired counts bare "duration: N ms" lines with no statement to pair them with (its
	// start was before the log begins, or longer ago than Options.Window).
	Unpaired int64
	// BadLines counts lines that are not in the file's format; BadExamples holds the first
	// Options.MaxBadExamples of them, with every quoted literal replaced by '…'.
	BadLines    int64
	BadExamples []BadLine
	// Incomplete is set when a file could not be read to its end (a truncated compressed
	// file, an I/O error): the records read before are kept, and Err says what happened.
	Incomplete bool
	Err        error
}

// FileInfo describes one input file as detected.
type FileInfo struct {
	Path        string    // "-" for standard input
	Format      string    // "stderr", "csvlog" or "jsonlog"
	Prefix      string    // stderr: the log_line_prefix used (given or detected)
	Compression string    // "", "gzip", "bzip2", "xz" or "zstd"
	First       time.Time // the first time stamp in the file, zero if none: files are read in its order
	Size        int64     // as stored; -1 for standard input
}

// BadLine is an example of a line that could not be read.
type BadLine struct {
	Path string
	Line int64  // 1-based physical line number in the (decompressed) file
	Text string // at most 200 bytes, literals masked
}

// Options configure Open. The zero value reads any supported format with a detected prefix
// and no filter.
type Options struct {
	// Prefix is log_line_prefix exactly as in postgresql.conf, e.g. "%m [%p] %q%u@%d ". Empty:
	// detect it among DetectPrefixes. Used for stderr files only.
	Prefix string
	// Format is "" (detect per file), "stderr", "csvlog" (or "csv") or "jsonlog" (or
	// "json").
	Format string
	// Since and Until keep the records with Since <= Time < Until (zero: no bound); records
	// without a time stamp are kept.
	Since, Until time.Time
	// Database, User and App keep only the records of sessions with that database, user or
	// application_name (exact match; empty: no filter).
	Database, User, App string
	// Location interprets time stamps whose zone is missing or an abbreviation that is not
	// UTC or a numeric offset (log_timezone = 'Europe/Paris' writes "CET" and "CEST"): give
	// the server's log_timezone. Nil: well-known abbreviations (CET, EST, ...) get their
	// usual offset, anything else is taken as UTC.
	Location *time.Location
	// ParamMaxLength is the server's log_parameter_max_length: -1 (PostgreSQL's default)
	// says values are never shortened; N > 0 that a value of N characters followed by "..."
	// was shortened; 0 (unknown) marks every value ending in "..." as Truncated, to be safe.
	ParamMaxLength int
	// Window is how far the log must move past a record before it is returned (see Order in
	// the package documentation). Default 2s.
	Window time.Duration
	// Progress, when set, is called now and then with the bytes read from the files as
	// stored (compressed bytes for a compressed file) and their total size, or -1 for the
	// total when standard input is among them.
	Progress func(bytesRead, totalBytes int64)
	// MaxBadExamples is how many unreadable lines Stats keeps as examples; 0 means 5,
	// negative none.
	MaxBadExamples int
}

// Formats lists the formats a Reader knows, as Options.Format names them.
var Formats = []string{"stderr", "csvlog", "jsonlog"}

// DetectPrefixes are the log_line_prefix values tried on a stderr log when Options.Prefix is
// empty. The one that parses most of a file's first lines wins; among equals, the one whose
// fields matched most, then the shortest. Sources: PostgreSQL's documentation and default,
// Debian's pg_createcluster, and pgBadger (its README's recommended prefixes, its RDS format
// "%t:%r:%u@%d:[%p]:" and its Cloud SQL test log, whose lines read "[%p]: [%l-1] db=%d,user=%u").
var DetectPrefixes = []string{
	// Debian and Ubuntu packages (pg_createcluster); the example in PostgreSQL's documentation.
	"%m [%p] %q%u@%d ",
	"%m [%p] %q%u@%d/%a ",
	// PostgreSQL's default since 10, and the same with seconds.
	"%m [%p] ",
	"%t [%p] ",
	// Amazon RDS and Aurora; Google Cloud SQL; Azure Database for PostgreSQL.
	"%t:%r:%u@%d:[%p]:",
	"%m [%p]: [%l-1] db=%d,user=%u ",
	"%t-%c-",
	// pgBadger's recommendations, then its older ones.
	"%t [%p]: user=%u,db=%d,app=%a,client=%h ",
	"%t [%p]: db=%d,user=%u,app=%a,client=%h ",
	"%t [%p]: ",
	"%t [%p]: [%l-1] user=%u,db=%d,app=%a,client=%h ",
	"%t [%p]: [%l-1] ",
	// Seen in the wild.
	"%m [%p-%l] %q%u@%d ",
	"%m %c ",
	"%t %c ",
}
