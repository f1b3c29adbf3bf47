package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/pgpollwatch/pgpollwatch/analyzer"
	"github.com/pgpollwatch/pgpollwatch/capture"
	"github.com/pgpollwatch/pgpollwatch/internal/cli"
	"github.com/pgpollwatch/pgpollwatch/pglog"
	"github.com/pgpollwatch/pgpollwatch/replay"
	"github.com/pgpollwatch/pgpollwatch/report"
	"github.com/pgpollwatch/pgpollwatch/tui"
)

// analyzeOptions are the flags of `pgpollwatch analyze`.
type analyzeOptions struct {
	log          pglog.Options
	since, until string
	timezone     string
	report       string
	tui          bool
	failOn       string
	analysis     analysisFlags
	jobs         int
	progress     string
	ports        portList
}

// Exit statuses of analyze (and of the other commands that judge traffic).
const (
	exitOK       = 0 // analysed; nothing at or above --fail-on
	exitFindings = 1 // a finding at or above --fail-on
	exitUsage    = 2 // usage error, or input that could not be read (whole or in part)
)

func analyzeFlags(o *analyzeOptions) *flag.FlagSet {
	fs := flag.NewFlagSet("pgpollwatch analyze", flag.ContinueOnError)
	fs.StringVar(&o.log.Prefix, "prefix", "", "the server's log_line_prefix exactly as in postgresql.conf (SHOW log_line_prefix), e.g.\n'%m [%p] %q%u@%d '; stderr logs only. Default: recognise the common ones (Debian's, PostgreSQL's\ndefault, RDS, Cloud SQL, Azure, pgBadger's)")
	fs.StringVar(&o.log.Format, "format", "", "stderr, csvlog or jsonlog (default: recognised per file)")
	fs.StringVar(&o.since, "since", "", "analyse only what the log has from this `time` on: RFC 3339 or '2026-12-06 10:00:00'\n(then in --timezone)")
	fs.StringVar(&o.until, "until", "", "analyse only what the log has before this `time`")
	fs.StringVar(&o.timezone, "timezone", "", "the server's log_timezone (e.g. Europe/Paris): for time stamps written with a zone\nabbreviation other than UTC, and for --since/--until without a zone (default UTC)")
	fs.StringVar(&o.log.Database, "dbname", "", "only sessions on this database")
	fs.StringVar(&o.log.User, "user", "", "only sessions of this user")
	fs.StringVar(&o.log.App, "app", "", "only sessions with this application_name")
	fs.IntVar(&o.log.ParamMaxLength, "param-max-length", 0, "the server's log_parameter_max_length: -1 never shortened, N a value of N characters then\n'...' was shortened; 0 (unknown) takes every value ending in '...' for a shortened one, which is\nnever counted as a key")
	fs.StringVar(&o.report, "report", "", "write the report to `file`; the format follows the extension: .json, .html or .md")
	fs.BoolVar(&o.tui, "tui", false, "open the live view's screens on the result (views, sorting, filter, detail); e exports --report")
	fs.StringVar(&o.failOn, "fail-on", "", "exit with status 1 when a finding has this severity or a higher one: high, medium or low\n(default: never)")
	o.analysis.register(fs)
	fs.IntVar(&o.jobs, "j", 1, "read with this many cores: the log is read and parsed beside the analysis when 2 or more")
	fs.Var(&o.ports, "port", "captures: the PostgreSQL server's TCP `port`; repeatable (default 5432). A server on another\nport is found too when the capture has a conversation's startup packet")
	fs.StringVar(&o.progress, "progress", "auto", "show a progress bar on standard error: auto (when it is a terminal), always or never")
	fs.Usage = func() {
		io.WriteString(fs.Output(), `pgpollwatch analyze: find polling storms in PostgreSQL's own log or in a packet capture, with
no proxy in the path.

It reads server logs and gives the same analysis as the live proxy: per-key polls and rates,
storms, spin verdicts, per-statement and per-client tables, connection churn, and findings with
their fixes. Without --report it prints the headline, the storms and the findings.

The server must log every statement: log_statement = 'all' or log_min_duration_statement = 0;
log_connections and log_disconnections give churn and per-client tables, %a or %h in
log_line_prefix give application names and hosts. A log holds no answers: whether a poll
returned anything new, and the last status, are "not in a log"; time to result comes from the
write that stored the result, when the log has it.

A packet capture (tcpdump -w, Wireshark, dumpcap: pcap or pcapng, gzipped or not) has both
directions, answers included: unchanged polls and statuses are known. Every PostgreSQL
conversation on --port is decoded; encrypted ones (TLS) are counted, not read. What the capture
lost (gaps, answers cut by the snap length) is counted and shown, never guessed.

Usage:
  pgpollwatch analyze [flags] FILE...     (- reads standard input: a log or a capture)

Files may be stderr logs (any log_line_prefix), csvlog or jsonlog, compressed with gzip, bzip2,
xz or zstd; rotated files are read in the order of their time stamps.

Examples:
  pgpollwatch analyze /var/log/postgresql/postgresql-15-main.log
  pgpollwatch analyze --report storm.html postgresql-*.csv.gz
  pgpollwatch analyze --prefix '%t:%r:%u@%d:[%p]:' --since '2026-12-06 10:00' rds.log
  pgpollwatch analyze --tui --dbname app postgresql.json
  zcat old.log.gz | pgpollwatch analyze --fail-on high -
  tcpdump -i eth0 -w storm.pcap 'tcp port 5432'    # then, after ctrl-c:
  pgpollwatch analyze --report storm.html storm.pcap
  sudo tcpdump -i eth0 -s 0 -U -w - 'tcp port 5432' | pgpollwatch analyze -

Exit status: 0 analysed, 1 a finding at or above --fail-on, 2 usage error or unreadable input
(the analysis of what could be read is still given).

Flags:
`)
		fs.PrintDefaults()
	}
	return fs
}

