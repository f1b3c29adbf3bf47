package sqlscan

import (
	"fmt"
	"strings"
	"testing"
)

func norm(src string) Result { return Normalize(nil, nil, []byte(src)) }

func constKinds(r Result) string {
	var b strings.Builder
	for i, c := range r.Consts {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(c.Kind.String())
	}
	return b.String()
}

func TestNormalizeText(t *testing.T) {
	tests := []struct {
		src, want string
		kinds     string // kinds of Consts, space separated
	}{
		// The statement this package exists for.
		{string(celeryQuery), strings.Replace(string(celeryQuery), "'b5517ae9-59ef-46e7-808b-1da17dab9721'", "$1", 1), "String"},
		// Django (quoted identifiers, LIMIT).
		{`SELECT "django_celery_results_taskresult"."id", "django_celery_results_taskresult"."status" FROM "django_celery_results_taskresult" WHERE "django_celery_results_taskresult"."task_id" = 'abc' LIMIT 21`,
			`SELECT "django_celery_results_taskresult"."id", "django_celery_results_taskresult"."status" FROM "django_celery_results_taskresult" WHERE "django_celery_results_taskresult"."task_id" = $1 LIMIT $2`, "String Integer"},
		// pgbench: trailing ';' is cut, like pg_stat_statements' stmt_len.
		{`SELECT abalance FROM pgbench_accounts WHERE aid = 123;`, `SELECT abalance FROM pgbench_accounts WHERE aid = $1`, "Integer"},
		{`UPDATE pgbench_accounts SET abalance = abalance + -4975 WHERE aid = 12345;`, `UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2`, "Integer Integer"},
		{`INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (7, 1, 40221, -1372, CURRENT_TIMESTAMP);`,
			`INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES ($1, $2, $3, $4, CURRENT_TIMESTAMP)`, "Integer Integer Integer Integer"},
		// psycopg3 / asyncpg: parameters stay, constants number after them.
		{`SELECT * FROM t WHERE task_id = $1::VARCHAR`, `SELECT * FROM t WHERE task_id = $1::VARCHAR`, ""},
		{`SELECT 'a', $2, 5 FROM t WHERE x = $1`, `SELECT $3, $2, $4 FROM t WHERE x = $1`, "String Integer"},
		// every string form is one constant
		{`SELECT 'a', E'b\'', N'c', U&'\0064', B'101', X'ff', $$e$$, $t$f$t$`, `SELECT $1, $2, $3, $4, $5, $6, $7, $8`, "String String String String BitString BitString String String"},
		{"SELECT 'a'\n  'b' AS x", "SELECT $1 AS x", "String"},
		// numbers and signs
		{`SELECT 1, 2147483647, 2147483648, -2147483648, -2147483649, 9223372036854775807, 9223372036854775808, -9223372036854775808, 1.5, 1e3, .5, 0x10, 1_000`,
			`SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13`,
			"Integer Integer Bigint Integer Bigint Bigint Numeric Bigint Numeric Numeric Numeric Integer Integer"},
		{`SELECT -1, - 2, -/*c*/3, 4 - 5, x-6, (-7), f(-8, -9), a[-1], x = -5, x<-5`,
			`SELECT $1, $2, $3, $4 - $5, x-$6, ($7), f($8, $9), a[$10], x = $11, x<$12`, "Integer Integer Integer Integer Integer Integer Integer Integer Integer Integer Integer Integer"},
		{`SELECT x FROM t WHERE a = 1 AND -2 < b OR -3 > c LIMIT -1`, `SELECT x FROM t WHERE a = $1 AND $2 < b OR $3 > c LIMIT $4`, "Integer Integer Integer Integer"},
		{`SELECT -5::int, -5[1], - -5, +5, - - -2147483648, - -2147483648`, `SELECT -$1::int, -$2[$3], $4, +$5, $6, $7`, "Integer Integer Integer Integer Integer Integer Bigint"},
		{`SELECT - -5::int, 5 - - 5, 5 - -/*c*/- 5`, `SELECT - -$1::int, $2 - $3, $4 - $5`, "Integer Integer Integer Integer Integer"},
		// constants the grammar makes out of keywords
		{`SELECT EXTRACT(epoch FROM now() - date_done), extract('year' from x) FROM t LIMIT ALL`, `SELECT EXTRACT($1 FROM now() - date_done), extract($2 from x) FROM t LIMIT $3`, "String String Null"},
		{`SELECT a FROM t WHERE a IS DISTINCT FROM NULL AND b IS NOT DISTINCT FROM NULL AND c IS DISTINCT FROM 'x'`, `SELECT a FROM t WHERE a IS DISTINCT FROM NULL AND b IS NOT DISTINCT FROM NULL AND c IS DISTINCT FROM $1`, "String"},
		{`SELECT CAST('1' AS varchar(10)), CAST(CAST(x AS numeric(5, 2)) AS text), f(1 AS a)`, `SELECT CAST($1 AS varchar(10)), CAST(CAST(x AS numeric(5, 2)) AS text), f($2 AS a)`, "String Integer"},
		{`SELECT x@-5, x=-5`, `SELECT x@-$1, x=$2`, "Integer Integer"},
		// TRUE / FALSE / NULL
		{`SELECT true, FALSE, NULL WHERE a IS TRUE AND b IS NOT FALSE AND c IS NULL AND d IS NOT NULL AND e = NULL`,
			`SELECT $1, $2, $3 WHERE a IS TRUE AND b IS NOT FALSE AND c IS NULL AND d IS NOT NULL AND e = $4`, "Bool Bool Null Null"},
		{`SELECT NOT true`, `SELECT NOT $1`, "Bool"},
		{`INSERT INTO t VALUES (NULL, 'x', DEFAULT)`, `INSERT INTO t VALUES ($1, $2, DEFAULT)`, "Null String"},
		{`CREATE TABLE t (id int NOT NULL, p int REFERENCES q ON DELETE SET NULL)`, `CREATE TABLE t (id int NOT NULL, p int REFERENCES q ON DELETE SET NULL)`, ""},
		{`COPY t FROM STDIN WITH (FORMAT csv, NULL '\N')`, `COPY t FROM STDIN WITH (FORMAT csv, NULL $1)`, "String"},
		// IN lists collapse (PostgreSQL 18 style text)
		{`SELECT * FROM t WHERE id IN (1, 2, 3) AND s NOT IN ('a')`, `SELECT * FROM t WHERE id IN ($1 /*, ... */) AND s NOT IN ($2)`, "Integer Integer Integer String"},
		{`SELECT * FROM t WHERE id IN (-1, 2.5, NULL, true)`, `SELECT * FROM t WHERE id IN ($1 /*, ... */)`, "Integer Numeric Null Bool"},
		{`SELECT * FROM t WHERE id IN (- -1, -2)`, `SELECT * FROM t WHERE id IN ($1 /*, ... */)`, "Integer Integer"},
		{`SELECT * FROM t WHERE id IN ($1, 2)`, `SELECT * FROM t WHERE id IN ($1, $2)`, "Integer"},
		{`SELECT * FROM t WHERE id IN (1+1, 2)`, `SELECT * FROM t WHERE id IN ($1+$2, $3)`, "Integer Integer Integer"},
		{`SELECT * FROM t WHERE id IN ('a'::uuid, 'b')`, `SELECT * FROM t WHERE id IN ($1::uuid, $2)`, "String String"},
		{`SELECT * FROM t WHERE id IN (SELECT 1)`, `SELECT * FROM t WHERE id IN (SELECT $1)`, "Integer"},
		{`SELECT * FROM t WHERE id IN ()`, `SELECT * FROM t WHERE id IN ()`, ""},
		// ORDER BY / GROUP BY column numbers are not constants in PostgreSQL
		{`SELECT a, count(*) FROM t GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 10`, `SELECT a, count(*) FROM t GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT $1`, "Integer"},
		{`SELECT a FROM t ORDER BY a + 1, 2`, `SELECT a FROM t ORDER BY a + $1, 2`, "Integer"},
		{`SELECT array_agg(x ORDER BY 1), row_number() OVER (ORDER BY 1) FROM t`, `SELECT array_agg(x ORDER BY $1), row_number() OVER (ORDER BY $2) FROM t`, "Integer Integer"},
		{`SELECT * FROM (SELECT a FROM t ORDER BY 1) s`, `SELECT * FROM (SELECT a FROM t ORDER BY 1) s`, ""},
		// type modifiers after :: are not constants either
		{`SELECT $1::varchar(255), '1.5'::numeric(10, 2), x::timestamp(3) with time zone`, `SELECT $1::varchar(255), $2::numeric(10, 2), x::timestamp(3) with time zone`, "String"},
		// U&'' UESCAPE: the escape character is syntax
		{`SELECT U&'d!0061t' UESCAPE '!'`, `SELECT $1 UESCAPE '!'`, "String"},
		// glued tokens get a space so the text scans the same way
		{`SELECT date'2020-01-01', int'1'1, x'1'`, `SELECT date $1, int $2 $3, $4`, "String String Integer BitString"},
		{`SELECT 'a'b`, `SELECT $1 b`, "String"},
		// comments and whitespace are kept inside, trimmed outside
		{"  \n/* app=web */ SELECT 1 -- trailing\n ;  ", "/* app=web */ SELECT $1 -- trailing", "Integer"},
		{"SELECT 1 /* sqlcommenter */", "SELECT $1 /* sqlcommenter */", "Integer"},
		{"SELECT 1; -- after", "SELECT $1", "Integer"},
		{";; SELECT 1;;", "SELECT $1", "Integer"},
		// multiple statements: one numbering, middle separators kept
		{"BEGIN; SELECT 1; SELECT 'x';", "BEGIN; SELECT $1; SELECT $2", "Integer String"},
		// CTE and DDL
		{`WITH r AS (SELECT id FROM t WHERE s = 'x' LIMIT 5) UPDATE t SET s = 'y' FROM r WHERE t.id = r.id`,
			`WITH r AS (SELECT id FROM t WHERE s = $1 LIMIT $2) UPDATE t SET s = $3 FROM r WHERE t.id = r.id`, "String Integer String"},
		{`CREATE TABLE t (a varchar(20) DEFAULT 'x', b int DEFAULT -1)`, `CREATE TABLE t (a varchar($1) DEFAULT $2, b int DEFAULT $3)`, "Integer String Integer"},
		{`SET statement_timeout = 5000`, `SET statement_timeout = $1`, "Integer"},
		// nothing to normalize
		{``, ``, ""},
		{`   `, ``, ""},
		{`-- just a comment`, `-- just a comment`, ""},
		{`;`, ``, ""},
	}
	for _, tt := range tests {
		r := norm(tt.src)
		if string(r.Normalized) != tt.want {
			t.Errorf("Normalize(%q)\n got: %q\nwant: %q", tt.src, r.Normalized, tt.want)
		}
		if got := constKinds(r); got != tt.kinds {
			t.Errorf("Normalize(%q) consts = %s, want %s", tt.src, got, tt.kinds)
		}
		checkConsts(t, []byte(tt.src), r.Consts)
	}
}

