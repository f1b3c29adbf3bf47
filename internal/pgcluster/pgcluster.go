// Package pgcluster starts throwaway PostgreSQL clusters: for the tests (through
// internal/pgtest, which adds what needs the testing package) and for `pgpollwatch demo`.
//
// Each cluster lives in its own temporary directory (data directory, socket
// directory, TLS certificate, log) and listens on a random free port on
// 127.0.0.1 (and ::1 when available), so test binaries of several packages
// can run their clusters side by side. It runs PostgreSQL's own initdb and
// pg_ctl, on Linux and macOS; elsewhere Start says so.
package pgcluster

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

const (
	SuperUser = "pgtest"        // superuser, scram-sha-256 password
	ScramUser = "scram_user"    // ordinary login role with REPLICATION, scram-sha-256 password, may create tables in the default db
	MD5User   = "md5_user"      // ordinary login role whose password is stored as md5 and whose hba line is md5
	TrustUser = "trust_user"    // ordinary login role with hba 'trust'
	Password  = "pgtest-secret" // the password of every password user
	Database  = "pgtest"        // created at start, owned by SuperUser, with pg_stat_statements
)

// InstallCommand installs the PostgreSQL binaries on the Debian/Ubuntu test machines.
const InstallCommand = "apt-get update && apt-get install -y postgresql-15"

// ErrNotInstalled is returned (wrapped) by Start when initdb cannot be found.
var ErrNotInstalled = errors.New("PostgreSQL server binaries (initdb, pg_ctl) not found on PATH or in /usr/lib/postgresql/*/bin")

// startTimeout bounds how long pg_ctl waits for the server to accept connections.
const startTimeout = 60 * time.Second

// dirPrefix names the per-cluster temporary directories; reapStale relies on it. (The names
// say pgtest, the package this one came from: clusters left by older runs are reaped too.)
const dirPrefix = "pgtest-"

// Cluster is one throwaway PostgreSQL: its running server and its files.
type Cluster struct {
	Host      string // "127.0.0.1"
	Port      int
	DataDir   string
	SocketDir string
	LogFile   string // the server's log (stderr of postgres, via pg_ctl -l)
	BinDir    string // where initdb/pg_ctl/psql/pgbench were found
	CertFile  string // self-signed server certificate (PEM), usable as sslrootcert for verify-full

	root     string      // temporary directory holding everything above
	cred     *credential // set when running as root: the server runs as the postgres OS user
	conf     string      // Options.Conf
	stopOnce sync.Once
	stopped  atomic.Bool
}

// LogEverything is an Options.Conf with which the server logs every statement and session in
// its three formats at once, under log/ in its data directory: postgresql.log (stderr, with
// Debian's log_line_prefix plus %a), postgresql.csv and postgresql.json. For tests whose truth
// is the server's own log.
const LogEverything = `
logging_collector = on
log_destination = 'stderr,csvlog,jsonlog'
log_directory = 'log'
log_filename = 'postgresql.log'
log_rotation_age = 0
log_rotation_size = 0
log_line_prefix = '%m [%p] %q%u@%d/%a '
log_connections = on
log_disconnections = on
log_statement = 'all'
`

// Options change the cluster StartWith (and pgtest's MainWith) makes; the zero value is Start's.
type Options struct {
	// Conf is appended to the server's settings (postgresql.conf lines), after the launcher's
	// own, so it wins: for settings only a restart changes, such as logging_collector.
	Conf string
}

// Start creates and starts a fresh cluster; see the package documentation.
func Start() (*Cluster, error) { return StartWith(Options{}) }

// StartWith is Start with opt.
func StartWith(opt Options) (*Cluster, error) {
	if err := supported(); err != nil {
		return nil, err
	}
	bin, err := FindBinDir()
	if err != nil {
		return nil, err
	}
	cred, err := serverCredential()
	if err != nil {
		return nil, err
	}
	reapStale(bin, cred)

	root, err := os.MkdirTemp("", dirPrefix)
	if err != nil {
		return nil, err
	}
	c := &Cluster{
		Host:      "127.0.0.1",
		DataDir:   filepath.Join(root, "data"),
		SocketDir: filepath.Join(root, "sock"),
		LogFile:   filepath.Join(root, "postgres.log"),
		BinDir:    bin,
		CertFile:  filepath.Join(root, "server.crt"),
		root:      root,
		cred:      cred,
		conf:      opt.Conf,
	}
	if err := c.start(); err != nil {
		c.Stop()
		return nil, err
	}
	return c, nil
}