func runAnalyze(args []string) int { return analyzeCommand(args, os.Stdout, os.Stderr) }

// analyzeCommand is `pgpollwatch analyze args...`, writing to stdout and stderr.
func analyzeCommand(args []string, stdout, stderr io.Writer) int {
	var o analyzeOptions
	fs := analyzeFlags(&o)
	fs.SetOutput(stderr)
	files, err := cli.ParseInterspersed(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if len(files) == 0 {
		fmt.Fprintln(stderr, "pgpollwatch analyze: no log file given (see --help; - reads standard input)")
		return exitUsage
	}
	cfg, err := o.settle(files)
	if err != nil {
		fmt.Fprintln(stderr, "pgpollwatch analyze:", err)
		return exitUsage
	}
	// Standard input is looked at once, here, and what was read of it handed on.
	var stdin io.Reader = os.Stdin
	stdinCapture := false
	if slices.Contains(files, "-") {
		br := bufio.NewReaderSize(os.Stdin, capture.SniffLen)
		head, _ := br.Peek(capture.SniffLen)
		stdin, stdinCapture = br, capture.IsCapture(head)
	}
	if isCaptureFile(files[0]) || files[0] == "-" && stdinCapture {
		return analyzeCaptures(o, files, stdin, stdinCapture, cfg, stdout, stderr)
	}
	return analyzeLogs(o, files, stdin, cfg, stdout, stderr)
}

// settle checks the flags and fills what they imply: the time zone and bounds, and the
// analyzer's configuration.
func (o *analyzeOptions) settle(files []string) (analyzer.Config, error) {
	var cfg analyzer.Config
	switch {
	case o.jobs < 1:
		return cfg, errors.New("-j must be 1 or more")
	case o.log.ParamMaxLength < -1:
		return cfg, errors.New("--param-max-length is -1, 0 or a length")
	}
	if _, ok := severities[o.failOn]; !ok && o.failOn != "" {
		return cfg, fmt.Errorf("--fail-on: %q is not high, medium or low", o.failOn)
	}
	switch o.progress {
	case "auto", "always", "never":
	default:
		return cfg, fmt.Errorf("--progress: %q is not auto, always or never", o.progress)
	}
	if o.report != "" {
		if err := checkReportPath(o.report); err != nil {
			return cfg, fmt.Errorf("--report: %w", err)
		}
	}
	loc := time.UTC
	if o.timezone != "" {
		l, err := time.LoadLocation(o.timezone)
		if err != nil {
			return cfg, fmt.Errorf("--timezone: %w", err)
		}
		loc, o.log.Location = l, l
	}
	var err error
	if o.log.Since, err = parseWhen(o.since, loc); err != nil {
		return cfg, fmt.Errorf("--since: %w", err)
	}
	if o.log.Until, err = parseWhen(o.until, loc); err != nil {
		return cfg, fmt.Errorf("--until: %w", err)
	}
	if !o.log.Since.IsZero() && !o.log.Until.IsZero() && !o.log.Since.Before(o.log.Until) {
		return cfg, errors.New("--since must be before --until")
	}
	stdin := 0
	for _, f := range files {
		if f == "-" {
			stdin++
		}
	}
	if stdin > 1 {
		return cfg, errors.New("standard input (-) given twice")
	}
	return o.analysis.config()
}

// failOn reports whether a finding of rep is at or above the --fail-on severity, and says which
// on stderr; false when failOn is "".
func failOn(rep *report.Report, failOn, cmd string, stderr io.Writer) bool {
	if failOn == "" {
		return false
	}
	for _, f := range rep.Findings {
		if severities[f.Severity] >= severities[failOn] {
			fmt.Fprintf(stderr, "%s: --fail-on %s: %s finding: %s\n", cmd, failOn, f.Severity, f.Summary)
			return true
		}
	}
	return false
}

// severities ranks --fail-on's values.
var severities = map[string]int{"low": 1, "medium": 2, "high": 3}

// parseWhen reads a --since/--until time: RFC 3339, or a date with an optional time of day,
// in loc.
func parseWhen(s string, loc *time.Location) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02 15:04:05.999999999", "2006-01-02T15:04:05.999999999", "2006-01-02 15:04", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a time: give RFC 3339 (2026-12-06T10:00:00Z) or '2026-12-06 10:00:00'", s)
}