// checkConsts verifies that consts are ordered, in range, and each one's
// text is a constant token (or a '-' and a number).
func checkConsts(t *testing.T, src []byte, consts []Const) {
	t.Helper()
	prevEnd := int32(0)
	for _, c := range consts {
		if c.Start < prevEnd || c.End <= c.Start || int(c.End) > len(src) {
			t.Fatalf("bad const %+v (prev end %d, len %d) in %q", c, prevEnd, len(src), src)
		}
		prevEnd = c.End
		if !isConstText(src[c.Start:c.End], c.Kind) {
			t.Fatalf("const %+v text %q is not a %v constant token (src %q)", c, src[c.Start:c.End], c.Kind, src)
		}
	}
}

func isConstText(b []byte, kind ConstKind) bool {
	var s Scanner
	s.Reset(b)
	t := s.Next()
	text := func() []byte { return s.Text(t) }
	switch kind {
	case ConstInteger, ConstBigint, ConstNumeric:
		for t.Kind == Operator && string(text()) == "-" {
			t = s.Next()
		}
		if t.Kind != Number {
			return false
		}
	case ConstString, ConstBitString:
		// The field of EXTRACT(field FROM ...) is an identifier.
		if t.Kind != String && (kind != ConstString || t.Kind != Ident) {
			return false
		}
	case ConstBool:
		if t.Kind != Ident || !(EqualFold(text(), "true") || EqualFold(text(), "false")) {
			return false
		}
	case ConstNull:
		// LIMIT ALL is a NULL constant.
		if t.Kind != Ident || !(EqualFold(text(), "null") || EqualFold(text(), "all")) {
			return false
		}
	default:
		return false
	}
	return t.End == len(b) && s.Next().Kind == EOF
}

