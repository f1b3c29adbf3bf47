package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

func TestMain(m *testing.M) { Main(m) }

func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatalf("connect %s: %v", dsn, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func queryString(t *testing.T, conn *pgx.Conn, sql string, args ...any) string {
	t.Helper()
	var s string
	if err := conn.QueryRow(t.Context(), sql, args...).Scan(&s); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return s
}

// TestStartFailureSaysHowToInstall: without PostgreSQL, a test that needs it fails with the
// command that installs it.
func TestStartFailureSaysHowToInstall(t *testing.T) {
	msg := startFailure(fmt.Errorf("finding initdb: %w", ErrNotInstalled))
	if !strings.Contains(msg, InstallCommand) || !strings.Contains(msg, ErrNotInstalled.Error()) {
		t.Errorf("the failure does not say what is missing and how to install it:\n%s", msg)
	}
	if msg := startFailure(errors.New("pg_ctl: could not start server")); strings.Contains(msg, InstallCommand) {
		t.Errorf("a server that fails to start is not a missing installation:\n%s", msg)
	}
}

func TestLogins(t *testing.T) {
	t.Parallel()
	cluster := Shared(t)
	for _, user := range []string{SuperUser, ScramUser, MD5User, TrustUser} {
		t.Run(user, func(t *testing.T) {
			conn := connect(t, cluster.ConnString(user, ""))
			if got := queryString(t, conn, "SELECT current_user"); got != user {
				t.Errorf("current_user = %q", got)
			}
			if got := queryString(t, conn, "SELECT current_database()"); got != Database {
				t.Errorf("current_database() = %q", got)
			}
		})
	}

	t.Run("stored passwords", func(t *testing.T) {
		conn := connect(t, cluster.ConnString(SuperUser, ""))
		for user, prefix := range map[string]string{SuperUser: "SCRAM-SHA-256$", ScramUser: "SCRAM-SHA-256$", MD5User: "md5"} {
			if got := queryString(t, conn, "SELECT rolpassword FROM pg_authid WHERE rolname = $1", user); !strings.HasPrefix(got, prefix) {
				t.Errorf("%s password stored as %.20q, want prefix %q", user, got, prefix)
			}
		}
		var hasPw bool
		if err := conn.QueryRow(t.Context(), "SELECT rolpassword IS NOT NULL FROM pg_authid WHERE rolname = $1", TrustUser).Scan(&hasPw); err != nil || hasPw {
			t.Errorf("trust user has a password: %v %v", hasPw, err)
		}
		if got := queryString(t, conn, "SELECT rolreplication::text FROM pg_roles WHERE rolname = $1", ScramUser); got != "true" {
			t.Errorf("%s rolreplication = %s", ScramUser, got)
		}
	})

	t.Run("wrong password", func(t *testing.T) {
		for _, user := range []string{ScramUser, MD5User} {
			dsn := strings.Replace(cluster.ConnString(user, ""), Password, "wrong", 1)
			conn, err := pgx.Connect(t.Context(), dsn)
			if err == nil {
				conn.Close(t.Context())
				t.Fatalf("%s logged in with a wrong password", user)
			}
			if pgErr, ok := errors.AsType[*pgconn.PgError](err); !ok || pgErr.Code != "28P01" {
				t.Errorf("%s: want SQLSTATE 28P01, got %v", user, err)
			}
		}
	})

	t.Run("scram user may create tables", func(t *testing.T) {
		conn := connect(t, cluster.ConnString(ScramUser, ""))
		if _, err := conn.Exec(t.Context(), "CREATE TABLE scram_owned (id int); DROP TABLE scram_owned"); err != nil {
			t.Fatal(err)
		}
	})
}

func TestTLS(t *testing.T) {
	t.Parallel()
	cluster := Shared(t)
	hosts := []string{"127.0.0.1", "localhost"}
	if hasIPv6() { // the cluster listens on ::1 only where the machine has it
		hosts = append(hosts, "[::1]")
	}
	for _, host := range hosts {
		t.Run(host, func(t *testing.T) {
			dsn := strings.Replace(cluster.ConnString(ScramUser, ""), "127.0.0.1", host, 1)
			dsn = strings.Replace(dsn, "sslmode=disable", "sslmode=verify-full&sslrootcert="+cluster.CertFile, 1)
			conn := connect(t, dsn)
			if got := queryString(t, conn, "SELECT ssl::text FROM pg_stat_ssl WHERE pid = pg_backend_pid()"); got != "true" {
				t.Errorf("pg_stat_ssl.ssl = %s", got)
			}
		})
	}
}

func TestPgStatStatements(t *testing.T) {
	t.Parallel()
	cluster := Shared(t)
	db := cluster.CreateDatabase(t)
	conn := connect(t, cluster.ConnString(ScramUser, db))
	if _, err := conn.Exec(t.Context(), "CREATE TABLE items (id int)"); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := conn.Exec(t.Context(), "SELECT count(*) AS pgtest_marker FROM items"); err != nil {
			t.Fatal(err)
		}
	}
	super := connect(t, cluster.ConnString(SuperUser, ""))
	var calls int64
	err := super.QueryRow(t.Context(), `
		SELECT coalesce(sum(s.calls), 0) FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
		WHERE d.datname = $1 AND s.query LIKE '%pgtest_marker%'`, db).Scan(&calls)
	if err != nil {
		t.Fatal(err)
	}
	if calls != 3 {
		t.Errorf("pg_stat_statements calls = %d, want 3", calls)
	}
	for setting, want := range map[string]string{
		"pg_stat_statements.track": "all", "pg_stat_statements.max": "10000", "wal_level": "logical",
		"max_connections": "300", "fsync": "off", "ssl": "on", "password_encryption": "scram-sha-256",
	} {
		if got := queryString(t, super, "SELECT current_setting($1)", setting); got != want {
			t.Errorf("%s = %q, want %q", setting, got, want)
		}
	}
}

