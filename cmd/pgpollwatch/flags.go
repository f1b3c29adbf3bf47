package main

// The proxy's flags: what they are, their defaults and help, and the checks that can be made
// before anything starts.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pgpollwatch/pgpollwatch/analyzer"
)

// proxyOptions are the flags of the proxy itself.
type proxyOptions struct {
	args           []string // the command line, read again on SIGHUP
	config         string
	listen         string
	upstream       string
	noTUI          bool
	shutdownGrace  time.Duration
	tlsCert        string
	tlsKey         string
	maxConnections int
	maxMessageSize byteSize
	startupTimeout time.Duration
	connectTimeout time.Duration
	logLevel       string
	logFormat      string
	cpuProfile     string
	procs          int

	watches        watchList
	watchQueues    queueList
	reportLiterals bool
	maxKeys        int
	stormQPS       float64
	sweepQPS       float64
	stormWindow    time.Duration
	logInterval    time.Duration
	analyze        bool
	metrics        string
	report         string
	refresh        time.Duration
	logFile        string

	coalesce           bool
	coalesceTTL        time.Duration
	coalesceMaxEntries int
	coalesceMaxBytes   byteSize
	coalesceScope      string
	useTUI             bool // set by runProxy: with the TUI the cache is wired (off) so c can start it

	reuse            bool
	reuseIdleTimeout time.Duration
	reuseMaxAge      time.Duration
	reuseMaxIdle     int

	// Set by the demo, not by flags: run alongside the proxy once it listens (ctx ends when
	// the proxy starts shutting down), and stop by itself after a while.
	alongside func(ctx context.Context, proxyAddr string)
	stopAfter time.Duration
	// Set by check, not by flags: snapshots keep the findings that held earlier in the run.
	keepFindings bool
}

// check refuses values no flag parser can: limits that must be positive.
func (o *proxyOptions) check() error {
	switch {
	case o.reuseIdleTimeout <= 0:
		return errors.New("--reuse-idle-timeout must be positive")
	case o.reuseMaxAge <= 0:
		return errors.New("--reuse-max-age must be positive")
	case o.reuseMaxIdle <= 0:
		return errors.New("--reuse-max-idle must be positive (leave out --reuse-server-connections to keep none)")
	case !(o.stormQPS > 0):
		return errors.New("--storm-qps must be positive")
	case !(o.sweepQPS > 0):
		return errors.New("--sweep-qps must be positive")
	}
	return nil
}

// checkReportPath refuses a report file whose format cannot be told from its extension, before
// the proxy runs for hours and fails at exit.
func checkReportPath(path string) error {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".json", ".html", ".htm", ".md", ".markdown":
		return nil
	}
	return fmt.Errorf("%q: the format follows the extension: .json, .html or .md", path)
}

// isTerminal reports whether f is a character device (a terminal), not a pipe or file.
func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// queueHelp is --watch-queue's help, the same for every command.
const queueHelp = "also count polls of a job queue kept in `[SCHEMA.]TABLE`; repeatable. The queues of Oban, solid_queue,\n" +
	"good_job, que, delayed_job, pg-boss, graphile-worker, River, Procrastinate, Hangfire and Django-Q are\nalways recognised"

// queueList is the repeatable --watch-queue flag.
type queueList []analyzer.Queue

func (q *queueList) String() string {
	var names []string
	for _, x := range *q {
		names = append(names, x.Name)
	}
	return strings.Join(names, ",")
}

// Repeatable marks --watch-queue as taking several values, as --watch.
func (q *queueList) Repeatable() {}

func (q *queueList) Set(s string) error {
	x, err := analyzer.ParseQueue(s)
	if err != nil {
		return err
	}
	*q = append(*q, x)
	return nil
}

// queues are the presets and the queues the user named.
func (q queueList) queues() []analyzer.Queue {
	return append(append([]analyzer.Queue(nil), analyzer.QueuePresets...), q...)
}

// watchList is the repeatable --watch flag.
type watchList []analyzer.Watch

func (w *watchList) String() string {
	var names []string
	for _, x := range *w {
		names = append(names, x.Name())
	}
	return strings.Join(names, ",")
}

