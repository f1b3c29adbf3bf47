package pgcluster

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// StopServer stops the server with pg_ctl's shutdown mode ("smart", "fast" or "immediate")
// and waits for it to exit, keeping the cluster's files so that StartServer can start it again.
func (c *Cluster) StopServer(mode string) error {
	_, err := c.run("pg_ctl", "stop", "-D", c.DataDir, "-m", mode, "-w", "-t", "30")
	return err
}

// StartServer starts a server stopped by StopServer, on the same port, and waits until it
// accepts connections (after crash recovery, following an immediate shutdown).
func (c *Cluster) StartServer() error {
	logStart := fileSize(c.LogFile)
	if _, err := c.run("pg_ctl", "start", "-D", c.DataDir, "-l", c.LogFile, "-w", "-t", strconv.Itoa(int(startTimeout.Seconds()))); err != nil {
		return fmt.Errorf("%w\nserver log %s:\n%s", err, c.LogFile, c.logSince(logStart))
	}
	return nil
}

// SingleUser runs sql in database db ("" means Database) with the server stopped, through
// postgres --single: a change no client of the running server can see being made.
func (c *Cluster) SingleUser(db, sql string) error {
	if db == "" {
		db = Database
	}
	// -j: statements end at a semicolon followed by an empty line.
	out, err := c.runInput(strings.NewReader(strings.TrimRight(sql, "; \n")+";\n\n"), "postgres", "--single", "-D", c.DataDir, "-j", db)
	if err == nil && strings.Contains(string(out), "ERROR:") {
		err = fmt.Errorf("postgres --single: statement failed\n%s", out)
	}
	return err
}

// ServerPIDs returns the postmaster's PID and those of its children (backends and auxiliary
// processes), read from postmaster.pid and /proc.
func (c *Cluster) ServerPIDs() (postmaster int, children []int, err error) {
	b, err := os.ReadFile(filepath.Join(c.DataDir, "postmaster.pid"))
	if err != nil {
		return 0, nil, err
	}
	first, _, _ := strings.Cut(string(b), "\n")
	if postmaster, err = strconv.Atoi(strings.TrimSpace(first)); err != nil || postmaster <= 0 {
		return 0, nil, fmt.Errorf("postmaster.pid: bad PID %q", first)
	}
	dirs, err := os.ReadDir("/proc")
	if err != nil {
		return 0, nil, err
	}
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", d.Name(), "stat"))
		if err != nil {
			continue // exited meanwhile
		}
		// The command name in parentheses may hold spaces: the fields follow the last ')'.
		s := string(stat)
		if i := strings.LastIndexByte(s, ')'); i >= 0 {
			if f := strings.Fields(s[i+1:]); len(f) > 1 && f[1] == strconv.Itoa(postmaster) {
				children = append(children, pid)
			}
		}
	}
	return postmaster, children, nil
}
