//go:build unix

package pgcluster

import (
	"syscall"
	"time"
)

// Signal sends sig to the postmaster and all its children (SIGSTOP and SIGCONT freeze and
// thaw the whole server). SIGSTOP goes to the postmaster first, so that it forks no child
// after the children were listed.
func (c *Cluster) Signal(sig syscall.Signal) error {
	pm, children, err := c.ServerPIDs()
	if err != nil {
		return err
	}
	if sig == syscall.SIGSTOP {
		if err := syscall.Kill(pm, sig); err != nil {
			return err
		}
		time.Sleep(10 * time.Millisecond)
		if _, children, err = c.ServerPIDs(); err != nil {
			return err
		}
		for _, p := range children {
			syscall.Kill(p, sig) // may have exited meanwhile
		}
		return nil
	}
	for _, p := range children {
		syscall.Kill(p, sig)
	}
	return syscall.Kill(pm, sig)
}
