package sqlscan

import (
	"slices"
	"testing"
)

func TestSplit(t *testing.T) {
	tests := []struct {
		src  string
		want []string
	}{
		{``, nil},
		{`  ;; -- c`, nil},
		{`SELECT 1`, []string{`SELECT 1`}},
		{`SELECT 1;`, []string{`SELECT 1`}},
		{"BEGIN;\nSELECT 1 ;\n COMMIT", []string{`BEGIN`, `SELECT 1`, `COMMIT`}},
		{`SELECT 'a;b'; SELECT "c;d"; SELECT $$e;f$$; SELECT $t$;$t$`, []string{`SELECT 'a;b'`, `SELECT "c;d"`, `SELECT $$e;f$$`, `SELECT $t$;$t$`}},
		{"SELECT E'\\';'; SELECT 2", []string{`SELECT E'\';'`, `SELECT 2`}},
		{"SELECT 1 -- ; not here\n; SELECT /* ; */ 2", []string{"SELECT 1 -- ; not here", "SELECT /* ; */ 2"}},
		{"SELECT 1; /* lead */ SELECT 2 /* tail */ ;", []string{"SELECT 1", "/* lead */ SELECT 2 /* tail */"}},
		{`SELECT (1; 2); SELECT 3`, []string{`SELECT (1; 2)`, `SELECT 3`}},
		{`SELECT 1); SELECT 2`, []string{`SELECT 1)`, `SELECT 2`}},
		// SQL-standard function bodies: BEGIN ATOMIC ... END, with CASE ... END nesting
		{`CREATE OR REPLACE FUNCTION f(x int) RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT CASE WHEN x > 0 THEN 1 ELSE 2 END; SELECT 3; END; SELECT f(1);`,
			[]string{`CREATE OR REPLACE FUNCTION f(x int) RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT CASE WHEN x > 0 THEN 1 ELSE 2 END; SELECT 3; END`, `SELECT f(1)`}},
		{`CREATE PROCEDURE p() BEGIN ATOMIC INSERT INTO t VALUES (1); END; CALL p()`,
			[]string{`CREATE PROCEDURE p() BEGIN ATOMIC INSERT INTO t VALUES (1); END`, `CALL p()`}},
		// a transaction BEGIN is not a function body
		{`BEGIN; SELECT 1; END;`, []string{`BEGIN`, `SELECT 1`, `END`}},
		{`CREATE TABLE begin_t (a int); BEGIN; SELECT 1`, []string{`CREATE TABLE begin_t (a int)`, `BEGIN`, `SELECT 1`}},
		// unterminated constructs swallow the rest
		{`SELECT 'a; SELECT 2`, []string{`SELECT 'a; SELECT 2`}},
		{`SELECT 1 /* ; SELECT 2`, []string{`SELECT 1 /* ; SELECT 2`}},
	}
	for _, tt := range tests {
		var got []string
		Split([]byte(tt.src), func(stmt []byte) bool {
			got = append(got, string(stmt))
			return true
		})
		if !slices.Equal(got, tt.want) {
			t.Errorf("Split(%q)\n got: %q\nwant: %q", tt.src, got, tt.want)
		}
		if n := norm(tt.src).Statements; n != len(tt.want) {
			t.Errorf("Normalize(%q).Statements = %d, want %d", tt.src, n, len(tt.want))
		}
		// The iterator yields the same.
		var viaIter []string
		for stmt := range Statements([]byte(tt.src)) {
			viaIter = append(viaIter, string(stmt))
		}
		if !slices.Equal(viaIter, tt.want) {
			t.Errorf("Statements(%q) = %q", tt.src, viaIter)
		}
	}
}

func TestSplitStops(t *testing.T) {
	n := 0
	Split([]byte("SELECT 1; SELECT 2; SELECT 3"), func([]byte) bool {
		n++
		return n < 2
	})
	if n != 2 {
		t.Errorf("fn called %d times after returning false", n)
	}
	for range Statements([]byte("SELECT 1; SELECT 2")) {
		break // must not panic
	}
}

// Normalizing each piece of Split gives the text pg_stat_statements would
// record per statement.
func TestSplitThenNormalize(t *testing.T) {
	src := []byte("SET x = 1; SELECT * FROM t WHERE id = $1 AND s = 'a'; COMMIT;")
	var got []string
	Split(src, func(stmt []byte) bool {
		got = append(got, string(Normalize(nil, nil, stmt).Normalized))
		return true
	})
	want := []string{"SET x = $1", "SELECT * FROM t WHERE id = $1 AND s = $2", "COMMIT"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}
