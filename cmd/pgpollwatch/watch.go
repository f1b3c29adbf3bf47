package main

// pgpollwatch watch --interface: the live diagnosis from the traffic on a network interface,
// for a host where neither the application's DSN nor the server's log may be touched.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/pgpollwatch/pgpollwatch/analyzer"
	"github.com/pgpollwatch/pgpollwatch/capture"
	"github.com/pgpollwatch/pgpollwatch/internal/cli"
	"github.com/pgpollwatch/pgpollwatch/metrics"
	"github.com/pgpollwatch/pgpollwatch/report"
	"github.com/pgpollwatch/pgpollwatch/tui"
)

// watchOptions are the flags of `pgpollwatch watch`.
type watchOptions struct {
	iface       string
	ports       portList
	snapLen     int
	duration    time.Duration
	noTUI       bool
	report      string
	failOn      string
	logInterval time.Duration
	metrics     string
	logLevel    string
	logFormat   string
	analysis    analysisFlags
}

func watchFlags(o *watchOptions) *flag.FlagSet {
	fs := flag.NewFlagSet("pgpollwatch watch", flag.ContinueOnError)
	fs.StringVar(&o.iface, "interface", "", "capture on this network `interface` (eth0, lo, any); required")
	fs.Var(&o.ports, "port", "the PostgreSQL server's TCP `port`; repeatable (default 5432)")
	fs.IntVar(&o.snapLen, "snaplen", 0, "bytes kept of each packet (default 262144: every answer whole); a smaller one saves\nCPU, and answers cut by it are counted, their polls still are")
	fs.DurationVar(&o.duration, "duration", 0, "stop after this long (default: until ctrl-c or SIGTERM)")
	fs.BoolVar(&o.noTUI, "no-tui", false, "no terminal UI: log the headline every --log-interval (also when stdout is no terminal)")
	fs.StringVar(&o.report, "report", "", "write the report to `file` at the end (.json, .html or .md); e in the TUI writes it now")
	fs.StringVar(&o.failOn, "fail-on", "", "exit with status 1 when a finding has this severity or a higher one: high, medium or low")
	fs.StringVar(&o.metrics, "metrics-listen", "", "serve Prometheus /metrics and /healthz on this `address` (e.g. 127.0.0.1:9187), as the proxy does")
	fs.DurationVar(&o.logInterval, "log-interval", 10*time.Second, "headless: how often to log the headline")
	fs.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&o.logFormat, "log-format", "text", "text or json")
	o.analysis.register(fs)
	fs.Usage = func() {
		io.WriteString(fs.Output(), `pgpollwatch watch: the live diagnosis from the traffic on a network interface, with no proxy
in the path and nothing changed on the application or the server.

It captures the PostgreSQL conversations on --interface (both directions: statements and their
answers), and shows per-key polls and rates, storms, spin verdicts and whether polls return
anything new, in the terminal UI or, headless, in the log. Conversations in TLS are counted but
cannot be read; packets the kernel dropped are shown in the header and the report.

It needs the CAP_NET_RAW capability: run it as root, or grant it once with
  sudo setcap cap_net_raw+ep $(command -v pgpollwatch)
Linux only; elsewhere take a capture with tcpdump -w and run pgpollwatch analyze on it.

Usage:
  pgpollwatch watch --interface IFACE [--port 5432] [flags]

Examples:
  sudo pgpollwatch watch --interface eth0
  sudo pgpollwatch watch --interface lo --port 5432 --port 6432 --no-tui --duration 5m --report storm.html

Exit status: 0 done, 1 a finding at or above --fail-on, 2 usage error or no capture possible.

Flags:
`)
		fs.PrintDefaults()
	}
	return fs
}

func runWatch(args []string) int { return watchCommand(args, os.Stdout, os.Stderr) }

