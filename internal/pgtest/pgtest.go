// Package pgtest gives tests a throwaway PostgreSQL: a cluster shared by a package's tests and
// started by the first test that needs it, so that a package's other tests run without one.
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
//	func TestSomething(t *testing.T) {
//		pg := pgtest.Shared(t) // starts the cluster on first use; fails t when it cannot
//		db := pg.CreateDatabase(t)
//		...
//	}
//
// The clusters themselves come from internal/pgcluster, which the demo uses too; this package
// adds what needs the testing package.
package pgtest

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgpollwatch/pgpollwatch/internal/pgcluster"
)

// The roles and database every cluster has: see pgcluster.
const (
	SuperUser = pgcluster.SuperUser
	ScramUser = pgcluster.ScramUser
	MD5User   = pgcluster.MD5User
	TrustUser = pgcluster.TrustUser
	Password  = pgcluster.Password
	Database  = pgcluster.Database
)

// InstallCommand installs the PostgreSQL binaries on the Debian/Ubuntu test machines.
const InstallCommand = pgcluster.InstallCommand

// ErrNotInstalled is returned (wrapped) by Start when initdb cannot be found.
var ErrNotInstalled = pgcluster.ErrNotInstalled

// LogEverything is an Options.Conf with which the server logs every statement and session:
// see pgcluster.LogEverything.
const LogEverything = pgcluster.LogEverything

// Options change the cluster StartWith and MainWith make; the zero value is Start's.
type Options = pgcluster.Options

// FindBinDir returns the directory holding PostgreSQL's programs: see pgcluster.FindBinDir.
func FindBinDir() (string, error) { return pgcluster.FindBinDir() }

// Cluster is a pgcluster.Cluster with helpers that fail a test.
type Cluster struct{ *pgcluster.Cluster }

// Start creates and starts a cluster of the test's own, which the caller stops.
func Start() (*Cluster, error) { return StartWith(Options{}) }

// StartWith is Start with opt.
func StartWith(opt Options) (*Cluster, error) {
	c, err := pgcluster.StartWith(opt)
	if err != nil {
		return nil, err
	}
	return &Cluster{c}, nil
}

// The package's shared cluster: registered by Main, started by the first Shared, stopped when
// Main's tests are over.
var shared struct {
	mu         sync.Mutex
	registered bool
	opt        Options
	c          *Cluster
	err        error     // why it could not start; every later Shared fails with it
	stopSignal func()    // ends the interrupt handler
	started    time.Time // when it started, for the log
}

// Main is for TestMain: it runs the tests, stops the package's shared cluster if a test
// started one (Shared), and exits with the tests' exit code. Tests that never call Shared run
// without a server: on a machine without PostgreSQL they pass, and those that need one fail
// with the command that installs it.
func Main(m *testing.M) { MainWith(m, Options{}) }

// MainWith is Main with a shared cluster made by StartWith(opt).
func MainWith(m *testing.M, opt Options) { os.Exit(Run(m, opt)) }

// Run is MainWith for a TestMain with work of its own to undo after the tests: it returns the
// tests' exit code instead of exiting.
func Run(m *testing.M, opt Options) int {
	shared.mu.Lock()
	shared.registered, shared.opt = true, opt
	shared.mu.Unlock()
	defer stopShared()
	return m.Run()
}

// Shared returns the package's cluster, starting it on the first call (initdb takes a few
// seconds; the tests that call Shared meanwhile wait for it). When it cannot start, t fails
// with the reason and, when PostgreSQL is not installed, the command that installs it: a test
// that needs a server never passes, nor is skipped, without one.
func Shared(t testing.TB) *Cluster {
	t.Helper()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if !shared.registered {
		t.Fatal("pgtest: Shared needs pgtest.Main or pgtest.MainWith in the package's TestMain, which stops the cluster")
	}
	if shared.c == nil && shared.err == nil {
		begin := time.Now()
		shared.c, shared.err = StartWith(shared.opt)
		if shared.err == nil {
			shared.stopSignal = stopOnInterrupt(shared.c)
			t.Logf("pgtest: started PostgreSQL on %s for this package's tests in %v", shared.c.Addr(), time.Since(begin).Round(time.Millisecond))
		}
	}
	if shared.err != nil {
		t.Fatal(startFailure(shared.err))
	}
	return shared.c
}

