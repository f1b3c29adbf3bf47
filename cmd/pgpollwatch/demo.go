package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/pgpollwatch/pgpollwatch/internal/pgcluster"
	"github.com/pgpollwatch/pgpollwatch/internal/storm"
)

// runDemo starts a throwaway PostgreSQL with Celery's result tables, the proxy in front of it,
// and the storm generator through the proxy: a parent spin-waiting on ten subtasks among
// ordinary traffic, the incident this tool comes from. Everything it starts is removed at the
// end, also on ctrl-c and on errors.
func runDemo(args []string) int {
	fs := flag.NewFlagSet("pgpollwatch demo", flag.ContinueOnError)
	duration := fs.Duration("duration", 0, "stop after this long (default: until q or ctrl-c; headless: 30s)")
	reportPath := fs.String("report", "", "write a report to `file` (.json, .html or .md) at the end, and on e in the TUI")
	noTUI := fs.Bool("no-tui", false, "run headless, logging to stderr (the default when stdout is not a terminal)")
	tasks := fs.Int("tasks", 10, "subtasks the parent waits on")
	pattern := fs.String("pattern", storm.PatternSpin, "how the parent waits: spin, interval or celery-get")
	coalesce := fs.Bool("coalesce", false, "answer the polls from the cache from the start (in the TUI, c switches it)")
	serverLog := fs.String("server-log", "", "also have the server log every statement and session, and copy its log to `file` at the\nend: then try `pgpollwatch analyze FILE`, the same diagnosis with no proxy in the path")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `pgpollwatch demo: see a polling storm found, with nothing but PostgreSQL's binaries.

It starts a throwaway PostgreSQL, creates Celery's result tables, starts pgpollwatch in front of
it, and runs a Celery-like parent task that spin-waits on its subtasks through the proxy, among
ordinary traffic. Watch the storm appear; press c to let the proxy answer the polls from its
cache and watch the server's load fall, e to export a report, q to leave. Everything it started
is stopped and removed when it ends.

Usage:
  pgpollwatch demo [flags]

Examples:
  pgpollwatch demo
  pgpollwatch demo --duration 20s --report demo.json     # headless, for scripts and CI
  pgpollwatch demo --coalesce --duration 20s --report demo.md  # the same, answered from the cache
  pgpollwatch demo --duration 20s --server-log demo.log && pgpollwatch analyze demo.log

Flags:
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	useTUI := !*noTUI && isTerminal(os.Stdout) && isTerminal(os.Stdin)
	if !useTUI && *duration == 0 {
		*duration = 30 * time.Second
	}
	if *reportPath != "" {
		if err := checkReportPath(*reportPath); err != nil {
			fmt.Fprintln(os.Stderr, "pgpollwatch demo: --report:", err)
			return 2
		}
	}

	fmt.Fprintln(os.Stderr, "pgpollwatch demo: starting a throwaway PostgreSQL (initdb takes a few seconds)…")
	var opt pgcluster.Options
	if *serverLog != "" {
		opt.Conf = pgcluster.LogEverything // what the README asks of a server for analyze, and more
	}
	pg, err := pgcluster.StartWith(opt)
	if err != nil {
		if errors.Is(err, pgcluster.ErrNotInstalled) {
			fmt.Fprintf(os.Stderr, "pgpollwatch demo: PostgreSQL's server binaries are needed: %s\n", pgcluster.InstallCommand)
		} else {
			fmt.Fprintln(os.Stderr, "pgpollwatch demo: starting PostgreSQL:", err)
		}
		return 1
	}
	defer func() {
		if *serverLog != "" { // before its files go
			if err := copyServerLog(filepath.Join(pg.DataDir, "log", "postgresql.log"), *serverLog); err != nil {
				fmt.Fprintln(os.Stderr, "pgpollwatch demo: --server-log:", err)
			} else {
				fmt.Fprintf(os.Stderr, "pgpollwatch demo: the server's log is in %s: try pgpollwatch analyze %s\n", *serverLog, *serverLog)
			}
		}
		fmt.Fprintln(os.Stderr, "pgpollwatch demo: stopping PostgreSQL and removing its files")
		pg.Stop()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	err = storm.Setup(ctx, pg.ConnString(pgcluster.SuperUser, pgcluster.Database), storm.FlavourCelery)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "pgpollwatch demo: creating Celery's tables:", err)
		return 1
	}

	var o proxyOptions
	fs2 := proxyFlags(&o) // the proxy's own defaults
	_ = fs2.Parse(nil)
	o.listen = "127.0.0.1:0"
	o.upstream = fmt.Sprintf("host=127.0.0.1 port=%d sslmode=disable", pg.Port)
	o.noTUI = !useTUI
	o.report = *reportPath
	o.stopAfter = *duration
	o.coalesce = *coalesce
	var stats storm.Stats
	o.alongside = func(ctx context.Context, proxyAddr string) {
		host, port, _ := net.SplitHostPort(proxyAddr)
		dsn := fmt.Sprintf("host=%s port=%s user=%s password=%s dbname=%s sslmode=disable",
			host, port, pgcluster.SuperUser, pgcluster.Password, pgcluster.Database)
		stats, _ = storm.Run(ctx, storm.Config{
			DSN:             dsn,
			Tasks:           *tasks,
			Pattern:         *pattern,
			RoundPause:      10 * time.Millisecond, // a tight loop with a short sleep, as people write them
			Conn:            storm.ConnPersistent,
			Protocol:        storm.ProtocolSimple,
			Flavour:         storm.FlavourCelery,
			SubtaskDuration: storm.Dist{Min: 5 * time.Second, Max: 15 * time.Second},
			Background:      40,
		}, nil)
	}
	logOut := io.Writer(os.Stderr)
	if useTUI {
		logOut = io.Discard
	}
	log, err := newLogger(logOut, o.logLevel, o.logFormat)
	if err != nil {
		fmt.Fprintln(os.Stderr, "pgpollwatch demo:", err)
		return 1
	}
	if !useTUI {
		fmt.Fprintf(os.Stderr, "pgpollwatch demo: proxy running for %s; a parent task now waits on %d subtasks through it\n", *duration, *tasks)
	}
	if err := serveProxy(o, nil, log, useTUI); err != nil {
		fmt.Fprintln(os.Stderr, "pgpollwatch demo:", err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "pgpollwatch demo: the storm generator made %d polls (%.0f/s) and completed %d groups\n",
		stats.Polls, stats.PollsPerSecond(), stats.Groups)
	if *reportPath != "" {
		fmt.Fprintln(os.Stderr, "pgpollwatch demo: report written to", *reportPath)
	}
	return 0
}

// copyServerLog copies the server's log to dst once the demo is over.
func copyServerLog(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