func TestCreateDatabaseCleanup(t *testing.T) {
	t.Parallel()
	cluster := Shared(t)
	var name string
	t.Run("Sub/Test With Spaces & Symbols!", func(t *testing.T) {
		name = cluster.CreateDatabase(t)
		cluster.Exec(t, name, "CREATE TABLE x (id int); INSERT INTO x VALUES (1)")
	})
	if !strings.HasPrefix(name, "t_testcreatedatabasecleanup_sub_test_with") {
		t.Errorf("database name %q", name)
	}
	conn := connect(t, cluster.ConnString(SuperUser, ""))
	var n int
	if err := conn.QueryRow(t.Context(), "SELECT count(*) FROM pg_database WHERE datname = $1", name).Scan(&n); err != nil || n != 0 {
		t.Errorf("database %s still exists after the subtest: %d %v", name, n, err)
	}
}

func TestEnv(t *testing.T) {
	t.Parallel()
	cluster := Shared(t)
	// Through sh so that psql is found via Env's PATH, not ours.
	cmd := exec.Command("sh", "-c", `psql -XtAc "SELECT current_user || '@' || current_database()"`)
	cmd.Env = cluster.Env()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("psql: %v\n%s", err, out)
	}
	if got := strings.TrimSpace(string(out)); got != SuperUser+"@"+Database {
		t.Errorf("psql printed %q", got)
	}
}

func TestStopRemovesDirectories(t *testing.T) {
	t.Parallel()
	cluster := Shared(t)
	start := time.Now()
	c, err := StartWith(Options{Conf: "work_mem = '7MB'"})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Start took %v", time.Since(start))
	t.Cleanup(c.Stop)
	if c.Port == cluster.Port || c.DataDir == cluster.DataDir {
		t.Fatalf("second cluster shares port or data dir with the first")
	}
	conn := connect(t, c.ConnString(TrustUser, ""))
	if got := queryString(t, conn, "SHOW work_mem"); got != "7MB" {
		t.Errorf("Options.Conf: work_mem = %s", got)
	}
	conn.Close(t.Context())
	if _, err := os.Stat(c.LogFile); err != nil {
		t.Errorf("log file: %v", err)
	}

	c.Stop()
	c.Stop()
	for _, dir := range []string{c.DataDir, c.SocketDir, filepath.Dir(c.DataDir)} {
		if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still exists after Stop: %v", dir, err)
		}
	}
	if nc, err := net.DialTimeout("tcp", c.Addr(), time.Second); err == nil {
		nc.Close()
		t.Errorf("%s still accepts connections after Stop", c.Addr())
	}
}

// hasIPv6 reports whether the machine has ::1, where the cluster then listens too.
func hasIPv6() bool {
	l, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		return false
	}
	l.Close()
	return true
}