// startFailure says why the cluster did not start, and how to fix it when it can.
func startFailure(err error) string {
	msg := fmt.Sprintf("pgtest: cannot start a PostgreSQL cluster for the tests: %v", err)
	if errors.Is(err, ErrNotInstalled) {
		msg += "\npgtest: install PostgreSQL with:\n\t" + InstallCommand
	}
	return msg
}

// stopShared stops the shared cluster if it was started.
func stopShared() {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.c != nil {
		shared.stopSignal()
		shared.c.Stop()
		shared.c = nil
	}
}

// stopOnInterrupt stops c and exits when the test binary is interrupted: pg_ctl detaches the
// server from our process group, so an interrupted test run would otherwise leave it running.
// The returned function ends the handler.
func stopOnInterrupt(c *Cluster) func() {
	sig := make(chan os.Signal, 1)
	done := make(chan struct{})
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		select {
		case s := <-sig:
			fmt.Fprintf(os.Stderr, "pgtest: %v: stopping PostgreSQL\n", s)
			c.Stop()
			os.Exit(1)
		case <-done:
		}
	}()
	return func() {
		signal.Stop(sig)
		close(done)
	}
}

// OnlyFuzzing reports whether this test binary is a fuzzing worker, or a
// fuzzing run told to run no test. It parses the test flags if needed.
func OnlyFuzzing() bool {
	if !flag.Parsed() {
		flag.Parse()
	}
	value := func(name string) string {
		if f := flag.Lookup(name); f != nil {
			return f.Value.String()
		}
		return ""
	}
	return value("test.fuzzworker") == "true" || value("test.fuzz") != "" && value("test.run") == "^$"
}

var dbSeq atomic.Int64

// CreateDatabase creates a database named after t, owned by SuperUser, with
// pg_stat_statements and full privileges for the ordinary roles, and drops it
// when t finishes. It returns the database name.
func (c *Cluster) CreateDatabase(t testing.TB) string {
	t.Helper()
	name := dbName(t.Name(), dbSeq.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := c.NewDatabase(ctx, name); err != nil {
		t.Fatalf("pgtest: creating database %s: %v", name, err)
	}
	t.Cleanup(func() {
		if c.Stopped() {
			return // the test stopped the cluster itself; nothing left to drop
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := c.ExecContext(ctx, "postgres", "DROP DATABASE "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: dropping database %s: %v", name, err)
		}
	})
	return name
}

// dbName derives a valid, unique database name (at most 63 bytes) from a test name.
func dbName(testName string, seq int64) string {
	var b strings.Builder
	b.WriteString("t_")
	for _, r := range strings.ToLower(testName) {
		if b.Len() >= 44 {
			break
		}
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else if !strings.HasSuffix(b.String(), "_") {
			b.WriteByte('_')
		}
	}
	return fmt.Sprintf("%s_%d_%d", strings.TrimSuffix(b.String(), "_"), os.Getpid(), seq)
}

// Exec runs sql (may contain several statements) as SuperUser in database db
// ("" means Database) over the Unix socket, and fails t on error.
func (c *Cluster) Exec(t testing.TB, db, sql string) {
	t.Helper()
	if db == "" {
		db = Database
	}
	if err := c.ExecContext(context.Background(), db, sql); err != nil {
		t.Fatalf("pgtest: exec in %s: %v\n%s", db, err, sql)
	}
}

// OpenLog opens the server's log (LogFile) at offset, typically its size before the part of a
// test whose statements the test counts in it; it is closed when the test ends.
func (c *Cluster) OpenLog(t testing.TB, offset int64) *os.File {
	t.Helper()
	f, err := os.Open(c.LogFile)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	return f
}
