package sqlscan

import (
	"bytes"
	"testing"
)

var fuzzSeeds = []string{
	string(celeryQuery),
	string(djangoQuery),
	string(inListQuery),
	"SELECT abalance FROM pgbench_accounts WHERE aid = 123;",
	"SELECT * FROM t WHERE task_id = $1::VARCHAR AND n = -5 AND b IS NOT TRUE",
	"WITH r AS (SELECT 1) SELECT * FROM r ORDER BY 1, 2 DESC LIMIT 5; COMMIT",
	"SELECT 'a'\n'b', E'\\x41\\'', U&'\\0041' UESCAPE '!', B'1', X'F', N'n', $t$x$t$, $$y$$",
	"SELECT x::varchar(255), date'2020-01-01', 1e5, .5, 0x1F, 1_000, -2147483648, 9223372036854775808",
	"SELECT a->>'k', b @> '{}', c != d, e <> f, g ~~* h, x=-5, y@-5 /* c /* n */ */ -- t\n",
	"CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; END; SELECT 2",
	"COPY t FROM STDIN WITH (NULL '', FORMAT csv); SET x = true; SELECT NULL IS NULL",
	"SELECT * FROM t WHERE id IN (1, -2, 'a', NULL, true) AND x NOT IN ($1, 2)",
	"'unterminated", "E'\\", "$$", "/* open", "\"", "U&\"", "$1abc", "a$1", "0b", "1..2",
	"SELECT EXTRACT(epoch FROM now()) FROM t LIMIT ALL OFFSET - - 5",
	"SELECT CAST('1' AS varchar(10)), CAST(CAST(x AS numeric(5, 2)) AS text), x::timestamp(3)",
	"SELECT a FROM t WHERE a IS DISTINCT FROM NULL AND b IS NOT TRUE AND c NOT IN (NULL, -1)",
	"SELECT a, count(*) FROM t GROUP BY 1 ORDER BY 2 DESC NULLS LAST, 1 LIMIT 10 FOR UPDATE",
	"SELECT row_number() OVER (ORDER BY 1), array_agg(x ORDER BY 2) FROM (SELECT 1 ORDER BY 1) s",
	"CREATE OR REPLACE PROCEDURE p() BEGIN ATOMIC SELECT CASE WHEN true THEN 1 END; END; CALL p()",
	"INSERT INTO t VALUES (NULL, true, -1.5e3, B'1', x'0f', N'n', $1) RETURNING -id",
	"UPDATE t SET a = NULL, b = DEFAULT WHERE c = ANY(ARRAY[1, -2]) AND d[1:-1] = '{}'",
}

func FuzzNormalize(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		orig := bytes.Clone(src)
		checkTokens(t, src)

		r := Normalize(nil, nil, src)
		if !bytes.Equal(src, orig) {
			t.Fatalf("Normalize modified its input")
		}
		checkConsts(t, src, r.Consts)

		// Fingerprint is Normalize's fingerprint, and never 0.
		if fp := Fingerprint(src); fp != r.Fingerprint || fp == 0 {
			t.Fatalf("Fingerprint = %#x, Normalize = %#x", fp, r.Fingerprint)
		}

		// Normalize only appends.
		pre := Normalize([]byte("prefix_"), []Const{{0, 0, ConstNull}}, src)
		if !bytes.Equal(pre.Normalized, append([]byte("prefix_"), r.Normalized...)) || len(pre.Consts) != len(r.Consts)+1 {
			t.Fatalf("Normalize with a prefix gives %q", pre.Normalized)
		}

		// Split agrees with the statement count.
		n := 0
		Split(src, func(stmt []byte) bool {
			if len(stmt) == 0 {
				t.Fatalf("Split yielded an empty statement")
			}
			n++
			return true
		})
		if n != r.Statements {
			t.Fatalf("Split found %d statements, Normalize %d", n, r.Statements)
		}

		// The normalized text is a fixed point: normalizing it finds no
		// constants and changes nothing. (Its fingerprint is NOT that of
		// src: constants became parameters, which PostgreSQL and we hash
		// differently.)
		r2 := Normalize(nil, nil, r.Normalized)
		if len(r2.Consts) != 0 || !bytes.Equal(r2.Normalized, r.Normalized) {
			t.Fatalf("normalizing %q again gives %q with consts %v", r.Normalized, r2.Normalized, r2.Consts)
		}
		// Placeholders are numbered after the highest parameter.
		if len(r.Consts) == 0 && r2.MaxParam != r.MaxParam ||
			len(r.Consts) > 0 && r2.MaxParam <= r.MaxParam && r.MaxParam != maxParamNumber {
			t.Fatalf("MaxParam %d, after normalizing %d (%q)", r.MaxParam, r2.MaxParam, r.Normalized)
		}

		// The fingerprint ignores constant values: substituting a
		// canonical literal of the same class for every constant keeps it.
		if sub := substituteConsts(src, r.Consts); Fingerprint(sub) != r.Fingerprint {
			t.Fatalf("fingerprint changed after substituting constants:\n%q\n%q", src, sub)
		}
	})
}

