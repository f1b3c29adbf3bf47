//go:build unix

package main

import (
	"os"
	"os/signal"
	"syscall"
)

// notifyReportSignal relays SIGUSR1, on which the proxy writes its report, to c.
func notifyReportSignal(c chan<- os.Signal) { signal.Notify(c, syscall.SIGUSR1) }

// notifyReloadSignal relays SIGHUP, on which the proxy reloads its configuration, to c.
func notifyReloadSignal(c chan<- os.Signal) { signal.Notify(c, syscall.SIGHUP) }
