//go:build !unix

package pgcluster

import (
	"errors"
	"os/exec"
	"runtime"
)

// supported says why no cluster starts here: the launcher relies on Unix sockets, a root
// process running the server as the postgres user, and Linux's or macOS's installed layout.
func supported() error {
	return errors.New("starting a throwaway PostgreSQL needs Linux or macOS with PostgreSQL's server binaries (initdb, pg_ctl); this is " + runtime.GOOS)
}

// Nothing below is reached: StartWith stops at supported.

func (c *credential) apply(*exec.Cmd) {}
func killProcess(int)                 {}
func signalable(int) bool             { return false }
func processGone(int) bool            { return false }