func (c *Cluster) start() error {
	// Written first so that a later run can clean up after this process if it
	// dies without calling Stop (e.g. a go test -timeout panic).
	if err := os.WriteFile(filepath.Join(c.root, "owner.pid"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return err
	}
	if err := os.Mkdir(c.SocketDir, 0o700); err != nil {
		return err
	}
	keyFile := filepath.Join(c.root, "server.key")
	if err := writeCert(c.CertFile, keyFile); err != nil {
		return fmt.Errorf("generating TLS certificate: %w", err)
	}
	pwFile := filepath.Join(c.root, "pwfile")
	if err := os.WriteFile(pwFile, []byte(Password+"\n"), 0o600); err != nil {
		return err
	}
	if err := c.chown(c.root, c.SocketDir, c.CertFile, keyFile, pwFile); err != nil {
		return err
	}

	if _, err := c.run("initdb", "-D", c.DataDir, "-U", SuperUser, "--pwfile="+pwFile,
		"-E", "UTF8", "--locale=C", "--auth-local=trust", "--auth-host=scram-sha-256",
		"--no-sync", "--no-instructions"); err != nil {
		return err
	}
	os.Remove(pwFile)
	if err := c.writeFile(filepath.Join(c.DataDir, "pg_hba.conf"), hbaConf); err != nil {
		return err
	}
	// Our settings go in a file of their own, included last so they win, and
	// rewritten on every start attempt with a new port.
	f, err := os.OpenFile(filepath.Join(c.DataDir, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString("\ninclude 'pgtest.conf'\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}

	listen := "127.0.0.1"
	ipv6 := hasIPv6()
	if ipv6 {
		listen += ",::1"
	}
	const attempts = 5
	for i := 1; ; i++ {
		if c.Port, err = freePort(ipv6); err != nil {
			return err
		}
		conf := fmt.Sprintf(serverConf, c.Port, listen, c.SocketDir, c.CertFile, keyFile) + c.conf + "\n"
		if err := c.writeFile(filepath.Join(c.DataDir, "pgtest.conf"), conf); err != nil {
			return err
		}
		logStart := fileSize(c.LogFile)
		_, err = c.run("pg_ctl", "start", "-D", c.DataDir, "-l", c.LogFile, "-w", "-t", strconv.Itoa(int(startTimeout.Seconds())))
		log := c.logSince(logStart)
		// The port was free when we picked it, but another process may have
		// grabbed it before postgres bound it. Postgres starts anyway if it
		// could bind one of the addresses, so check the log even on success.
		if i < attempts && strings.Contains(log, "Address already in use") {
			if err == nil {
				c.run("pg_ctl", "stop", "-D", c.DataDir, "-m", "immediate", "-w")
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("%w\nserver log %s:\n%s", err, c.LogFile, log)
		}
		break
	}

	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	if err := c.ExecContext(ctx, "postgres", fmt.Sprintf(`
		CREATE ROLE %[1]s LOGIN REPLICATION PASSWORD '%[4]s';
		SET password_encryption = 'md5';
		CREATE ROLE %[2]s LOGIN PASSWORD '%[4]s';
		RESET password_encryption;
		CREATE ROLE %[3]s LOGIN;`, ScramUser, MD5User, TrustUser, Password)); err != nil {
		return fmt.Errorf("creating roles: %w", err)
	}
	if err := c.NewDatabase(ctx, Database); err != nil {
		return fmt.Errorf("creating database %s: %w", Database, err)
	}
	return nil
}

const hbaConf = `# generated by pgtest
local all all trust
local replication all trust
host all trust_user 127.0.0.1/32 trust
host all trust_user ::1/128 trust
host all md5_user 127.0.0.1/32 md5
host all md5_user ::1/128 md5
host all all 127.0.0.1/32 scram-sha-256
host all all ::1/128 scram-sha-256
host replication all 127.0.0.1/32 scram-sha-256
host replication all ::1/128 scram-sha-256
`

const serverConf = `# generated by pgtest
port = %d
listen_addresses = '%s'
unix_socket_directories = '%s'
ssl = on
ssl_cert_file = '%s'
ssl_key_file = '%s'
shared_preload_libraries = 'pg_stat_statements'
pg_stat_statements.track = 'all'
pg_stat_statements.max = 10000
wal_level = logical
max_wal_senders = 10
max_replication_slots = 10
max_connections = 300
fsync = off
synchronous_commit = off
full_page_writes = off
password_encryption = 'scram-sha-256'
logging_collector = off
log_line_prefix = '%%m [%%p] %%q%%u@%%d '
log_min_messages = warning
`

// Stopped reports whether Stop was called.
func (c *Cluster) Stopped() bool { return c.stopped.Load() }

// Stop stops the server and removes the cluster's directory. Safe to call twice.
func (c *Cluster) Stop() {
	c.stopOnce.Do(func() {
		c.stopped.Store(true)
		if _, err := os.Stat(filepath.Join(c.DataDir, "postmaster.pid")); err == nil {
			if _, err := c.run("pg_ctl", "stop", "-D", c.DataDir, "-m", "fast", "-w", "-t", "30"); err != nil {
				if _, err := c.run("pg_ctl", "stop", "-D", c.DataDir, "-m", "immediate", "-w", "-t", "10"); err != nil {
					c.kill()
				}
			}
		}
		os.RemoveAll(c.root)
	})
}

// kill is the last resort when pg_ctl cannot stop the server. It only kills
// the pid from postmaster.pid if that process really is this cluster's
// postmaster (its working directory is the data directory), so that a stale
// pid file never gets an unrelated process killed.
func (c *Cluster) kill() {
	b, err := os.ReadFile(filepath.Join(c.DataDir, "postmaster.pid"))
	if err != nil {
		return
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil || pid <= 0 {
		return
	}
	if cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid)); err != nil || cwd != c.DataDir {
		return
	}
	// Backends exit on their own once they notice the postmaster is gone.
	killProcess(pid)
	for range 50 {
		if !signalable(pid) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// reapStale stops and removes clusters left behind by test processes that
// died without calling Stop (go test -timeout panics skip deferred calls).
func reapStale(bin string, cred *credential) {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), dirPrefix+"*"))
	for _, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, "owner.pid"))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 0 || !processGone(pid) {
			continue
		}
		stale := &Cluster{DataDir: filepath.Join(dir, "data"), BinDir: bin, root: dir, cred: cred}
		stale.Stop()
	}
}

