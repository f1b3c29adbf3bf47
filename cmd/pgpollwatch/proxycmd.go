package main

// The proxy itself (pgpollwatch with no subcommand, and the demo's proxy): from its flags to
// exit, through either runner (run_tui.go, run_headless.go).

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/pgpollwatch/pgpollwatch/metrics"
)

func runProxy(args []string) int {
	loaded, err := loadProxyOptions(args, os.Environ())
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(os.Stderr, "pgpollwatch:", err)
		return 2
	}
	loaded.o.args = args // read again on SIGHUP
	o := loaded.o
	// The TUI owns the terminal: logs then go to --log-file, or nowhere.
	useTUI := !o.noTUI && isTerminal(os.Stdout) && isTerminal(os.Stdin)
	logOut, closeLog, err := logOutput(o.logFile, useTUI)
	if err != nil {
		fmt.Fprintln(os.Stderr, "pgpollwatch: --log-file:", err)
		return 2
	}
	defer closeLog()
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
		stop, err := startCPUProfile(o.cpuProfile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "pgpollwatch:", err)
			return 2
		}
		defer stop()
	}
	if err := serveProxy(o, loaded, log, useTUI); err != nil {
		log.Error(err.Error())
		return 1
	}
	return 0
}

// startCPUProfile writes a Go CPU profile to path until stop is called (--cpuprofile).
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// serveProxy runs the proxy until it is told to stop, then lets open sessions finish and
// writes the exit report.
func serveProxy(o proxyOptions, loaded *loadedOptions, log *slog.Logger, useTUI bool) error {
	o.useTUI = useTUI
	a, err := newApp(o, log)
	if err != nil {
		return err
	}
	if loaded != nil { // the demo has no configuration to reload
		a.reloader = newReloader(loaded)
		a.an.SetConfigStats(a.reloader.configStats)
	}
	// Signals are caught before the proxy says it serves metrics: a SIGHUP sent as soon as it
	// does must reload it, not end it (a signal's default action), as it did once in CI.
	sigs, stopSignals := a.watchSignals()
	defer stopSignals()
	ctx, stopAnalysis := context.WithCancel(context.Background())
	defer stopAnalysis()
	go a.an.Run(ctx)
	if o.metrics != "" {
		stopMetrics, err := serveMetrics(o.metrics, a, log)
		if err != nil {
			return err
		}
		defer stopMetrics()
	}
	served := make(chan error, 1)
	go func() { served <- a.srv.Serve(a.ln) }()
	stopAlongside := a.startAlongside(ctx)
	defer stopAlongside()
	var timeUp <-chan time.Time
	if o.stopAfter > 0 {
		t := time.NewTimer(o.stopAfter)
		defer t.Stop()
		timeUp = t.C
	}

	var why string
	if useTUI {
		why = a.runTUI(ctx, sigs, timeUp)
	} else if why, err = a.runHeadless(ctx, sigs, timeUp, served); why == "" {
		return err
	}
	stopAlongside() // its sessions end now, so the drain below does not wait for them
	a.shutdown(ctx, why, sigs)
	<-served
	a.report("exit")
	log.Info("stopped")
	return nil
}

// serveMetrics serves /metrics, /healthz and /readyz on addr (--metrics-listen) until stop is
// called. /readyz asks the upstream as sessions reach it: the same targets, TLS settings and
// --connect-timeout.
func serveMetrics(addr string, a *app, log *slog.Logger) (stop func(), err error) {
	return serveHandler(addr, metrics.Handler(a.an, a.srv.ProbeUpstream), log)
}

// serveHandler serves h on addr (--metrics-listen) until stop is called.
func serveHandler(addr string, h http.Handler, log *slog.Logger) (stop func(), err error) {
	mln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics-listen: %w", err)
	}
	msrv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = msrv.Serve(mln) }()
	log.Info("serving metrics", "addr", "http://"+mln.Addr().String()+"/metrics")
	return func() { msrv.Close() }, nil
}

// watchSignals delivers SIGINT and SIGTERM on sigs (the first stops the proxy, a second ends
// the grace period), writes the report on each SIGUSR1 and reloads the configuration on each
// SIGHUP, until stop is called.
func (a *app) watchSignals() (sigs <-chan os.Signal, stop func()) {
	c := make(chan os.Signal, 2)
	signal.Notify(c, syscall.SIGINT, syscall.SIGTERM)
	usr1 := make(chan os.Signal, 1)
	notifyReportSignal(usr1) // SIGUSR1 where there is one (signal_unix.go)
	go func() {
		for range usr1 {
			a.report("SIGUSR1")
		}
	}()
	hup := make(chan os.Signal, 1)
	if a.reloader != nil {
		notifyReloadSignal(hup) // SIGHUP where there is one
		go func() {
			for range hup {
				a.reload()
			}
		}()
	}
	return c, func() {
		signal.Stop(hup)
		signal.Stop(usr1)
		signal.Stop(c)
	}
}

// startAlongside runs the demo's traffic (proxyOptions.alongside) once the proxy listens;
// stop cancels it and waits for it to end, and may be called more than once.
func (a *app) startAlongside(ctx context.Context) (stop func()) {
	if a.o.alongside == nil {
		return func() {}
	}
	actx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); a.o.alongside(actx, a.ln.Addr().String()) }()
	return func() { cancel(); <-done }
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