// analyzeLogs runs the analysis and says what it found; it returns the exit status.
func analyzeLogs(o analyzeOptions, files []string, stdin io.Reader, cfg analyzer.Config, stdout, stderr io.Writer) int {
	bar := newProgressBar(stderr, o.progress == "always" || o.progress == "auto" && isTerminalWriter(stderr))
	o.log.Progress = bar.update
	r, err := pglog.OpenStdin(files, o.log, stdin)
	if err != nil {
		fmt.Fprintln(stderr, "pgpollwatch analyze:", strings.TrimPrefix(err.Error(), "pglog: "))
		return exitUsage
	}
	defer r.Close()
	bar.count = func() int64 { return r.Stats().Lines }
	an, err := replay.RunParallel(r, cfg, o.jobs)
	bar.done()
	st := r.Stats()
	if err != nil && !st.Incomplete {
		st.Incomplete, st.Err = true, err
	}

	input := describeInput(st.Files)
	host, _ := os.Hostname()
	rep := report.FromSnapshot(an.Snapshot(), report.Source{Host: host, Version: version(), Input: input})
	rep.Log = logStats(st)

	status := exitOK
	if st.Incomplete {
		fmt.Fprintf(stderr, "pgpollwatch analyze: the log could not be read to its end: %v\n", st.Err)
		fmt.Fprintln(stderr, "pgpollwatch analyze: what follows is the analysis of what was read, marked incomplete")
		status = exitUsage
	}
	describeReading(stderr, st)
	return finishAnalysis(o, an, rep, input, status, stdout, stderr)
}