// ConnString returns a URL DSN for user over TCP without TLS. The password
// is omitted for TrustUser. db "" means Database.
func (c *Cluster) ConnString(user, db string) string {
	if db == "" {
		db = Database
	}
	u := url.URL{Scheme: "postgres", Host: c.Addr(), Path: "/" + db, RawQuery: "sslmode=disable"}
	if user == TrustUser {
		u.User = url.User(user)
	} else {
		u.User = url.UserPassword(user, Password)
	}
	return u.String()
}

// Addr returns "127.0.0.1:port".
func (c *Cluster) Addr() string {
	return net.JoinHostPort(c.Host, strconv.Itoa(c.Port))
}

// NewDatabase creates database name, owned by SuperUser, with pg_stat_statements and full
// privileges for the ordinary roles.
func (c *Cluster) NewDatabase(ctx context.Context, name string) error {
	// CREATE DATABASE cannot share a multi-statement query (implicit transaction).
	if err := c.ExecContext(ctx, "postgres", "CREATE DATABASE "+quoteIdent(name)+" OWNER "+SuperUser); err != nil {
		return err
	}
	// Since PostgreSQL 15 ordinary roles may no longer create objects in public.
	return c.ExecContext(ctx, name, fmt.Sprintf(`
		CREATE EXTENSION pg_stat_statements;
		GRANT ALL ON DATABASE %[1]s TO %[2]s;
		GRANT ALL ON SCHEMA public TO %[2]s;`,
		quoteIdent(name), strings.Join([]string{ScramUser, MD5User, TrustUser}, ", ")))
}

func quoteIdent(s string) string { return pgx.Identifier{s}.Sanitize() }

// ExecContext runs sql (may contain several statements) as SuperUser in database db ("" means
// Database) over the Unix socket.
func (c *Cluster) ExecContext(ctx context.Context, db, sql string) error {
	if db == "" {
		db = Database
	}
	// The Unix socket with trust auth avoids the SCRAM round trips.
	conn, err := pgx.Connect(ctx, fmt.Sprintf("host='%s' port=%d user=%s dbname='%s' sslmode=disable connect_timeout=10",
		c.SocketDir, c.Port, SuperUser, db))
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	// Without arguments pgx uses the simple protocol, so sql may hold several statements.
	_, err = conn.Exec(ctx, sql)
	return err
}