func TestFingerprintPairs(t *testing.T) {
	same := [][2]string{
		{`SELECT * FROM t WHERE x = 5`, `SELECT * FROM t WHERE x = 7`},
		{`SELECT * FROM t WHERE x = 5`, `select  *  from T where X=5;`},
		{`SELECT * FROM t WHERE x = 5`, "/* c */ SELECT * -- c\n FROM t WHERE x = 5 ;\n\n"},
		{`SELECT * FROM t WHERE x = 5`, `SELECT * FROM t WHERE x = -5`},
		{`SELECT * FROM t WHERE x = 5`, `SELECT * FROM t WHERE x = -2147483648`},
		{`SELECT * FROM t WHERE x = 'abc'`, `SELECT * FROM t WHERE x = E'abc'`},
		{`SELECT * FROM t WHERE x = 'abc'`, `SELECT * FROM t WHERE x = $$abc$$`},
		{`SELECT * FROM t WHERE x = 'abc'`, `SELECT * FROM t WHERE x = $q$a'b$q$`},
		{`SELECT * FROM t WHERE x = 'abc'`, `SELECT * FROM t WHERE x = U&'\0061bc'`},
		{`SELECT * FROM t WHERE x = 'abc'`, "SELECT * FROM t WHERE x = 'a'\n'bc'"},
		{`SELECT * FROM t WHERE x = 'abc'`, `SELECT * FROM t WHERE x = NULL`},
		{`SELECT * FROM t WHERE x = 1.5`, `SELECT * FROM t WHERE x = 1e10`},
		{`SELECT * FROM t WHERE x = 5000000000`, `SELECT * FROM t WHERE x = -6000000000`},
		{`SELECT true`, `SELECT false`},
		{`SELECT "celery_taskmeta".id FROM celery_taskmeta`, `SELECT celery_taskmeta.id FROM "celery_taskmeta"`},
		{`SELECT Foo FROM t`, `SELECT "foo" FROM t`},
		{`SELECT a FROM t WHERE a <> 1`, `SELECT a FROM t WHERE a != 1`},
		{`SELECT * FROM t WHERE id IN (1,2)`, `SELECT * FROM t WHERE id IN (1,2,3)`},
		{`SELECT * FROM t WHERE id IN (1)`, `SELECT * FROM t WHERE id IN (4,5,6,7,8,9)`},
		{`SELECT * FROM t WHERE id IN ('a','b')`, `SELECT * FROM t WHERE id IN ('c')`},
		{`SELECT * FROM t WHERE id IN (1, 5000000000)`, `SELECT * FROM t WHERE id IN (5000000001, 2, 3)`},
		{`SELECT 1;`, `SELECT 1`},
		{`SELECT 1;;`, `;SELECT 2`},
		{`SELECT 1; SELECT 2`, `SELECT 3;; SELECT 4;`},
		{`SELECT $1::varchar(255)`, `SELECT $1::varchar(10)`},
		{`SELECT a FROM t ORDER BY 1`, `SELECT a FROM t ORDER BY 01`},
		{`SELECT U&'x' UESCAPE '!'`, `SELECT U&'y' UESCAPE '#'`},
		{string(celeryQuery), strings.Replace(string(celeryQuery), "b5517ae9-59ef-46e7-808b-1da17dab9721", "00000000-0000-0000-0000-000000000000", 1)},
		{`SELECT "django_celery_results_taskresult"."id" FROM "django_celery_results_taskresult" WHERE "django_celery_results_taskresult"."task_id" = 'abc' LIMIT 21`,
			`SELECT django_celery_results_taskresult.id FROM django_celery_results_taskresult WHERE django_celery_results_taskresult.task_id = 'def' LIMIT 1`},
		{`SELECT abalance FROM pgbench_accounts WHERE aid = 123;`, `SELECT abalance FROM pgbench_accounts WHERE aid = 99999`},
		{`WITH x AS (SELECT 1) SELECT * FROM x`, `with x as (select 2) select * from x`},
		{`CREATE TABLE t (a int DEFAULT 1)`, `CREATE TABLE t (a int DEFAULT 2)`},
	}
	for _, p := range same {
		a, b := Fingerprint([]byte(p[0])), Fingerprint([]byte(p[1]))
		if a != b {
			t.Errorf("fingerprints differ, want same:\n  %q\n  %q", p[0], p[1])
		}
	}
	differ := [][2]string{
		{`SELECT * FROM t WHERE x = 5`, `SELECT * FROM t WHERE x = $1`},
		{`SELECT * FROM t WHERE x = 5`, `SELECT * FROM t WHERE x = 5000000000`},
		{`SELECT * FROM t WHERE x = 5`, `SELECT * FROM t WHERE x = 5.0`},
		{`SELECT * FROM t WHERE x = 5`, `SELECT * FROM t WHERE x = '5'`},
		{`SELECT * FROM t WHERE x = 5`, `SELECT * FROM t WHERE x = true`},
		{`SELECT * FROM t WHERE x = 5`, `SELECT * FROM t WHERE x - 5`},
		{`SELECT * FROM t WHERE x = 2147483647`, `SELECT * FROM t WHERE x = 2147483648`},
		{`SELECT * FROM t WHERE x = $1`, `SELECT * FROM t WHERE x = $2`},
		{`SELECT * FROM t WHERE x = 'a'`, `SELECT * FROM t WHERE x = B'1'`},
		{`SELECT * FROM t WHERE x = 'a'`, `SELECT * FROM t WHERE x = N'a'`},
		{`SELECT * FROM t WHERE x = 'abc'`, `SELECT * FROM t WHERE x = 'a' 'bc'`}, // no newline: two constants (a syntax error)
		{`SELECT Foo FROM t`, `SELECT "Foo" FROM t`},
		{`SELECT a FROM t`, `SELECT b FROM t`},
		{`SELECT a FROM t`, `SELECT a FROM t2`},
		{`SELECT a.b FROM t`, `SELECT "a.b" FROM t`},
		{`SELECT ab FROM t`, `SELECT a b FROM t`},
		{`SELECT * FROM t WHERE id IN (1,2)`, `SELECT * FROM t WHERE id IN ('1','2')`},
		{`SELECT * FROM t WHERE id IN (1,2)`, `SELECT * FROM t WHERE id IN (1, 5000000000)`},
		{`SELECT * FROM t WHERE id IN (1,2)`, `SELECT * FROM t WHERE id IN ($1,$2)`},
		{`SELECT * FROM t WHERE id IN (1,2)`, `SELECT * FROM t WHERE id = 1`},
		{`SELECT 1; SELECT 2`, `SELECT 1`},
		{`SELECT 1; SELECT 2`, `SELECT 1 SELECT 2`},
		{`SELECT a FROM t ORDER BY 1`, `SELECT a FROM t ORDER BY 2`},
		{`SELECT a IS TRUE`, `SELECT a IS FALSE`},
		{`SELECT a IS NULL`, `SELECT a IS NOT NULL`},
		{`SELECT -5::int`, `SELECT -5`},
		{`SELECT x::int`, `SELECT x::bigint`},
		{`SELECT 'a' || 'b'`, `SELECT 'a' + 'b'`},
		{`SELECT (a)`, `SELECT [a]`},
		{`SELECT $1`, `SELECT $2`},
		{`DELETE FROM celery_taskmeta WHERE task_id = 'x'`, `SELECT FROM celery_taskmeta WHERE task_id = 'x'`},
	}
	for _, p := range differ {
		a, b := Fingerprint([]byte(p[0])), Fingerprint([]byte(p[1]))
		if a == b {
			t.Errorf("fingerprints equal, want different:\n  %q\n  %q", p[0], p[1])
		}
	}
}

