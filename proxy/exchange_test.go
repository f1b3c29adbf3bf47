package proxy

import (
	"testing"

	"github.com/jackc/pgx/v5/pgproto3"
)

// TestExchangeEvents: a round trip that runs no statement (pgx prepares each new statement
// with Parse/Describe/Sync before its first Execute; a bare Sync) is an Exchange event, so an
// observer of pauses knows the client was waiting on the server then; a batch that executes
// makes no exchange, and exchanges are not counted as statements.
func TestExchangeEvents(t *testing.T) {
	obs := &eventsObserver{}
	fe, be := budgetSession(obs)
	prepare := encode(&pgproto3.Parse{Name: "s1", Query: "SELECT $1::text"}, &pgproto3.Describe{ObjectType: 'S', Name: "s1"}, &pgproto3.Sync{})
	feed(t, fe, prepare)
	feed(t, be, encode(&pgproto3.ParseComplete{}, &pgproto3.ParameterDescription{ParameterOIDs: []uint32{25}},
		&pgproto3.RowDescription{Fields: []pgproto3.FieldDescription{{Name: []byte("text"), DataTypeOID: 25}}}, &pgproto3.ReadyForQuery{TxStatus: 'I'}))
	if len(obs.exchanges) != 1 || len(obs.texts) != 0 {
		t.Fatalf("prepare: %d exchanges, %d statements; want 1, 0", len(obs.exchanges), len(obs.texts))
	}
	if ev := obs.exchanges[0]; ev.Start.IsZero() || ev.Duration < 0 || len(ev.Text) != 0 {
		t.Errorf("prepare's exchange: %+v", ev)
	}
	feed(t, fe, encode(&pgproto3.Bind{PreparedStatement: "s1", Parameters: [][]byte{[]byte("x")}}, &pgproto3.Execute{}, &pgproto3.Sync{}))
	feed(t, be, encode(&pgproto3.BindComplete{}, &pgproto3.DataRow{Values: [][]byte{[]byte("x")}},
		&pgproto3.CommandComplete{CommandTag: []byte("SELECT 1")}, &pgproto3.ReadyForQuery{TxStatus: 'I'}))
	if len(obs.exchanges) != 1 || len(obs.texts) != 1 {
		t.Fatalf("execute: %d exchanges, %d statements; want 1, 1", len(obs.exchanges), len(obs.texts))
	}
	feed(t, fe, encode(&pgproto3.Sync{}))
	feed(t, be, encode(&pgproto3.ReadyForQuery{TxStatus: 'I'}))
	if len(obs.exchanges) != 2 {
		t.Fatalf("bare Sync: %d exchanges, want 2", len(obs.exchanges))
	}
	if n := be.s.statements.Load(); n != 1 {
		t.Errorf("%d statements counted, want 1: exchanges are not statements", n)
	}
}

// TestAuthenticatedAtFirstReady: the server starts the session after AuthenticationOk until
// its first ReadyForQuery, and the client waits all that time, so the observer hears of the
// login then; a FATAL before it (no such database) is a failed login.
func TestAuthenticatedAtFirstReady(t *testing.T) {
	obs := &eventsObserver{}
	_, be := budgetSession(obs)
	feed(t, be, encode(&pgproto3.AuthenticationOk{}, &pgproto3.ParameterStatus{Name: "server_version", Value: "15"}))
	if len(obs.auths) != 0 {
		t.Fatalf("told of the login before ReadyForQuery: %v", obs.auths)
	}
	feed(t, be, encode(&pgproto3.BackendKeyData{ProcessID: 1, SecretKey: []byte{0, 0, 0, 2}}, &pgproto3.ReadyForQuery{TxStatus: 'I'}))
	if len(obs.auths) != 1 || !obs.auths[0] {
		t.Fatalf("after ReadyForQuery: %v, want [true]", obs.auths)
	}

	obs = &eventsObserver{}
	_, be = budgetSession(obs)
	feed(t, be, encode(&pgproto3.AuthenticationOk{}, &pgproto3.ErrorResponse{Severity: "FATAL", SeverityUnlocalized: "FATAL",
		Code: "3D000", Message: `database "nope" does not exist`}))
	if len(obs.auths) != 1 || obs.auths[0] {
		t.Fatalf("FATAL after AuthenticationOk: %v, want [false]", obs.auths)
	}
}