// Repeatable marks --watch as taking several values: a comma-separated list from the
// environment, an array from a configuration file.
func (w *watchList) Repeatable() {}

func (w *watchList) Set(s string) error {
	x, err := analyzer.ParseWatch(s)
	if err != nil {
		return err
	}
	*w = append(*w, x)
	return nil
}

func proxyFlags(o *proxyOptions) *flag.FlagSet {
	fs := flag.NewFlagSet("pgpollwatch", flag.ContinueOnError)
	fs.StringVar(&o.config, "config", "", "read the settings not given as flags from this TOML `file` (keys are the flags' names:\nstorm-qps = 20); PGPOLLWATCH_<FLAG> environment variables come before it. SIGHUP reads it again")
	fs.StringVar(&o.listen, "listen", "127.0.0.1:6543", "`address` to accept PostgreSQL clients on (loopback by default; give TLS settings before exposing it)")
	fs.StringVar(&o.upstream, "upstream", "", "the real server as a libpq `DSN` (postgres://host:5432/db?sslmode=prefer or 'host=... port=...');\nempty means the PG* environment variables and libpq defaults. Its host, port and sslmode are used;\nuser, password and database come from each client, which authenticates itself")
	fs.BoolVar(&o.noTUI, "no-tui", false, "run headless, logging to stderr (the default when stdout is not a terminal)")
	fs.StringVar(&o.report, "report", "", "write a report to `file` on exit, on SIGUSR1 and on e in the TUI; the format\nfollows the extension: .json, .html or .md")
	fs.DurationVar(&o.refresh, "refresh", 250*time.Millisecond, "how often the TUI redraws")
	fs.StringVar(&o.logFile, "log-file", "", "write logs to `file` (with the TUI, logs are otherwise dropped)")
	fs.DurationVar(&o.shutdownGrace, "shutdown-grace", 10*time.Second, "on SIGINT/SIGTERM, how long open sessions may finish before they are closed")
	fs.StringVar(&o.tlsCert, "tls-cert", "", "PEM `file` with the certificate to offer clients that ask for TLS (with --tls-key)")
	fs.StringVar(&o.tlsKey, "tls-key", "", "PEM `file` with the private key for --tls-cert")
	fs.IntVar(&o.maxConnections, "max-connections", 5000, "concurrent client connections; beyond it clients get SQLSTATE 53300 (0: no limit)")
	o.maxMessageSize = 1<<30 - 1
	fs.Var(&o.maxMessageSize, "max-message-size", "largest message a client may send, e.g. 64MB (default PostgreSQL's own limit, 1GB)")
	fs.DurationVar(&o.startupTimeout, "startup-timeout", 10*time.Second, "how long a client may take to send its startup packet")
	fs.DurationVar(&o.connectTimeout, "connect-timeout", 10*time.Second, "how long to try reaching the upstream before the client gets SQLSTATE 08006")
	fs.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&o.logFormat, "log-format", "text", "text or json")
	fs.Var(&o.watches, "watch", "also watch lookups by `TABLE.COLUMN` (or SCHEMA.TABLE.COLUMN); repeatable. Celery's and\ndjango-celery-results' result tables are always watched")
	fs.Var(&o.watchQueues, "watch-queue", queueHelp)
	fs.BoolVar(&o.reportLiterals, "report-literals", false, "keep one example of each statement as sent, literals included, in reports (off: reports hold\nno literal but the watched keys; see SECURITY.md)")
	fs.IntVar(&o.maxKeys, "max-keys", 100_000, "watched keys tracked at once; the lightest are forgotten first, the heaviest stay exact")
	fs.Float64Var(&o.stormQPS, "storm-qps", 10, "polls per second of one key at or above which it storms")
	fs.Float64Var(&o.sweepQPS, "sweep-qps", 100, "watched polls per second, over two keys or more, at or above which one client (address,\nuser, database, application_name) storms as a poller: a loop over a large group polls each\nkey seldom, yet may never wait")
	fs.DurationVar(&o.stormWindow, "storm-window", 5*time.Second, "how long the storm rate must hold to start a storm, and stay below to end it")
	fs.StringVar(&o.metrics, "metrics-listen", "", "serve Prometheus /metrics, /healthz (the proxy runs) and /readyz (a PostgreSQL server answers\nat the upstream within --connect-timeout; 503 with the reason when not) on this `address`\n(e.g. 127.0.0.1:9187)")
	fs.BoolVar(&o.analyze, "analyze", true, "analyse the traffic; --analyze=false forwards only, to measure what analysis costs (scripts/bench)")
	fs.DurationVar(&o.logInterval, "log-interval", 10*time.Second, "headless: how often to log the headline numbers")
	fs.BoolVar(&o.coalesce, "coalesce", false, "answer repeated watched reads (Celery's task polls, --watch lookups) from a short-TTL cache,\nso the database gets relief while the polling is fixed; never older than the last committed\nwrite through the proxy nor than --coalesce-ttl (see README). In the TUI, c switches it")
	fs.DurationVar(&o.coalesceTTL, "coalesce-ttl", 500*time.Millisecond, "how long a cached answer may be served")
	fs.IntVar(&o.coalesceMaxEntries, "coalesce-max-entries", 10_000, "cached answers kept at most (least recently used go first)")
	o.coalesceMaxBytes = 64 << 20
	fs.Var(&o.coalesceMaxBytes, "coalesce-max-bytes", "memory for cached answers, e.g. 256MB; one answer may use a sixteenth")
	fs.StringVar(&o.coalesceScope, "coalesce-scope", "read-committed", "where cached answers may be served: read-committed (idle sessions, and transactions that so far\nran only BEGIN and eligible reads, as SQLAlchemy wraps each poll; assumes the database's default\nisolation is read committed) or idle (only outside transaction blocks)")
	fs.BoolVar(&o.reuse, "reuse-server-connections", false, "when a client leaves cleanly, reset its server connection (DISCARD ALL) and give it to the next\nclient with the same startup packet, as PgBouncer's session mode does: relief for programs that\nconnect once per poll. Only for server connections that asked no password (trust); see README")
	fs.DurationVar(&o.reuseIdleTimeout, "reuse-idle-timeout", 60*time.Second, "close a kept server connection nobody took for this long")
	fs.DurationVar(&o.reuseMaxAge, "reuse-max-age", 10*time.Minute, "do not keep a server connection older than this (ALTER ROLE/DATABASE ... SET reach every\nclient within it)")
	fs.IntVar(&o.reuseMaxIdle, "reuse-max-idle", 100, "server connections kept at once, at most")
	fs.IntVar(&o.procs, "procs", 1, "how many threads run the proxy's Go code at once (GOMAXPROCS, unless that is set in the\nenvironment). 1, like PgBouncer's single event loop, costs the least CPU per query; raise it\nonly if the proxy saturates one core")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a Go CPU profile to `file` until exit (for performance work)")
	fs.Usage = func() {
		out := fs.Output()
		fmt.Fprint(out, `pgpollwatch: a diagnostic PostgreSQL proxy that finds polling storms.

Point your application's DSN at the proxy instead of at PostgreSQL; every connection is forwarded
1:1 to the upstream server, and every statement is watched.

Usage:
  pgpollwatch [flags]          run the proxy
  pgpollwatch analyze FILE...  the same diagnosis from PostgreSQL's own log or a packet capture
                               (pcap, pcapng), no proxy (see analyze -h)
  pgpollwatch watch --interface IFACE
                               the same diagnosis live from a network interface (see watch -h)
  pgpollwatch check [flags] -- COMMAND ARGS...
                               a CI gate: run a command (a test suite) through the proxy and
                               fail when it spins, storms or churns (see check -h)
  pgpollwatch demo             see it find a Celery spin loop, with a throwaway PostgreSQL
  pgpollwatch storm [flags]    generate Celery-like polling traffic (see storm -h)
  pgpollwatch config [flags]   print the effective configuration (flags, PGPOLLWATCH_* variables,
                               --config file) and where each value came from
  pgpollwatch report ...       convert or merge saved reports (see report -h)
  pgpollwatch version [--json] print the version, commit and Go version

Example:
  pgpollwatch --listen 127.0.0.1:6543 --upstream 'postgres://db.internal:5432/app?sslmode=require'
  psql 'postgres://app@127.0.0.1:6543/app'

Flags:
`)
		fs.PrintDefaults()
	}
	return fs
}