// Env returns the current environment with any PG* variables replaced by
// ones pointing at the cluster over TCP as SuperUser, and BinDir prepended to
// PATH, for running psql or pgbench against the cluster.
func (c *Cluster) Env() []string {
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "PG") || strings.HasPrefix(kv, "PATH=")
	})
	return append(env,
		"PATH="+c.BinDir+string(os.PathListSeparator)+os.Getenv("PATH"),
		"PGHOST="+c.Host,
		"PGPORT="+strconv.Itoa(c.Port),
		"PGUSER="+SuperUser,
		"PGPASSWORD="+Password,
		"PGDATABASE="+Database,
		"PGSSLMODE=disable",
	)
}

// FindBinDir returns the directory holding initdb: from PATH, else the newest
// /usr/lib/postgresql/<version>/bin.
func FindBinDir() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		// Resolve links: a PATH entry may link initdb alone, without psql and pgbench beside it.
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		}
		return filepath.Dir(p), nil
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	best, bestVer := "", -1.0
	for _, m := range matches {
		dir := filepath.Dir(m)
		v, err := strconv.ParseFloat(filepath.Base(filepath.Dir(dir)), 64)
		if err == nil && v > bestVer {
			best, bestVer = dir, v
		}
	}
	if best == "" {
		return "", ErrNotInstalled
	}
	return best, nil
}

// credential is the OS user the server's programs run as, when not the current one.
type credential struct{ uid, gid int }

// serverCredential returns the credential the server must run as: initdb and
// postgres refuse to run as root, so root uses the postgres OS user.
func serverCredential() (*credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root, but PostgreSQL refuses to run as root and there is no 'postgres' OS user to run it as: %w", err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return nil, err
	}
	return &credential{uid: int(uid), gid: int(gid)}, nil
}

// run runs a PostgreSQL program from BinDir as the server's OS user.
func (c *Cluster) run(name string, args ...string) ([]byte, error) {
	return c.runInput(nil, name, args...)
}

// runInput is run with stdin read from in (nil: none).
func (c *Cluster) runInput(in io.Reader, name string, args ...string) ([]byte, error) {
	cmd := exec.Command(filepath.Join(c.BinDir, name), args...)
	cmd.Stdin = in
	// initdb and pg_ctl fail if they cannot access the current directory,
	// which the postgres user may not be able to do with ours.
	cmd.Dir = c.root
	cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "PG") })
	c.cred.apply(cmd)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, out)
	}
	return out, nil
}

func (c *Cluster) chown(paths ...string) error {
	if c.cred == nil {
		return nil
	}
	for _, p := range paths {
		if err := os.Chown(p, c.cred.uid, c.cred.gid); err != nil {
			return err
		}
	}
	return nil
}

func (c *Cluster) writeFile(path, data string) error {
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		return err
	}
	return c.chown(path)
}

// logSince returns the server log written after offset, i.e. by the last start attempt.
func (c *Cluster) logSince(offset int64) string {
	b, err := os.ReadFile(c.LogFile)
	if err != nil || int64(len(b)) < offset {
		return ""
	}
	return string(b[offset:])
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0 // not written yet
	}
	return fi.Size()
}

func hasIPv6() bool {
	l, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// freePort returns a port that is currently free on 127.0.0.1 (and on ::1 if ipv6).
func freePort(ipv6 bool) (int, error) {
	var lastErr error
	for range 20 {
		l, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		if ipv6 {
			l6, err := net.Listen("tcp6", net.JoinHostPort("::1", strconv.Itoa(port)))
			if err != nil {
				l.Close()
				lastErr = err
				continue
			}
			l6.Close()
		}
		l.Close()
		return port, nil
	}
	return 0, fmt.Errorf("no free TCP port: %w", lastErr)
}

// writeCert writes a self-signed certificate for 127.0.0.1, ::1 and
// localhost. It is its own CA, so clients can pass it as sslrootcert.
func writeCert(certFile, keyFile string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "localhost", Organization: []string{"pgtest"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return err
	}
	// The server refuses a key file readable by group or others.
	return os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600)
}
