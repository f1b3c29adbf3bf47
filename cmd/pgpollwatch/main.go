// Command pgpollwatch is a diagnostic PostgreSQL proxy: point an application's DSN at it and it
// forwards every connection to the real server while watching what is polled, how often, and
// whether the polls ever return anything new.
package main

import (
	"os"

	"github.com/pgpollwatch/pgpollwatch/internal/storm"
	"github.com/pgpollwatch/pgpollwatch/report"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

// run dispatches subcommands; with none, it runs the proxy.
func run(args []string) int {
	if len(args) > 0 {
		switch args[0] {
		case "version", "--version":
			return runVersion(args[1:], os.Stdout, os.Stderr)
		case "help":
			return runProxy([]string{"--help"})
		case "report":
			return report.Command(args[1:], os.Stdout, os.Stderr)
		case "storm":
			return storm.Command(args[1:], os.Stdout, os.Stderr)
		case "analyze":
			return runAnalyze(args[1:])
		case "watch":
			return runWatch(args[1:])
		case "check":
			return runCheck(args[1:])
		case "config":
			return runConfig(args[1:], os.Stdout, os.Stderr)
		case "demo":
			return runDemo(args[1:])
		}
	}
	return runProxy(args)
}
