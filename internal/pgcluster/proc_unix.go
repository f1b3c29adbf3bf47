//go:build unix

package pgcluster

import (
	"errors"
	"os/exec"
	"syscall"
)

func supported() error { return nil }

// apply makes cmd run as c; nil runs it as the current user.
func (c *credential) apply(cmd *exec.Cmd) {
	if c != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(c.uid), Gid: uint32(c.gid)}}
	}
}

func killProcess(pid int) { syscall.Kill(pid, syscall.SIGKILL) }

// signalable reports whether a signal can be sent to pid: it exists and is ours to signal.
func signalable(pid int) bool { return syscall.Kill(pid, 0) == nil }

// processGone reports whether no process pid exists.
func processGone(pid int) bool { return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) }
