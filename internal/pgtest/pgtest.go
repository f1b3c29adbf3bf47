// Package pgtest gives tests throwaway PostgreSQL clusters. The clusters themselves come from
// internal/pgcluster, which the demo uses too; this package adds what needs the testing package.
package pgtest

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
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

// Main is for TestMain: it starts a cluster, stores it in *dst, runs the
// tests, stops the cluster and exits with the tests' exit code. If the
// cluster cannot start it explains why on stderr and exits 1; it never skips.
//
// A fuzzing run that runs no test (-fuzz with -run='^$', as `make fuzz-smoke`
// does) and its worker processes only run fuzz targets, which need no server:
// they get no cluster (*dst stays nil).
func Main(m *testing.M, dst **Cluster) { MainWith(m, dst, Options{}) }

// MainWith is Main with a cluster made by StartWith(opt).
func MainWith(m *testing.M, dst **Cluster, opt Options) {
	if OnlyFuzzing() {
		os.Exit(m.Run())
	}
	os.Exit(runMain(m, dst, opt))
}

func runMain(m *testing.M, dst **Cluster, opt Options) int {
	c, err := StartWith(opt)
	if err != nil {
		fmt.Fprintf(os.Stderr, "pgtest: cannot start a PostgreSQL cluster for the tests: %v\n", err)
		if errors.Is(err, ErrNotInstalled) {
			fmt.Fprintf(os.Stderr, "pgtest: install PostgreSQL with:\n\t%s\n", InstallCommand)
		}
		return 1
	}
	defer c.Stop()
	*dst = c

	// pg_ctl detaches the server from our process group, so an interrupted
	// test run would otherwise leave it running.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sig)
	go func() {
		s := <-sig
		fmt.Fprintf(os.Stderr, "pgtest: %v: stopping PostgreSQL\n", s)
		c.Stop()
		os.Exit(1)
	}()
	return m.Run()
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
