//go:build !unix

package main

import "os"

// notifyReportSignal does nothing: there is no SIGUSR1 here, and the report is written at the
// end (and on e in the TUI).
func notifyReportSignal(chan<- os.Signal) {}

// notifyReloadSignal does nothing: there is no SIGHUP here; restart to change the configuration.
func notifyReloadSignal(chan<- os.Signal) {}

// terminalInterrupts reports false: every interrupt is passed on to the command check runs.
func terminalInterrupts() bool { return false }
