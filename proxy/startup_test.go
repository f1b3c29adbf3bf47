package proxy_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/pgpollwatch/pgpollwatch/internal/pgtest"
	"github.com/pgpollwatch/pgpollwatch/proxy"
)

// TestAuthenticationMethodsPassThrough logs in with every method the server offers; the proxy
// relays the exchange untouched and reports each outcome.
func TestAuthenticationMethodsPassThrough(t *testing.T) {
	pg := pgtest.Shared(t)
	p := startProxy(t)
	db := pg.CreateDatabase(t)
	ctx := context.Background()
	for _, user := range []string{pgtest.ScramUser, pgtest.MD5User, pgtest.TrustUser} {
		conn := connect(t, p.connString(user, db))
		var who string
		if err := conn.QueryRow(ctx, "SELECT current_user").Scan(&who); err != nil || who != user {
			t.Fatalf("%s: current_user %q, %v", user, who, err)
		}
	}
	_, err := pgconn.Connect(ctx, strings.Replace(p.connString(pgtest.ScramUser, db), pgtest.Password, "wrong", 1))
	if sqlstate(err) != "28P01" {
		t.Fatalf("wrong password: want 28P01, got %v", err)
	}
	waitFor(t, "4 auth outcomes", func() bool {
		p.obs.mu.Lock()
		defer p.obs.mu.Unlock()
		return len(p.obs.auth) == 4
	})
	got := strings.Join(p.obs.auth, ",")
	if got != "ok,ok,ok,28P01" {
		t.Fatalf("auth outcomes %s", got)
	}
}

// TestStartupParametersReachServer checks that options and application_name are forwarded as sent.
func TestStartupParametersReachServer(t *testing.T) {
	pg := pgtest.Shared(t)
	p := startProxy(t)
	db := pg.CreateDatabase(t)
	conn := connect(t, p.connString(pgtest.ScramUser, db, "application_name=poller", "options='-c work_mem=7MB'"))
	var app, wm string
	if err := conn.QueryRow(context.Background(), "SELECT current_setting('application_name'), current_setting('work_mem')").Scan(&app, &wm); err != nil {
		t.Fatal(err)
	}
	if app != "poller" || wm != "7MB" {
		t.Fatalf("application_name %q work_mem %q", app, wm)
	}
	p.obs.mu.Lock()
	info := p.obs.opened[0]
	p.obs.mu.Unlock()
	if info.ApplicationName != "poller" || info.User != pgtest.ScramUser || info.Database != db || !strings.HasPrefix(info.ClientAddr, "127.0.0.1:") {
		t.Fatalf("ConnInfo %+v", info)
	}
}

// TestProtocol32NegotiationPassesThrough asks for protocol 3.2; PostgreSQL 15 answers with
// NegotiateProtocolVersion, which must reach the client so it settles on 3.0.
func TestProtocol32NegotiationPassesThrough(t *testing.T) {
	pg := pgtest.Shared(t)
	p := startProxy(t)
	db := pg.CreateDatabase(t)
	conn := connect(t, p.connString(pgtest.ScramUser, db, "max_protocol_version=3.2"))
	var n int
	if err := conn.QueryRow(context.Background(), "SELECT 7").Scan(&n); err != nil || n != 7 {
		t.Fatalf("%d %v", n, err)
	}
	p.obs.mu.Lock()
	proto := p.obs.opened[0].Protocol
	p.obs.mu.Unlock()
	if proto != pgproto3.ProtocolVersion32 {
		t.Fatalf("startup asked for protocol %d, want 3.2", proto)
	}
}

