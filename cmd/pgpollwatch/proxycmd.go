package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pgpollwatch/pgpollwatch/analyzer"
	"github.com/pgpollwatch/pgpollwatch/coalesce"
	"github.com/pgpollwatch/pgpollwatch/metrics"
	"github.com/pgpollwatch/pgpollwatch/proxy"
	"github.com/pgpollwatch/pgpollwatch/report"
	"github.com/pgpollwatch/pgpollwatch/tui"
)

// proxyOptions are the flags of the proxy itself.
type proxyOptions struct {
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

// watchList is the repeatable --watch flag.
type watchList []analyzer.Watch

func (w *watchList) String() string {
	var names []string
	for _, x := range *w {
		names = append(names, x.Name())
	}
	return strings.Join(names, ",")
}

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
	fs.BoolVar(&o.reportLiterals, "report-literals", false, "keep one example of each statement as sent, literals included, in reports (off: reports hold\nno literal but the watched keys; see SECURITY.md)")
	fs.IntVar(&o.maxKeys, "max-keys", 100_000, "watched keys tracked at once; the lightest are forgotten first, the heaviest stay exact")
	fs.Float64Var(&o.stormQPS, "storm-qps", 10, "polls per second of one key at or above which it storms")
	fs.Float64Var(&o.sweepQPS, "sweep-qps", 100, "watched polls per second, over two keys or more, at or above which one client (address,\nuser, database, application_name) storms as a poller: a loop over a large group polls each\nkey seldom, yet may never wait")
	fs.DurationVar(&o.stormWindow, "storm-window", 5*time.Second, "how long the storm rate must hold to start a storm, and stay below to end it")
	fs.StringVar(&o.metrics, "metrics-listen", "", "serve Prometheus /metrics and /healthz on this `address` (e.g. 127.0.0.1:9187)")
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
  pgpollwatch analyze FILE...  the same diagnosis from PostgreSQL's own log, no proxy (see analyze -h)
  pgpollwatch demo             see it find a Celery spin loop, with a throwaway PostgreSQL
  pgpollwatch storm [flags]    generate Celery-like polling traffic (see storm -h)
  pgpollwatch report ...       convert or merge saved reports (see report -h)
  pgpollwatch version          print the version

Example:
  pgpollwatch --listen 127.0.0.1:6543 --upstream 'postgres://db.internal:5432/app?sslmode=require'
  psql 'postgres://app@127.0.0.1:6543/app'

Flags:
`)
		fs.PrintDefaults()
	}
	return fs
}

func runProxy(args []string) int {
	var o proxyOptions
	fs := proxyFlags(&o)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "pgpollwatch: unexpected argument %q (see --help)\n", fs.Arg(0))
		return 2
	}
	// The TUI owns the terminal: logs then go to --log-file, or nowhere.
	useTUI := !o.noTUI && isTerminal(os.Stdout) && isTerminal(os.Stdin)
	logOut := io.Writer(os.Stderr)
	if o.logFile != "" {
		f, err := os.OpenFile(o.logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			fmt.Fprintln(os.Stderr, "pgpollwatch: --log-file:", err)
			return 2
		}
		defer f.Close()
		logOut = f
	} else if useTUI {
		logOut = io.Discard
	}
	log, err := newLogger(logOut, o.logLevel, o.logFormat)
	if err != nil {
		fmt.Fprintln(os.Stderr, "pgpollwatch:", err)
		return 2
	}
	if os.Getenv("GOMAXPROCS") == "" && o.procs > 0 {
		// Measured with scripts/bench: with 2 threads the runtime wakes an idle thread for
		// nearly every readiness event, and those context switches cost more than the work.
		runtime.GOMAXPROCS(o.procs)
	}
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "pgpollwatch:", err)
			return 2
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "pgpollwatch:", err)
			return 2
		}
		defer pprof.StopCPUProfile()
	}
	if err := serveProxy(o, log, useTUI); err != nil {
		log.Error(err.Error())
		return 1
	}
	return 0
}

// app is a running proxy with its analyzer, and the ways it can be stopped and reported.
type app struct {
	o     proxyOptions
	log   *slog.Logger
	an    *analyzer.Analyzer
	cache *coalesce.Cache // nil: coalescing not available
	up    *proxy.Upstream
	srv   *proxy.Server
	ln    net.Listener

	reportMu sync.Mutex
}

func serveProxy(o proxyOptions, log *slog.Logger, useTUI bool) error {
	o.useTUI = useTUI
	a, err := newApp(o, log)
	if err != nil {
		return err
	}
	ctx, stopAnalysis := context.WithCancel(context.Background())
	defer stopAnalysis()
	go a.an.Run(ctx)
	if !useTUI {
		go logHeadlines(ctx, log, a.an, o.logInterval)
	}
	if o.metrics != "" {
		mln, err := net.Listen("tcp", o.metrics)
		if err != nil {
			return fmt.Errorf("--metrics-listen: %w", err)
		}
		msrv := &http.Server{Handler: metrics.Handler(a.an), ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = msrv.Serve(mln) }()
		defer msrv.Close()
		log.Info("serving metrics", "addr", "http://"+mln.Addr().String()+"/metrics")
	}

	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	defer signal.Stop(usr1)
	go func() {
		for range usr1 {
			a.report("SIGUSR1")
		}
	}()

	served := make(chan error, 1)
	go func() { served <- a.srv.Serve(a.ln) }()
	stopAlongside := func() {}
	if o.alongside != nil {
		actx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); o.alongside(actx, a.ln.Addr().String()) }()
		stopAlongside = func() { cancel(); <-done }
		defer stopAlongside()
	}
	var timeUp <-chan time.Time
	if o.stopAfter > 0 {
		t := time.NewTimer(o.stopAfter)
		defer t.Stop()
		timeUp = t.C
	}

	stopped := make(chan string, 1)
	if useTUI {
		tctx, stopTUI := context.WithCancel(ctx)
		defer stopTUI()
		go func() {
			select {
			case sig := <-sigs:
				stopped <- sig.String()
				stopTUI()
			case <-timeUp:
				stopped <- "time up"
				stopTUI()
			case <-tctx.Done():
			}
		}()
		err := tui.Run(tctx, tui.Options{
			Source: a.an, Listen: a.ln.Addr().String(), Upstream: a.up.String(),
			Refresh: o.refresh, Export: a.exportForTUI, Coalesce: a.toggleCoalesce(),
		})
		stopTUI() // and its signal watcher, so a ctrl-c now reaches the shutdown below
		if err != nil {
			log.Error("terminal UI failed", "err", err)
		}
		if n := a.srv.ActiveConnections(); n > 0 {
			// The screen is the user's again: say why the prompt does not come back at once.
			fmt.Fprintf(os.Stderr, "pgpollwatch: waiting up to %s for %d open session(s) to finish; ctrl-c closes them now\n", o.shutdownGrace, n)
		}
		select {
		case stopped <- "quit":
		default: // a signal ended the TUI and said so already
		}
	} else {
		select {
		case err := <-served:
			a.srv.Close()
			return err
		case sig := <-sigs:
			stopped <- sig.String()
		case <-timeUp:
			stopped <- "time up"
		}
	}
	why := <-stopped
	stopAlongside() // its sessions end now, so the drain below does not wait for them
	a.shutdown(ctx, why, sigs)
	<-served
	a.report("exit")
	log.Info("stopped")
	return nil
}

func newApp(o proxyOptions, log *slog.Logger) (*app, error) {
	switch {
	case o.reuseIdleTimeout <= 0:
		return nil, errors.New("--reuse-idle-timeout must be positive")
	case o.reuseMaxAge <= 0:
		return nil, errors.New("--reuse-max-age must be positive")
	case o.reuseMaxIdle <= 0:
		return nil, errors.New("--reuse-max-idle must be positive (leave out --reuse-server-connections to keep none)")
	case !(o.stormQPS > 0):
		return nil, errors.New("--storm-qps must be positive")
	case !(o.sweepQPS > 0):
		return nil, errors.New("--sweep-qps must be positive")
	}
	up, err := proxy.ParseUpstream(o.upstream)
	if err != nil {
		return nil, err
	}
	tlsConf, err := loadTLS(o.tlsCert, o.tlsKey)
	if err != nil {
		return nil, err
	}
	if o.report != "" {
		if err := checkReportPath(o.report); err != nil {
			return nil, fmt.Errorf("--report: %w", err)
		}
	}
	a := &app{o: o, log: log, up: up}
	watches := append(append([]analyzer.Watch(nil), analyzer.Presets...), o.watches...)
	a.an = analyzer.New(analyzer.Config{
		Watches:        watches,
		ReportLiterals: o.reportLiterals,
		MaxKeys:        o.maxKeys,
		StormQPS:       o.stormQPS,
		SweepQPS:       o.sweepQPS,
		StormWindow:    o.stormWindow,
		OnNotice:       func(n analyzer.Notice) { logNotice(log, n) },
	})
	var observer proxy.Observer = a.an
	if !o.analyze {
		observer = proxy.NopObserver{}
	}
	var cache proxy.Cache // a nil interface, not a nil *coalesce.Cache: no coalescing work at all
	if a.cache, err = newCache(o, watches, a.an); err != nil {
		return nil, err
	} else if a.cache != nil {
		cache = a.cache
	}
	a.srv, err = proxy.NewServer(proxy.Config{
		Upstream:       up,
		TLS:            tlsConf,
		Observer:       observer,
		Cache:          cache,
		Logger:         log,
		MaxConnections: o.maxConnections,
		MaxMessageSize: int(o.maxMessageSize),
		StartupTimeout: o.startupTimeout,
		ConnectTimeout: o.connectTimeout,

		ReuseServerConnections: o.reuse,
		ReuseIdleTimeout:       o.reuseIdleTimeout,
		ReuseMaxAge:            o.reuseMaxAge,
		ReuseMaxIdle:           o.reuseMaxIdle,
	})
	if err != nil {
		return nil, err
	}
	if o.reuse { // the counters join the snapshot, as the cache's do, and so reach every view
		srv := a.srv
		a.an.SetReuseStats(func() analyzer.ReuseStats {
			r := srv.ReuseStats()
			return analyzer.ReuseStats{Reused: r.Reused, Kept: r.Kept, Discarded: r.Discarded, Idle: r.Idle}
		})
	}
	a.ln, err = proxy.Listen(o.listen)
	if err != nil {
		return nil, fmt.Errorf("cannot listen: %w", err)
	}
	if tlsConf == nil && !isLoopback(a.ln.Addr()) {
		log.Warn("listening on a non-loopback address without TLS: clients' passwords and data cross the network in clear; give --tls-cert and --tls-key")
	}
	log.Info("pgpollwatch listening", "listen", a.ln.Addr().String(), "upstream", up.String(), "version", version())
	return a, nil
}

// newCache makes the coalescing cache when it may be used: --coalesce, or the TUI (whose c key
// starts it). Headless without --coalesce the sessions do no coalescing work at all.
func newCache(o proxyOptions, watches []analyzer.Watch, an *analyzer.Analyzer) (*coalesce.Cache, error) {
	var scope proxy.CacheScope
	switch o.coalesceScope {
	case "read-committed":
		scope = proxy.ScopeReadCommitted
	case "idle":
		scope = proxy.ScopeIdle
	default:
		return nil, fmt.Errorf("--coalesce-scope: %q is not read-committed or idle", o.coalesceScope)
	}
	if o.coalesceTTL <= 0 {
		return nil, errors.New("--coalesce-ttl must be positive")
	}
	if !o.coalesce && !o.useTUI {
		return nil, nil
	}
	c := coalesce.New(coalesce.Config{
		TTL: o.coalesceTTL, MaxEntries: o.coalesceMaxEntries, MaxBytes: int64(o.coalesceMaxBytes),
		Scope: scope, Watches: watches, Enabled: o.coalesce,
	})
	an.SetCoalesceStats(c.Stats)
	return c, nil
}

// shutdown stops accepting and lets sessions finish for the grace period; a second signal
// skips the wait.
func (a *app) shutdown(ctx context.Context, why string, sigs <-chan os.Signal) {
	a.log.Info("shutting down: no new connections; open sessions may finish", "why", why, "grace", a.o.shutdownGrace, "open", a.srv.ActiveConnections())
	graceCtx, cancel := context.WithTimeout(ctx, a.o.shutdownGrace)
	defer cancel()
	go func() {
		select {
		case <-sigs:
			cancel()
		case <-graceCtx.Done():
		}
	}()
	if err := a.srv.Shutdown(graceCtx); err != nil {
		a.log.Info("grace period over: remaining sessions closed")
	}
}

// report writes --report, if given; why says what asked for it.
func (a *app) report(why string) {
	if a.o.report == "" {
		if why == "SIGUSR1" {
			a.log.Warn("SIGUSR1: no report written: start with --report FILE (.json, .html or .md)")
		}
		return
	}
	if _, err := a.writeReport(); err != nil {
		a.log.Error("writing the report failed", "file", a.o.report, "err", err)
		return
	}
	a.log.Info("report written", "file", a.o.report, "why", why)
}

func (a *app) writeReport() (string, error) {
	a.reportMu.Lock()
	defer a.reportMu.Unlock()
	host, _ := os.Hostname()
	r := report.FromSnapshot(a.an.Snapshot(), report.Source{
		Listen: a.ln.Addr().String(), Upstream: a.up.String(), Host: host, Version: version(),
	})
	return a.o.report, report.Write(a.o.report, r)
}

// toggleCoalesce is the TUI's c key; nil when there is no cache.
func (a *app) toggleCoalesce() func() (bool, error) {
	if a.cache == nil {
		return nil
	}
	return func() (bool, error) {
		on, err := a.cache.Toggle()
		a.log.Info("coalescing switched", "on", on, "ttl", a.cache.TTL())
		return on, err
	}
}

// exportForTUI is the TUI's e key.
func (a *app) exportForTUI() (string, error) {
	if a.o.report == "" {
		return "", errors.New("no report file: start pgpollwatch with --report FILE (.json, .html or .md)")
	}
	return a.writeReport()
}

func loadTLS(certFile, keyFile string) (*tls.Config, error) {
	if certFile == "" && keyFile == "" {
		return nil, nil
	}
	if certFile == "" || keyFile == "" {
		return nil, errors.New("--tls-cert and --tls-key go together")
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("loading TLS certificate: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

func isLoopback(a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch strings.ToLower(format) {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format: %q is not text or json", format)
}