// Fingerprint and Normalize must agree, and Fingerprint is never 0.
func TestFingerprintMatchesNormalize(t *testing.T) {
	for _, src := range []string{"", " ", ";", "-- c", string(celeryQuery), "SELECT 1; SELECT 2", "x IN (1,2)", "SELECT -1, $3"} {
		r := norm(src)
		if fp := Fingerprint([]byte(src)); fp != r.Fingerprint || fp == 0 {
			t.Errorf("Fingerprint(%q) = %x, Normalize gives %x", src, fp, r.Fingerprint)
		}
	}
	// The empty statement has one fingerprint whatever the spelling.
	if Fingerprint(nil) != Fingerprint([]byte(" ; -- nothing\n;")) {
		t.Error("empty inputs fingerprint differently")
	}
}

// Golden values: the fingerprint must be stable across processes, versions
// and platforms, because fingerprints are stored and compared. Changing
// the hash is a breaking change; update these only deliberately.
func TestFingerprintStable(t *testing.T) {
	for src, want := range map[string]uint64{
		string(celeryQuery): 0x4b19a62c7a854c26,
		"SELECT 1":          0x9bfa32d5d9f37115,
		"":                  0x7acdbb98b1344213,
	} {
		if got := Fingerprint([]byte(src)); got != want {
			t.Errorf("Fingerprint(%.30q) = %#x, want %#x", src, got, want)
		}
	}
}