// TestUpstreamTLS connects to the server over TLS as the upstream DSN's sslmode says.
func TestUpstreamTLS(t *testing.T) {
	pg := pgtest.Shared(t)
	for _, mode := range []string{"require", "verify-full sslrootcert=" + pg.CertFile, "prefer"} {
		p := startProxy(t, withUpstream("host=127.0.0.1 port="+portOf(pg.Addr())+" sslmode="+mode))
		conn := connect(t, p.connString(pgtest.ScramUser, pgtest.Database))
		var ssl bool
		if err := conn.QueryRow(context.Background(), "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").Scan(&ssl); err != nil || !ssl {
			t.Fatalf("sslmode=%s: upstream connection ssl=%v, %v", mode, ssl, err)
		}
	}
}

// TestClientTLSTermination checks TLS towards the client, and that sslmode=require fails
// without it.
func TestClientTLSTermination(t *testing.T) {
	conf, caFile := selfSignedTLS(t)
	p := startProxy(t, withTLS(conf))
	conn := connect(t, p.connString(pgtest.ScramUser, pgtest.Database, "sslmode=verify-full", "sslrootcert="+caFile))
	if _, ok := conn.PgConn().Conn().(*tls.Conn); !ok {
		t.Fatal("client connection is not TLS")
	}
	plain := startProxy(t)
	_, err := pgconn.Connect(context.Background(), plain.connString(pgtest.ScramUser, pgtest.Database, "sslmode=require"))
	if err == nil || !strings.Contains(err.Error(), "server refused TLS connection") {
		t.Fatalf("sslmode=require against a proxy without TLS: %v", err)
	}
	connect(t, plain.connString(pgtest.ScramUser, pgtest.Database, "sslmode=prefer"))
}

// TestBytesInjectedAfterSSLRequestCloseConnection is the CVE-2021-23214 class: plaintext sent
// right behind SSLRequest must not be taken as if it had come over TLS.
func TestBytesInjectedAfterSSLRequestCloseConnection(t *testing.T) {
	conf, _ := selfSignedTLS(t)
	p := startProxy(t, withTLS(conf))
	c, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	startup, _ := (&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersion30,
		Parameters: map[string]string{"user": pgtest.TrustUser, "database": pgtest.Database}}).Encode(nil)
	query, _ := (&pgproto3.Query{String: "SELECT 'injected'"}).Encode(nil)
	msg := append([]byte{0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f}, startup...)
	c.Write(append(msg, query...))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, _ := io.ReadAll(c)
	if len(got) == 0 || got[0] != 'S' {
		t.Fatalf("want 'S' then close, got %q", got)
	}
	if bytes.Contains(got, []byte("injected")) || len(got) > 1 && got[1] == 'R' {
		t.Fatalf("injected bytes were processed: %q", got)
	}
	if p.srv.ActiveConnections() > 0 {
		waitFor(t, "connection closed", func() bool { return p.srv.ActiveConnections() == 0 })
	}
	p.obs.mu.Lock()
	defer p.obs.mu.Unlock()
	if len(p.obs.opened) != 0 {
		t.Fatal("a session was opened from injected bytes")
	}
}

// TestGSSEncRequestIsRefused answers GSSENCRequest 'N' and carries on with the startup.
func TestGSSEncRequestIsRefused(t *testing.T) {
	p := startProxy(t)
	c := rawConn(t, p.addr)
	c.Write([]byte{0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x30})
	var b [1]byte
	if _, err := io.ReadFull(c, b[:]); err != nil || b[0] != 'N' {
		t.Fatalf("GSSENCRequest answered %q, %v", b[0], err)
	}
	fe := startupTrust(t, c)
	fe.Send(&pgproto3.Query{String: "SELECT 1"})
	fe.Flush()
	expectMessages(t, fe, "T", "D", "C", "Z")
}

