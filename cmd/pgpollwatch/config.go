package main

// The proxy's settings from three places besides the command line: PGPOLLWATCH_* environment
// variables, a TOML file (--config), and the defaults; and `pgpollwatch config`, which says
// where each came from.

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/pgpollwatch/pgpollwatch/internal/cli"
	"github.com/pgpollwatch/pgpollwatch/report"
)

// envPrefix starts the environment variable of every flag: --storm-qps is PGPOLLWATCH_STORM_QPS.
const envPrefix = "PGPOLLWATCH_"

// loadedOptions are the proxy's settings, and where each came from.
type loadedOptions struct {
	o       proxyOptions
	fs      *flag.FlagSet
	sources map[string]cli.Source
}

// loadProxyOptions parses args, then fills what they leave unset from the environment and the
// configuration file (--config, or PGPOLLWATCH_CONFIG). flag.ErrHelp is returned for --help.
func loadProxyOptions(args []string, environ []string) (*loadedOptions, error) {
	l := &loadedOptions{}
	l.fs = proxyFlags(&l.o)
	l.fs.SetOutput(os.Stderr)
	if err := l.fs.Parse(args); err != nil {
		return nil, err
	}
	if l.fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q (see --help)", l.fs.Arg(0))
	}
	file := l.o.config
	if file == "" {
		for _, kv := range environ {
			if v, ok := strings.CutPrefix(kv, envPrefix+"CONFIG="); ok {
				file = v
			}
		}
	}
	// PGPOLLWATCH_CHECK is no setting: check sets it for the command it runs, which may start a
	// proxy of its own.
	layers := &cli.Layers{Prefix: envPrefix, Environ: environ, File: file, Ignore: []string{envPrefix + "CHECK"}}
	var err error
	if l.sources, err = layers.Apply(l.fs); err != nil {
		return nil, err
	}
	if err := l.o.check(); err != nil {
		return nil, err
	}
	return l, nil
}

// value is a flag's value as the configuration file writes it.
func (l *loadedOptions) value(f *flag.Flag) string {
	v := f.Value.String()
	if f.Name == "upstream" {
		v = report.RedactDSN(v)
	}
	if g, ok := f.Value.(flag.Getter); ok {
		switch x := g.Get().(type) {
		case bool:
			return strconv.FormatBool(x)
		case int, int64, uint, uint64:
			return fmt.Sprint(x)
		case float64:
			return strconv.FormatFloat(x, 'f', -1, 64)
		case time.Duration:
			return strconv.Quote(x.String())
		}
	}
	if _, rep := f.Value.(cli.Repeatable); rep {
		var items []string
		for _, s := range strings.Split(v, ",") {
			if s != "" {
				items = append(items, strconv.Quote(s))
			}
		}
		return "[" + strings.Join(items, ", ") + "]"
	}
	return strconv.Quote(v)
}

// write prints the effective configuration as a TOML file that gives it, each value followed
// by where it came from; passwords in DSNs are masked.
func (l *loadedOptions) write(w io.Writer) {
	var names []string
	l.fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	sort.Strings(names)
	fmt.Fprintln(w, "# pgpollwatch's effective configuration: flag, then environment, then file, then default.")
	for _, name := range names {
		f := l.fs.Lookup(name)
		if name == "config" || name == "cpuprofile" {
			continue // not settings of the proxy's behaviour
		}
		fmt.Fprintf(w, "%s = %s  # %s\n", name, l.value(f), l.sources[name])
	}
}

// runConfig is `pgpollwatch config [flags]`: the proxy's settings as the same flags, environment
// and file would make them, and where each came from.
func runConfig(args []string, stdout, stderr io.Writer) int {
	for _, a := range args {
		if a == "-h" || a == "--help" || a == "-help" {
			fmt.Fprintln(stderr, `pgpollwatch config: print the proxy's effective configuration, and where each value came from.

It takes the proxy's flags and reads, as the proxy does, the PGPOLLWATCH_<FLAG> environment
variables and the --config file (or PGPOLLWATCH_CONFIG). Precedence: flag, then environment,
then file, then default. The output is a TOML file that gives the same configuration; passwords
in DSNs are masked. Unknown keys or variables and bad values are errors (exit status 2).

Usage:
  pgpollwatch config [--config FILE] [proxy flags]`)
			return exitOK
		}
	}
	l, err := loadProxyOptions(args, os.Environ())
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		fmt.Fprintln(stderr, "pgpollwatch config:", err)
		return exitUsage
	}
	l.write(stdout)
	return exitOK
}