func TestNormalizeResultFields(t *testing.T) {
	tests := []struct {
		src        string
		cmd        Command
		with       bool
		statements int
		maxParam   int
	}{
		{``, CommandEmpty, false, 0, 0},
		{`-- nothing`, CommandEmpty, false, 0, 0},
		{`select 1`, CommandSelect, false, 1, 0},
		{`(SELECT 1) UNION (SELECT 2)`, CommandSelect, false, 1, 0},
		{`VALUES (1)`, CommandSelect, false, 1, 0},
		{`INSERT INTO t VALUES ($1, $2)`, CommandInsert, false, 1, 2},
		{`update t set a = $12`, CommandUpdate, false, 1, 12},
		{`DELETE FROM t`, CommandDelete, false, 1, 0},
		{`WITH a AS (SELECT 1), b AS MATERIALIZED (DELETE FROM t RETURNING *) SELECT * FROM a, b`, CommandSelect, true, 1, 0},
		{`WITH RECURSIVE r(n) AS (VALUES (1) UNION ALL SELECT n+1 FROM r) INSERT INTO t SELECT * FROM r`, CommandInsert, true, 1, 0},
		{`WITH x AS (SELECT 1) UPDATE t SET a = 1`, CommandUpdate, true, 1, 0},
		{`WITH x AS (SELECT 1)`, CommandWith, true, 1, 0},
		{`BEGIN; SELECT 1; COMMIT;`, CommandBegin, false, 3, 0},
		{`START TRANSACTION ISOLATION LEVEL SERIALIZABLE`, CommandBegin, false, 1, 0},
		{`commit`, CommandCommit, false, 1, 0},
		{`END`, CommandCommit, false, 1, 0},
		{`ROLLBACK TO SAVEPOINT s`, CommandRollback, false, 1, 0},
		{`SAVEPOINT s`, CommandSavepoint, false, 1, 0},
		{`SET search_path = public`, CommandSet, false, 1, 0},
		{`SHOW server_version`, CommandShow, false, 1, 0},
		{`COPY t FROM STDIN`, CommandCopy, false, 1, 0},
		{`EXPLAIN ANALYZE SELECT 1`, CommandExplain, false, 1, 0},
		{`DISCARD ALL`, CommandDiscard, false, 1, 0},
		{`LISTEN jobs`, CommandListen, false, 1, 0},
		{`NOTIFY jobs, 'x'`, CommandNotify, false, 1, 0},
		{`CREATE INDEX ON t (a)`, CommandDDL, false, 1, 0},
		{`FOO BAR`, CommandOther, false, 1, 0},
		{`'x'`, CommandOther, false, 1, 0},
		{`;;SELECT 1;;SELECT 2;`, CommandSelect, false, 2, 0},
		{`SELECT ';'; SELECT $$;$$; SELECT ";"; -- ;`, CommandSelect, false, 3, 0},
		{`SELECT (1;2)`, CommandSelect, false, 1, 0},
		{`CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT CASE WHEN true THEN 1 END; END; SELECT 2`, CommandDDL, false, 2, 0},
		{`SELECT $99999999999999999999`, CommandSelect, false, 1, maxParamNumber},
	}
	for _, tt := range tests {
		r := norm(tt.src)
		if r.Command != tt.cmd || r.With != tt.with || r.Statements != tt.statements || r.MaxParam != tt.maxParam {
			t.Errorf("Normalize(%q): command %v with %v statements %d maxParam %d; want %v %v %d %d",
				tt.src, r.Command, r.With, r.Statements, r.MaxParam, tt.cmd, tt.with, tt.statements, tt.maxParam)
		}
	}
}

