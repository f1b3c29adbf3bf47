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
	"runtime"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/pgpollwatch/pgpollwatch/analyzer"
	"github.com/pgpollwatch/pgpollwatch/metrics"
	"github.com/pgpollwatch/pgpollwatch/proxy"
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

	watches     watchList
	maxKeys     int
	stormQPS    float64
	stormWindow time.Duration
	logInterval time.Duration
	analyze     bool
	metrics     string
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
	fs.BoolVar(&o.noTUI, "no-tui", false, "run headless, logging to stderr (currently the only mode)")
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
	fs.IntVar(&o.maxKeys, "max-keys", 100_000, "watched keys tracked at once; the lightest are forgotten first, the heaviest stay exact")
	fs.Float64Var(&o.stormQPS, "storm-qps", 10, "polls per second of one key at or above which it storms")
	fs.DurationVar(&o.stormWindow, "storm-window", 5*time.Second, "how long the storm rate must hold to start a storm, and stay below to end it")
	fs.StringVar(&o.metrics, "metrics-listen", "", "serve Prometheus /metrics and /healthz on this `address` (e.g. 127.0.0.1:9187)")
	fs.BoolVar(&o.analyze, "analyze", true, "analyse the traffic; --analyze=false forwards only, to measure what analysis costs (scripts/bench)")
	fs.DurationVar(&o.logInterval, "log-interval", 10*time.Second, "headless: how often to log the headline numbers")
	fs.IntVar(&o.procs, "procs", 1, "how many threads run the proxy's Go code at once (GOMAXPROCS, unless that is set in the\nenvironment). 1, like PgBouncer's single event loop, costs the least CPU per query; raise it\nonly if the proxy saturates one core")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a Go CPU profile to `file` until exit (for performance work)")
	fs.Usage = func() {
		out := fs.Output()
		fmt.Fprint(out, `pgpollwatch: a diagnostic PostgreSQL proxy that finds polling storms.

Point your application's DSN at the proxy instead of at PostgreSQL; every connection is forwarded
1:1 to the upstream server, and every statement is watched.

Usage:
  pgpollwatch [flags]          run the proxy
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
	log, err := newLogger(os.Stderr, o.logLevel, o.logFormat)
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
	if err := serveProxy(o, log); err != nil {
		log.Error(err.Error())
		return 1
	}
	return 0
}

func serveProxy(o proxyOptions, log *slog.Logger) error {
	up, err := proxy.ParseUpstream(o.upstream)
	if err != nil {
		return err
	}
	tlsConf, err := loadTLS(o.tlsCert, o.tlsKey)
	if err != nil {
		return err
	}
	an := analyzer.New(analyzer.Config{
		Watches:     append(append([]analyzer.Watch(nil), analyzer.Presets...), o.watches...),
		MaxKeys:     o.maxKeys,
		StormQPS:    o.stormQPS,
		StormWindow: o.stormWindow,
		OnNotice:    func(n analyzer.Notice) { logNotice(log, n) },
	})
	ctx, stopAnalysis := context.WithCancel(context.Background())
	defer stopAnalysis()
	go an.Run(ctx)
	go logHeadlines(ctx, log, an, o.logInterval)

	if o.metrics != "" {
		mln, err := net.Listen("tcp", o.metrics)
		if err != nil {
			return fmt.Errorf("--metrics-listen: %w", err)
		}
		msrv := &http.Server{Handler: metrics.Handler(an), ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = msrv.Serve(mln) }()
		defer msrv.Close()
		log.Info("serving metrics", "addr", "http://"+mln.Addr().String()+"/metrics")
	}
	var observer proxy.Observer = an
	if !o.analyze {
		observer = proxy.NopObserver{}
	}
	srv, err := proxy.NewServer(proxy.Config{
		Upstream:       up,
		TLS:            tlsConf,
		Observer:       observer,
		Logger:         log,
		MaxConnections: o.maxConnections,
		MaxMessageSize: int(o.maxMessageSize),
		StartupTimeout: o.startupTimeout,
		ConnectTimeout: o.connectTimeout,
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return fmt.Errorf("cannot listen: %w", err)
	}
	if tlsConf == nil && !isLoopback(ln.Addr()) {
		log.Warn("listening on a non-loopback address without TLS: clients' passwords and data cross the network in clear; give --tls-cert and --tls-key")
	}
	log.Info("pgpollwatch listening", "listen", ln.Addr().String(), "upstream", up.String(), "version", version())

	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	select {
	case err := <-served:
		srv.Close()
		return err
	case sig := <-sigs:
		log.Info("shutting down: no new connections; open sessions may finish", "signal", sig.String(), "grace", o.shutdownGrace, "open", srv.ActiveConnections())
	}
	graceCtx, cancel := context.WithTimeout(ctx, o.shutdownGrace)
	defer cancel()
	go func() { // a second signal skips the grace period
		select {
		case <-sigs:
			cancel()
		case <-graceCtx.Done():
		}
	}()
	if err := srv.Shutdown(graceCtx); err != nil {
		log.Info("grace period over: remaining sessions closed")
	}
	<-served
	log.Info("stopped")
	return nil
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