// TestMalformedMessageClosesOnlyThatConnection sends garbage in the middle of a session.
func TestMalformedMessageClosesOnlyThatConnection(t *testing.T) {
	p := startProxy(t, func(c *proxy.Config) { c.MaxMessageSize = 1 << 20 })
	other := connect(t, p.connString(pgtest.ScramUser, pgtest.Database))
	cases := map[string][]byte{
		"unknown type":      {'z', 0, 0, 0, 4},
		"length under 4":    {'Q', 0, 0, 0, 2},
		"over max size":     {'Q', 0, 0x20, 0, 0},
		"Query without NUL": append([]byte{'Q', 0, 0, 0, 8}, "SELE"...),
		"Bind truncated":    append([]byte{'B', 0, 0, 0, 6}, 0, 0),
	}
	for name, garbage := range cases {
		t.Run(name, func(t *testing.T) {
			c := rawConn(t, p.addr)
			fe := startupTrust(t, c)
			c.Write(garbage)
			msg := receive(t, fe)
			er, ok := msg.(*pgproto3.ErrorResponse)
			if !ok || er.Code != "08P01" || er.Severity != "FATAL" {
				t.Fatalf("want FATAL 08P01, got %#v", msg)
			}
			if _, err := fe.Receive(); err == nil {
				t.Fatal("connection still open after FATAL")
			}
		})
	}
	var n int
	if err := other.QueryRow(context.Background(), "SELECT 1").Scan(&n); err != nil {
		t.Fatalf("another connection was hurt: %v", err)
	}
}

// TestUnreachableUpstream gives the client a FATAL 08006 naming the upstream, in time.
func TestUnreachableUpstream(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := ln.Addr().String()
	ln.Close()
	p := startProxy(t, withUpstream("host=127.0.0.1 port="+portOf(dead)+" sslmode=disable"))
	start := time.Now()
	_, err := pgconn.Connect(context.Background(), p.connString(pgtest.ScramUser, pgtest.Database))
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "08006" || pe.Severity != "FATAL" || !strings.Contains(pe.Message, dead) {
		t.Fatalf("want FATAL 08006 naming %s, got %v", dead, err)
	}
	if time.Since(start) > 3*time.Second {
		t.Fatalf("took %v", time.Since(start))
	}
	// An upstream that accepts but never answers is bounded by the connect timeout (here the
	// TLS negotiation that sslmode=require starts with never completes).
	mute := muteListener(t)
	p2 := startProxy(t, withUpstream("host=127.0.0.1 port="+portOf(mute.Addr().String())+" sslmode=require"),
		func(c *proxy.Config) { c.ConnectTimeout = 300 * time.Millisecond })
	start = time.Now()
	_, err = pgconn.Connect(context.Background(), p2.connString(pgtest.ScramUser, pgtest.Database))
	if sqlstate(err) != "08006" || time.Since(start) > 3*time.Second {
		t.Fatalf("mute upstream: %v after %v", err, time.Since(start))
	}
}

// TestShutdownDrainsThenCloses lets an idle session live through the grace period, then tells
// it why it is closed.
func TestShutdownDrainsThenCloses(t *testing.T) {
	p := startProxy(t)
	conn := connect(t, p.connString(pgtest.ScramUser, pgtest.Database))
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := p.srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown: %v", err)
	}
	if d := time.Since(start); d < 250*time.Millisecond || d > 3*time.Second {
		t.Fatalf("Shutdown took %v", d)
	}
	_, err := conn.Exec(context.Background(), "SELECT 1")
	if sqlstate(err) != "57P01" {
		t.Fatalf("after shutdown: want 57P01, got %v", err)
	}
	if _, err := net.DialTimeout("tcp", p.addr, time.Second); err == nil {
		t.Fatal("still accepting after Shutdown")
	}
}

// --- raw protocol helpers ---

func rawConn(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	t.Cleanup(func() { c.Close() })
	return c
}

// startupTrust logs in as the trust user and reads up to the first ReadyForQuery.
func startupTrust(t *testing.T, c net.Conn) *pgproto3.Frontend {
	t.Helper()
	fe := pgproto3.NewFrontend(c, c)
	fe.Send(&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersion30,
		Parameters: map[string]string{"user": pgtest.TrustUser, "database": pgtest.Database}})
	if err := fe.Flush(); err != nil {
		t.Fatal(err)
	}
	for {
		msg := receive(t, fe)
		switch m := msg.(type) {
		case *pgproto3.ReadyForQuery:
			return fe
		case *pgproto3.ErrorResponse:
			t.Fatalf("startup: %s", m.Message)
		}
	}
}