// Normalize appends to dst and consts without touching what is there.
func TestNormalizeAppends(t *testing.T) {
	dst := []byte("prefix9")
	consts := []Const{{1, 2, ConstBool}}
	r := Normalize(dst, consts, []byte("SELECT 'x'"))
	if string(r.Normalized) != "prefix9SELECT $1" {
		t.Errorf("Normalized = %q", r.Normalized)
	}
	if len(r.Consts) != 2 || r.Consts[0] != consts[0] || r.Consts[1] != (Const{7, 10, ConstString}) {
		t.Errorf("Consts = %v", r.Consts)
	}
	// Trailing whitespace trimming never eats into dst.
	r = Normalize([]byte("keep "), nil, []byte("   "))
	if string(r.Normalized) != "keep " {
		t.Errorf("Normalized = %q", r.Normalized)
	}
}

func TestNormalizeAllocs(t *testing.T) {
	srcs := [][]byte{celeryQuery, djangoQuery, inListQuery,
		[]byte(`SELECT 'a', $2, 5 FROM t WHERE x = $1 AND "Quoted""Ident" = U&"\0041" ORDER BY 1`)}
	dst := make([]byte, 0, 4096)
	consts := make([]Const, 0, 64)
	allocs := testing.AllocsPerRun(100, func() {
		for _, src := range srcs {
			r := Normalize(dst[:0], consts[:0], src)
			dst, consts = r.Normalized, r.Consts
			_ = Fingerprint(src)
		}
	})
	if allocs != 0 {
		t.Errorf("Normalize allocates %v times per run", allocs)
	}
}

func ExampleNormalize() {
	src := []byte(`SELECT id, status FROM celery_taskmeta WHERE task_id = 'b5517ae9' AND id IN (1, 2, 3);`)
	r := Normalize(nil, nil, src)
	fmt.Println(string(r.Normalized))
	for _, c := range r.Consts {
		fmt.Println(c.Kind, string(src[c.Start:c.End]))
	}
	fmt.Println(r.Command, r.Statements, r.Fingerprint == Fingerprint([]byte(`select id,status from celery_taskmeta where task_id='x' and id in (4)`)))
	// Output:
	// SELECT id, status FROM celery_taskmeta WHERE task_id = $1 AND id IN ($2 /*, ... */)
	// String 'b5517ae9'
	// Integer 1
	// Integer 2
	// Integer 3
	// Select 1 true
}
