package pgtest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// MainWithBinary is MainWith for tests that run pgpollwatch as a process: it builds the
// binary once into a temporary directory, sets *bin to its path, runs the tests and removes it.
func MainWithBinary(m *testing.M, opt Options, bin *string) {
	dir, err := os.MkdirTemp("", "pgpollwatch-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	*bin = filepath.Join(dir, "pgpollwatch")
	if out, err := exec.Command("go", "build", "-o", *bin, "github.com/pgpollwatch/pgpollwatch/cmd/pgpollwatch").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building pgpollwatch: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := Run(m, opt)
	os.RemoveAll(dir)
	os.Exit(code)
}

// Output collects a process's output while it runs: safe to read while the process writes.
type Output struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (o *Output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.Write(p)
}

func (o *Output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}
