package analyzer_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/pgpollwatch/pgpollwatch/analyzer"
	"github.com/pgpollwatch/pgpollwatch/analyzer/sqlscan"
	"github.com/pgpollwatch/pgpollwatch/internal/pgtest"
)

// corpusStatement is one statement of the grouping corpus; args make it run with the extended
// protocol (as psycopg3, pgx or JDBC send it), none with the simple protocol (as psycopg2 does).
type corpusStatement struct {
	sql  string
	args []any
}

func s(sql string, args ...any) corpusStatement { return corpusStatement{sql, args} }

// fingerprintCorpus is realistic traffic: Celery/SQLAlchemy lookups and their connect-time
// queries, Django ORM lookups, psycopg3-style parameters, pgbench, CTEs, comments, every string
// syntax, casts, DDL and transaction control. Statements are chosen in families whose members
// PostgreSQL may or may not group; the test lets the server decide.
var fingerprintCorpus = []corpusStatement{
	// Celery's SQLAlchemy backend: the poll, with different keys and spellings.
	s(sqlalchemyPoll + "'b5517ae9-59ef-46e7-808b-1da17dab9721'"),
	s(sqlalchemyPoll + "'1f6a65f7-48da-44b8-8b4b-70fd0ee8d800'"),
	s(sqlalchemyPoll + "E'3b6f1504-326a-4133-a08d-daf67170a1d1'"),
	s(strings.ToLower(sqlalchemyPoll) + "'x'"),
	s("/* celery poll */ " + sqlalchemyPoll + "'y'   "),
	s(sqlalchemyPoll + "$$dollar-quoted$$"),
	s("SELECT celery_taskmeta.id, celery_taskmeta.status FROM celery_taskmeta WHERE celery_taskmeta.task_id = 'k'"),
	s("SELECT celery_tasksetmeta.id, celery_tasksetmeta.taskset_id, celery_tasksetmeta.result, celery_tasksetmeta.date_done FROM celery_tasksetmeta WHERE celery_tasksetmeta.taskset_id = 'g1'"),
	s("SELECT celery_tasksetmeta.id, celery_tasksetmeta.taskset_id, celery_tasksetmeta.result, celery_tasksetmeta.date_done FROM celery_tasksetmeta WHERE celery_tasksetmeta.taskset_id = 'g2'"),
	s("INSERT INTO celery_taskmeta (id, task_id, status, date_done) VALUES (nextval('task_id_sequence'), 'w1', 'PENDING', '2024-01-01 00:00:00')"),
	s("INSERT INTO celery_taskmeta (id, task_id, status, date_done) VALUES (nextval('task_id_sequence'), 'w2', 'STARTED', '2024-01-02 00:00:00')"),
	s("UPDATE celery_taskmeta SET status='SUCCESS', result='\\x80'::bytea, date_done=now() WHERE celery_taskmeta.id = 1"),
	s("UPDATE celery_taskmeta SET status='FAILURE', result='\\x81'::bytea, date_done=now() WHERE celery_taskmeta.id = 2"),
	s("DELETE FROM celery_taskmeta WHERE celery_taskmeta.task_id = 'gone'"),
	// SQLAlchemy's first-connect queries (each new NullPool connection runs them).
	s("select pg_catalog.version()"),
	s("select current_schema()"),
	s("show transaction isolation level"),
	s("show standard_conforming_strings"),
	s("SELECT CAST('test plain returns' AS VARCHAR(60)) AS anon_1"),
	s("SELECT CAST('test unicode returns' AS VARCHAR(60)) AS anon_1"),
	// Django ORM.
	s(`SELECT "django_celery_results_taskresult"."id", "django_celery_results_taskresult"."task_id", "django_celery_results_taskresult"."status" FROM "django_celery_results_taskresult" WHERE "django_celery_results_taskresult"."task_id" = 'abc' LIMIT 21`),
	s(`SELECT "django_celery_results_taskresult"."id", "django_celery_results_taskresult"."task_id", "django_celery_results_taskresult"."status" FROM "django_celery_results_taskresult" WHERE "django_celery_results_taskresult"."task_id" = 'def' LIMIT 1`),
	s(`SELECT django_celery_results_taskresult.id, django_celery_results_taskresult.task_id, django_celery_results_taskresult.status FROM django_celery_results_taskresult WHERE django_celery_results_taskresult.task_id = 'ghi' LIMIT 21`),
	s(`SELECT "django_celery_results_groupresult"."id", "django_celery_results_groupresult"."group_id" FROM "django_celery_results_groupresult" WHERE "django_celery_results_groupresult"."group_id" = 'grp' LIMIT 21`),
	s(`SELECT COUNT(*) AS "__count" FROM "django_celery_results_taskresult" WHERE "django_celery_results_taskresult"."status" IN ('SUCCESS', 'FAILURE')`),
	s(`SELECT COUNT(*) AS "__count" FROM "django_celery_results_taskresult" WHERE "django_celery_results_taskresult"."status" IN ('PENDING', 'RETRY')`),
	s(`SELECT COUNT(*) AS "__count" FROM "django_celery_results_taskresult" WHERE "django_celery_results_taskresult"."status" IN ('SUCCESS')`),
	s(`UPDATE "django_celery_results_taskresult" SET "status" = 'SUCCESS' WHERE "django_celery_results_taskresult"."task_id" = 'abc'`),
	// psycopg3 / pgx: bound parameters, with and without casts.
	s("SELECT status FROM celery_taskmeta WHERE task_id = $1::VARCHAR", "a"),
	s("SELECT status FROM celery_taskmeta WHERE task_id = $1::VARCHAR", "b"),
	s("SELECT status FROM celery_taskmeta WHERE task_id = 'lit'::VARCHAR"),
	s("SELECT status FROM celery_taskmeta WHERE task_id = 'lit2'"),
	s("SELECT id FROM jobs WHERE id = $1", 1),
	s("SELECT id FROM jobs WHERE id = $1", 2),
	s("SELECT id FROM jobs WHERE id = $1 AND name = $2", 1, "n"),
	s("SELECT $1::int", 5),
	// pgbench.
	s("SELECT abalance FROM pgbench_accounts WHERE aid = 123;"),
	s("SELECT abalance FROM pgbench_accounts WHERE aid = 99999"),
	s("-- the pgbench select\nSELECT abalance FROM pgbench_accounts WHERE aid = 7"),
	s("UPDATE pgbench_accounts SET abalance = abalance + -4 WHERE aid = 5;"),
	s("UPDATE pgbench_accounts SET abalance = abalance + 7 WHERE aid = 6;"),
	s("INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (1, 2, 3, -5, CURRENT_TIMESTAMP);"),
	s("INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (4, 5, 6, 700, CURRENT_TIMESTAMP);"),
	// Constant types: PostgreSQL keeps int4, int8 and numeric constants apart.
	s("SELECT name FROM jobs WHERE id = 5"),
	s("SELECT name FROM jobs WHERE id = 6"),
	s("SELECT name FROM jobs WHERE id = 5000000000"),
	s("SELECT name FROM jobs WHERE id = 5.0"),
	s("SELECT name FROM jobs WHERE done = true"),
	s("SELECT name FROM jobs WHERE done = false"),
	s("SELECT name FROM jobs WHERE name = U&'\\0061bc'"),
	s("SELECT name FROM jobs WHERE name = 'abc'"),
	s("SELECT name FROM jobs WHERE payload->>'state' = 'done'"),
	s("SELECT name FROM jobs WHERE payload->>'owner' = 'me'"),
	s("SELECT * FROM jobs ORDER BY id LIMIT 10 OFFSET 20"),
	s("SELECT * FROM jobs ORDER BY id LIMIT 5 OFFSET 0"),
	s("SELECT '2024-01-01'::date"),
	s("SELECT '2025-02-02'::date"),
	s("SELECT 1"),
	s("SELECT 2"),
	s("SELECT 1, 2"),
	// CTEs and subqueries.
	s("WITH t AS (SELECT task_id FROM celery_taskmeta WHERE status = 'PENDING') SELECT count(*) FROM t"),
	s("WITH t AS (SELECT task_id FROM celery_taskmeta WHERE status = 'RETRY') SELECT count(*) FROM t"),
	s("SELECT count(*) FROM (SELECT task_id FROM celery_taskmeta WHERE status = 'RETRY') t"),
	s("SELECT name FROM jobs WHERE id IN (SELECT id FROM jobs WHERE done = false)"),
	// Transaction control and other utility statements (one spelling each: see below).
	s("BEGIN"),
	s("COMMIT"),
	s("ROLLBACK"),
	s("SET search_path TO public"),
	s("SHOW work_mem"),
	s("CREATE TEMP TABLE scratch (a int)"),
	s("DROP TABLE IF EXISTS scratch"),
}