// finishAnalysis writes the report, opens the view or prints the findings, and gives the exit
// status: status, or exitFindings for a finding at or above --fail-on.
func finishAnalysis(o analyzeOptions, an *analyzer.Analyzer, rep *report.Report, input string, status int, stdout, stderr io.Writer) int {
	if o.report != "" {
		if err := report.Write(o.report, rep); err != nil {
			fmt.Fprintln(stderr, "pgpollwatch analyze: --report:", err)
			return exitUsage
		}
		fmt.Fprintf(stderr, "pgpollwatch analyze: report written to %s\n", o.report)
	}
	if o.tui {
		export := func() (string, error) {
			if o.report == "" {
				return "", errors.New("no report file: run analyze with --report FILE (.json, .html or .md)")
			}
			return o.report, report.Write(o.report, rep)
		}
		if err := tui.Run(context.Background(), tui.Options{Source: an, Input: input, Export: export}); err != nil {
			fmt.Fprintln(stderr, "pgpollwatch analyze: terminal UI failed:", err)
			return exitUsage
		}
	} else if o.report == "" {
		if err := report.WriteText(stdout, rep); err != nil {
			fmt.Fprintln(stderr, "pgpollwatch analyze:", err)
			return exitUsage
		}
	} else {
		fmt.Fprintln(stdout, rep.Headline)
	}
	if status == exitOK && failOn(rep, o.failOn, "pgpollwatch analyze", stderr) {
		status = exitFindings
	}
	return status
}

// describeInput names the files analysed, for headers and reports.
func describeInput(files []pglog.FileInfo) string {
	var names []string
	for i, f := range files {
		if i == 3 {
			names = append(names, fmt.Sprintf("and %d more", len(files)-3))
			break
		}
		name := f.Path
		if name == "-" {
			name = "standard input"
		} else {
			name = filepath.Base(name)
		}
		names = append(names, name)
	}
	return "server log: " + strings.Join(names, ", ")
}

// describeReading tells on stderr what was read, and what could not be.
func describeReading(w io.Writer, st pglog.Stats) {
	for _, f := range st.Files {
		kind := f.Format
		if f.Prefix != "" {
			kind += fmt.Sprintf(" with log_line_prefix %q", f.Prefix)
		}
		if f.Compression != "" {
			kind += ", " + f.Compression
		}
		fmt.Fprintf(w, "pgpollwatch analyze: %s: %s\n", f.Path, kind)
	}
	fmt.Fprintf(w, "pgpollwatch analyze: %d lines: %d statements, %d connections, %d disconnections", st.Lines, st.Statements, st.Connections, st.Disconnections)
	if st.Filtered > 0 {
		fmt.Fprintf(w, ", %d left out by --since/--until/--dbname/--user/--app", st.Filtered)
	}
	fmt.Fprintln(w)
	if st.Statements == 0 && st.Lines > 0 {
		fmt.Fprintln(w, "pgpollwatch analyze: no statement in the log: turn on log_statement = 'all' or log_min_duration_statement = 0 (see README)")
	}
	if st.BadLines > 0 {
		fmt.Fprintf(w, "pgpollwatch analyze: %d line(s) could not be read, for instance:\n", st.BadLines)
		for _, b := range st.BadExamples {
			fmt.Fprintf(w, "  %s:%d: %s\n", b.Path, b.Line, b.Text)
		}
	}
	if st.Unpaired > 0 {
		fmt.Fprintf(w, "pgpollwatch analyze: %d duration line(s) had no statement to pair with (it began before the log)\n", st.Unpaired)
	}
}

// logStats is what the report says about the log read.
func logStats(st pglog.Stats) *report.LogInput {
	l := &report.LogInput{Lines: st.Lines, Bytes: st.Bytes, Statements: st.Statements, Connections: st.Connections,
		Disconnections: st.Disconnections, Filtered: st.Filtered, Unpaired: st.Unpaired, BadLines: st.BadLines}
	for _, f := range st.Files {
		l.Files = append(l.Files, report.LogFile{Path: f.Path, Format: f.Format, Prefix: f.Prefix, Compression: f.Compression, Size: f.Size})
	}
	for _, b := range st.BadExamples {
		l.BadExamples = append(l.BadExamples, fmt.Sprintf("%s:%d: %s", b.Path, b.Line, b.Text))
	}
	if st.Incomplete {
		l.Incomplete = "read in part: " + st.Err.Error()
	}
	return l
}

// isTerminalWriter is isTerminal for an io.Writer that may not be a file.
func isTerminalWriter(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && isTerminal(f)
}
