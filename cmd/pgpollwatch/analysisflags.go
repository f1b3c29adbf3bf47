package main

import (
	"errors"
	"flag"
	"time"

	"github.com/pgpollwatch/pgpollwatch/analyzer"
)

// analysisFlags are the analyzer's settings that the commands analysing recorded or captured
// traffic (analyze, watch) share: what is watched, and the storm thresholds.
type analysisFlags struct {
	watches     watchList
	queues      queueList
	maxKeys     int
	stormQPS    float64
	sweepQPS    float64
	stormWindow time.Duration
}

func (a *analysisFlags) register(fs *flag.FlagSet) {
	fs.Var(&a.watches, "watch", "also watch lookups by `TABLE.COLUMN` (or SCHEMA.TABLE.COLUMN); repeatable. Celery's and\ndjango-celery-results' result tables are always watched")
	fs.Var(&a.queues, "watch-queue", queueHelp)
	fs.IntVar(&a.maxKeys, "max-keys", 100_000, "watched keys tracked at once; the lightest are forgotten first, the heaviest stay exact")
	fs.Float64Var(&a.stormQPS, "storm-qps", 10, "polls per second of one key at or above which it storms")
	fs.Float64Var(&a.sweepQPS, "sweep-qps", 100, "watched polls per second, over two keys or more, at or above which one client storms as a\npoller")
	fs.DurationVar(&a.stormWindow, "storm-window", 5*time.Second, "how long the storm rate must hold to start a storm, and stay below to end it")
}

// config checks the flags and makes the analyzer's configuration of them.
func (a *analysisFlags) config() (analyzer.Config, error) {
	switch {
	case !(a.stormQPS > 0):
		return analyzer.Config{}, errors.New("--storm-qps must be positive")
	case !(a.sweepQPS > 0):
		return analyzer.Config{}, errors.New("--sweep-qps must be positive")
	case a.stormWindow < time.Second:
		return analyzer.Config{}, errors.New("--storm-window must be 1s or more")
	case a.maxKeys <= 0:
		return analyzer.Config{}, errors.New("--max-keys must be positive")
	}
	return analyzer.Config{
		Watches:     append(append([]analyzer.Watch(nil), analyzer.Presets...), a.watches...),
		Queues:      a.queues.queues(),
		MaxKeys:     a.maxKeys,
		StormQPS:    a.stormQPS,
		SweepQPS:    a.sweepQPS,
		StormWindow: a.stormWindow,
	}, nil
}