// knownDifferences lists, by the statements' indexes in fingerprintCorpus, the pairs where
// pgpollwatch groups on purpose differently from pg_stat_statements (PostgreSQL 15):
//   - a list of constants in IN (...) is collapsed, so lists of different lengths share one
//     fingerprint: the analyzer wants one entry per query shape (PostgreSQL 18 does the same).
var knownDifferences = map[[2]int]string{
	{24, 26}: "IN-list length", {25, 26}: "IN-list length",
}

// TestFingerprintsGroupLikePgStatStatements runs every corpus statement through the proxy and
// checks that two statements share a pgpollwatch fingerprint if and only if they share a
// pg_stat_statements queryid on the real server. Utility statements are spelled once each:
// for them PostgreSQL hashes the statement's text, so two spellings of BEGIN differ there while
// pgpollwatch, which normalizes, groups them (a documented difference).
func TestFingerprintsGroupLikePgStatStatements(t *testing.T) {
	pg := pgtest.Shared(t)
	if len(fingerprintCorpus) < 60 {
		t.Fatalf("corpus has %d statements, want at least 60", len(fingerprintCorpus))
	}
	db := pg.CreateDatabase(t)
	celerySchema(t, db)
	pendingTasks(t, db, "one", "two")
	pg.Exec(t, db, `CREATE TABLE django_celery_results_taskresult (id serial PRIMARY KEY, task_id varchar(255) UNIQUE, status varchar(50));
CREATE TABLE django_celery_results_groupresult (id serial PRIMARY KEY, group_id varchar(255) UNIQUE);
CREATE TABLE jobs (id int PRIMARY KEY, name text, done boolean, payload jsonb);
CREATE TABLE pgbench_accounts (aid int PRIMARY KEY, abalance int);
CREATE TABLE pgbench_history (tid int, bid int, aid int, delta int, mtime timestamp);
GRANT ALL ON ALL TABLES IN SCHEMA public TO scram_user;
GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO scram_user;`)
	p := startAnalyzedProxy(t, analyzer.Config{})
	ctx := context.Background()
	conn := mustConnect(t, p.dsn(db, "corpus"))
	super := mustConnect(t, fmt.Sprintf("host=127.0.0.1 port=%d user=%s password=%s dbname=%s sslmode=disable", pg.Port, pgtest.SuperUser, pgtest.Password, pgtest.Database))

	queryID := make([]int64, len(fingerprintCorpus))
	fp := make([]uint64, len(fingerprintCorpus))
	for i, st := range fingerprintCorpus {
		if _, err := super.Exec(ctx, "SELECT pg_stat_statements_reset()"); err != nil {
			t.Fatal(err)
		}
		var err error
		if len(st.args) == 0 {
			_, err = conn.Exec(ctx, st.sql, pgx.QueryExecModeSimpleProtocol)
		} else {
			_, err = conn.Exec(ctx, st.sql, st.args...)
		}
		if err != nil {
			t.Fatalf("statement %d %q: %v", i, st.sql, err)
		}
		rows, err := super.Query(ctx, `SELECT s.queryid FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = $1`, db)
		if err != nil {
			t.Fatal(err)
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil || len(ids) != 1 {
			t.Fatalf("statement %d %q: pg_stat_statements has %v (%v), want exactly one entry", i, st.sql, ids, err)
		}
		queryID[i] = ids[0]
		fp[i] = sqlscan.Fingerprint([]byte(st.sql))
	}

	// Every fingerprint must be the one the analyzer recorded for the traffic it saw.
	seen := map[string]bool{}
	for _, f := range p.an.Snapshot().Fingerprints {
		seen[f.Fingerprint] = true
	}
	for i, f := range fp {
		if !seen[fmt.Sprintf("%016x", f)] {
			t.Errorf("statement %d %q: fingerprint %016x not among the analyzer's", i, fingerprintCorpus[i].sql, f)
		}
	}
	var groups = map[int64]bool{}
	for i := range fingerprintCorpus {
		groups[queryID[i]] = true
		for j := i + 1; j < len(fingerprintCorpus); j++ {
			sameFP, sameID := fp[i] == fp[j], queryID[i] == queryID[j]
			if sameFP == sameID {
				continue
			}
			if why, ok := knownDifferences[[2]int{i, j}]; ok {
				t.Logf("known difference (%s): %d and %d", why, i, j)
				continue
			}
			t.Errorf("statements %d and %d: same fingerprint %v, same queryid %v\n  %q\n  %q", i, j, sameFP, sameID, fingerprintCorpus[i].sql, fingerprintCorpus[j].sql)
		}
	}
	t.Logf("%d statements, %d distinct queryids", len(fingerprintCorpus), len(groups))
}