func receive(t *testing.T, fe *pgproto3.Frontend) pgproto3.BackendMessage {
	t.Helper()
	msg, err := fe.Receive()
	if err != nil {
		t.Fatalf("receive: %v", err)
	}
	return msg
}

// expectMessages reads messages and checks their type letters in order.
func expectMessages(t *testing.T, fe *pgproto3.Frontend, types ...string) {
	t.Helper()
	for _, want := range types {
		msg := receive(t, fe)
		if got := typeLetter(msg); got != want {
			t.Fatalf("got %s (%#v), want %s", got, msg, want)
		}
	}
}

func typeLetter(msg pgproto3.BackendMessage) string {
	b, _ := msg.Encode(nil)
	if len(b) == 0 {
		return "?"
	}
	return string(b[0])
}

// selfSignedTLS makes a server certificate for 127.0.0.1 and returns a config and the PEM file
// clients can trust.
func selfSignedTLS(t *testing.T) (*tls.Config, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "pgpollwatch test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:     []string{"localhost"},
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true,

		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	file := t.TempDir() + "/ca.pem"
	if err := writePEM(file, "CERTIFICATE", der); err != nil {
		t.Fatal(err)
	}
	cert := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, file
}

func writePEM(file, typ string, der []byte) error {
	return os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600)
}

// TestFlushAnsweredWithoutSync sends Parse/Bind/Execute/Flush and expects the answers at once:
// the proxy must not hold anything back waiting for a Sync.
func TestFlushAnsweredWithoutSync(t *testing.T) {
	p := startProxy(t)
	c := rawConn(t, p.addr)
	fe := startupTrust(t, c)
	fe.Send(&pgproto3.Parse{Query: "SELECT 42"})
	fe.Send(&pgproto3.Bind{})
	fe.Send(&pgproto3.Execute{})
	fe.Send(&pgproto3.Flush{})
	if err := fe.Flush(); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	expectMessages(t, fe, "1", "2", "D", "C")
	fe.Send(&pgproto3.Sync{})
	fe.Flush()
	expectMessages(t, fe, "Z")
	waitFor(t, "the flushed statement's event", func() bool { return countEvents(p.obs, "SELECT 42") == 1 })
}

// TestConnectionEventsCarryStats checks the opened/closed events and what closed reports.
func TestConnectionEventsCarryStats(t *testing.T) {
	p := startProxy(t)
	conn := connect(t, p.connString(pgtest.ScramUser, pgtest.Database, "application_name=stats"))
	for i := 0; i < 3; i++ {
		if _, err := conn.Exec(context.Background(), "SELECT 1"); err != nil {
			t.Fatal(err)
		}
	}
	conn.Close(context.Background())
	waitFor(t, "the close event", func() bool {
		p.obs.mu.Lock()
		defer p.obs.mu.Unlock()
		return len(p.obs.closed) == 1
	})
	p.obs.mu.Lock()
	defer p.obs.mu.Unlock()
	st := p.obs.closed[0]
	if st.Statements != 3 || st.BytesFromClient < 50 || st.BytesFromServer < 200 || st.Duration <= 0 || st.Err != nil {
		t.Fatalf("closed stats %+v", st)
	}
	if p.obs.opened[0].ApplicationName != "stats" || p.obs.opened[0].Params["user"] != pgtest.ScramUser {
		t.Fatalf("opened %+v", p.obs.opened[0])
	}
	for k := range p.obs.opened[0].Params {
		if strings.Contains(strings.ToLower(k), "password") {
			t.Fatalf("startup parameters hold %q", k)
		}
	}
}