// checkTokens checks the scanner's invariants and that decoding its
// tokens never panics.
func checkTokens(t *testing.T, src []byte) {
	var s Scanner
	s.Reset(src)
	prevEnd := 0
	for i := 0; ; i++ {
		tok := s.Next()
		if tok.Start < prevEnd || tok.End < tok.Start || tok.End > len(src) {
			t.Fatalf("token %+v out of order (prev end %d, len %d)", tok, prevEnd, len(src))
		}
		if tok.Kind == EOF {
			if tok.Start != len(src) {
				t.Fatalf("EOF at %d, len %d", tok.Start, len(src))
			}
			return
		}
		if tok.End == tok.Start {
			t.Fatalf("empty token %+v", tok)
		}
		if i > len(src) {
			t.Fatalf("more tokens than bytes")
		}
		// Whatever lies between tokens is whitespace or comments.
		var gap Scanner
		gap.Reset(src[prevEnd:tok.Start])
		if g := gap.Next(); g.Kind != EOF {
			t.Fatalf("bytes %q between tokens scan as %v", src[prevEnd:tok.Start], g.Kind)
		}
		prevEnd = tok.End
		text := s.Text(tok)
		switch tok.Kind {
		case String:
			if v, ok := Unquote(nil, text); !ok && len(v) != 0 {
				t.Fatalf("failed Unquote returned %q", v)
			}
		case QuotedIdent, Ident:
			if v, ok := UnquoteIdent(nil, text); !ok && len(v) != 0 {
				t.Fatalf("failed UnquoteIdent returned %q", v)
			} else if ok && tok.Kind == Ident && !EqualFold(text, string(v)) {
				t.Fatalf("UnquoteIdent(%q) = %q", text, v)
			}
		}
	}
}

// substituteConsts replaces every constant by a canonical literal of the
// same fingerprint class (and sign), padded with spaces so it cannot merge
// with its neighbours.
func substituteConsts(src []byte, consts []Const) []byte {
	var out []byte
	last := 0
	for _, c := range consts {
		out = append(out, src[last:c.Start]...)
		var lit string
		switch c.Kind {
		case ConstString:
			lit = "$$x$$" // '-quoted literals could join across a newline
			if src[c.Start]|0x20 == 'n' && c.End-c.Start > 1 && src[c.Start+1] == '\'' {
				lit = "N'x'"
			}
		case ConstBitString:
			lit = "B'1'"
		case ConstInteger:
			lit = "7"
		case ConstBigint:
			lit = "5000000000"
		case ConstNumeric:
			lit = "1.5"
		case ConstBool:
			lit = "true"
		case ConstNull:
			lit = "NULL"
			if EqualFold(src[c.Start:c.End], "all") {
				lit = "ALL" // LIMIT ALL: NULL would read differently before a string
			}
		}
		out = append(out, ' ')
		if src[c.Start] == '-' {
			// A folded sign stays a sign: "- -5" must not become "- 7".
			out = append(out, '-')
		}
		out = append(out, lit...)
		out = append(out, ' ')
		last = int(c.End)
	}
	return append(out, src[last:]...)
}
