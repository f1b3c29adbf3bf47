//go:build unix

package main

import (
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"
)

// notifyReportSignal relays SIGUSR1, on which the proxy writes its report, to c.
func notifyReportSignal(c chan<- os.Signal) { signal.Notify(c, syscall.SIGUSR1) }

// notifyReloadSignal relays SIGHUP, on which the proxy reloads its configuration, to c.
func notifyReloadSignal(c chan<- os.Signal) { signal.Notify(c, syscall.SIGHUP) }

// terminalInterrupts reports whether a terminal's ctrl-c reaches the command check runs as well
// as pgpollwatch: the two share pgpollwatch's process group, and it is the terminal's
// foreground group. Then an interrupt needs no passing on.
func terminalInterrupts() bool {
	tty, err := os.Open("/dev/tty")
	if err != nil {
		return false // no controlling terminal (CI): every interrupt came from a kill
	}
	defer tty.Close()
	fg, err := unix.IoctlGetInt(int(tty.Fd()), unix.TIOCGPGRP)
	return err == nil && fg == unix.Getpgrp()
}