func watchCommand(args []string, stdout, stderr io.Writer) int {
	var o watchOptions
	fs := watchFlags(&o)
	fs.SetOutput(stderr)
	rest, err := cli.ParseInterspersed(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	switch {
	case len(rest) > 0:
		fmt.Fprintf(stderr, "pgpollwatch watch: unexpected argument %q (a capture file is read by pgpollwatch analyze)\n", rest[0])
		return exitUsage
	case o.iface == "":
		fmt.Fprintln(stderr, "pgpollwatch watch: --interface is required (see --help)")
		return exitUsage
	}
	cfg, err := o.analysis.config()
	if err != nil {
		fmt.Fprintln(stderr, "pgpollwatch watch:", err)
		return exitUsage
	}
	if _, ok := severities[o.failOn]; !ok && o.failOn != "" {
		fmt.Fprintf(stderr, "pgpollwatch watch: --fail-on: %q is not high, medium or low\n", o.failOn)
		return exitUsage
	}
	if o.report != "" {
		if err := checkReportPath(o.report); err != nil {
			fmt.Fprintln(stderr, "pgpollwatch watch: --report:", err)
			return exitUsage
		}
	}
	useTUI := !o.noTUI && isTerminalWriter(stdout) && isTerminal(os.Stdin)
	logOut, closeLog, err := logOutput("", useTUI)
	if err != nil {
		fmt.Fprintln(stderr, "pgpollwatch watch:", err)
		return exitUsage
	}
	defer closeLog()
	log, err := newLogger(logOut, o.logLevel, o.logFormat)
	if err != nil {
		fmt.Fprintln(stderr, "pgpollwatch watch:", err)
		return exitUsage
	}

	if len(o.ports) == 0 {
		o.ports = portList{5432}
	}
	live, err := capture.OpenLive(o.iface, o.ports, o.snapLen)
	if err != nil {
		fmt.Fprintln(stderr, "pgpollwatch watch:", err)
		return exitUsage
	}
	an := analyzer.New(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go an.Run(ctx)
	if o.metrics != "" {
		stopMetrics, err := serveHandler(o.metrics, metrics.Handler(an, nil), log) // no upstream to be ready for
		if err != nil {
			fmt.Fprintln(stderr, "pgpollwatch watch:", err)
			return exitUsage
		}
		defer stopMetrics()
	}
	w := &watcher{live: live, follow: capture.NewFollower(an, o.ports...), iface: o.iface}
	done := make(chan struct{})
	go func() { defer close(done); w.read() }()
	input := fmt.Sprintf("interface %s, port %s", o.iface, portsText(o.ports))
	log.Info("capturing", "interface", o.iface, "ports", portsText(o.ports))

	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	var timeUp <-chan time.Time
	if o.duration > 0 {
		timeUp = time.After(o.duration)
	}
	makeReport := func() *report.Report {
		host, _ := os.Hostname()
		rep := report.FromSnapshot(an.Snapshot(), report.Source{Host: host, Version: version(), Input: input})
		rep.Capture = w.input()
		return rep
	}
	if useTUI {
		tctx, stopTUI := context.WithCancel(ctx)
		go func() {
			select {
			case <-sigs:
			case <-timeUp:
			case <-done: // the capture ended (the interface went away)
			case <-tctx.Done():
			}
			stopTUI()
		}()
		export := func() (string, error) {
			if o.report == "" {
				return "", errors.New("no report file: run watch with --report FILE (.json, .html or .md)")
			}
			return o.report, report.Write(o.report, makeReport())
		}
		if err := tui.Run(tctx, tui.Options{Source: an, Input: input, InputStatus: w.status, Export: export}); err != nil {
			fmt.Fprintln(stderr, "pgpollwatch watch: terminal UI failed:", err)
		}
		stopTUI()
	} else {
		go logHeadlines(ctx, log, an, o.logInterval)
		select {
		case sig := <-sigs:
			log.Info("stopping", "why", sig.String())
		case <-timeUp:
			log.Info("stopping", "why", "--duration is up")
		case <-done:
		}
	}
	live.Close()
	<-done
	if w.err != nil {
		log.Error("the capture stopped", "err", w.err)
	}
	w.mu.Lock()
	w.follow.Close() // the conversations still open end with the watch
	w.mu.Unlock()
	rep := makeReport()
	log.Info("captured", "summary", rep.Capture.Summary())
	status := exitOK
	if o.report != "" {
		if err := report.Write(o.report, rep); err != nil {
			fmt.Fprintln(stderr, "pgpollwatch watch: --report:", err)
			return exitUsage
		}
		fmt.Fprintf(stderr, "pgpollwatch watch: report written to %s\n", o.report)
	}
	if failOn(rep, o.failOn, "pgpollwatch watch", stderr) {
		status = exitFindings
	}
	return status
}

// watcher reads a live interface into its Follower, on one goroutine; the views read its
// counts under mu.
type watcher struct {
	live   *capture.Live
	iface  string
	mu     sync.Mutex
	follow *capture.Follower
	err    error // why the capture stopped, when not closed
}

// read takes packets until the capture is closed or fails.
func (w *watcher) read() {
	for {
		p, err := w.live.Next()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				w.err = err
			}
			return
		}
		w.mu.Lock()
		w.follow.Packet(p)
		w.mu.Unlock()
	}
}

// input is the report's capture section, as of now.
func (w *watcher) input() *report.CaptureInput {
	_, dropped := w.live.Stats()
	w.mu.Lock()
	defer w.mu.Unlock()
	in := captureInput(w.follow.Stats, w.follow.Tracker.Stats, w.follow.Events.Stats)
	in.Interface, in.KernelDrops = w.iface, int64(dropped)
	return in
}

// status is the TUI header's note: what the capture is losing, if anything.
func (w *watcher) status() string {
	in := w.input()
	s := fmt.Sprintf("%s packets", fmtCount(in.Packets))
	if in.KernelDrops > 0 {
		s += fmt.Sprintf(", %s dropped by the kernel", fmtCount(in.KernelDrops))
	}
	if in.Gaps > 0 {
		s += fmt.Sprintf(", %s gaps", fmtCount(in.Gaps))
	}
	if in.Encrypted > 0 {
		s += fmt.Sprintf(", %s encrypted", fmtCount(in.Encrypted))
	}
	return s
}

func fmtCount(n int64) string {
	switch {
	case n >= 10_000_000:
		return fmt.Sprintf("%.0fM", float64(n)/1e6)
	case n >= 10_000:
		return fmt.Sprintf("%.0fk", float64(n)/1e3)
	}
	return fmt.Sprint(n)
}

func portsText(p portList) string {
	if len(p) == 0 {
		return "5432"
	}
	return p.String()
}
