package sqlscan

import (
	"testing"
)

func TestUnquote(t *testing.T) {
	tests := []struct {
		tok  string
		want string
		ok   bool
	}{
		{`'abc'`, "abc", true},
		{`''`, "", true},
		{`'it''s'`, "it's", true},
		{`'a\nb'`, `a\nb`, true}, // backslash is literal without E
		{`N'it''s'`, "it's", true},
		{"'foo'\n'bar'", "foobar", true},
		{"'foo' -- comment\n  'bar'\r\n'baz'", "foobarbaz", true},
		{`E'a\nb\tc\\d\'e''f'`, "a\nb\tc\\d'e'f", true},
		{`e'\b\f\r\v\q'`, "\b\f\rvq", true}, // unknown escapes stand for the character
		{`E'\101\x41\u0041\U00000041'`, "AAAA", true},
		{`E'\7\07\007\0101'`, "\a\a\a\b1", true},
		{`E'\xe2\x82\xac'`, "€", true},         // bytes forming valid UTF-8
		{`E'\u20AC \U0001F600'`, "€ 😀", true},  // BMP and astral
		{`E'\uD83D\uDE00'`, "😀", true},         // surrogate pair
		{`E'\xZ'`, "xZ", true},                 // \x without digits is x
		{`E'\777'`, "", false},                 // 0xFF alone is not UTF-8
		{`E'\0'`, "", false},                   // NUL is rejected
		{`E'\x00'`, "", false},                 // NUL is rejected
		{`E'\xff'`, "", false},                 // invalid UTF-8
		{`E'\u12'`, "", false},                 // short \u
		{`E'\U0011FFFF'`, "", false},           // beyond Unicode
		{`E'\uD83D'`, "", false},               // lone high surrogate
		{`E'\uDE00'`, "", false},               // lone low surrogate
		{`E'\u0000'`, "", false},               // NUL code point
		{"E'a\\n'\n'\\t'", "a\n\t", true},      // escapes continue in continuation parts
		{`U&'d\0061t\+000061'`, "data", true},  // U& escapes
		{`U&'\\ \20AC'`, `\ €`, true},          // escaped escape
		{`u&'\D83D\DE00'`, "😀", true},          // surrogate pair
		{`U&'it''s'`, "it's", true},            // quote doubling
		{`U&'\D83D'`, "", false},               // lone surrogate
		{`U&'\zzzz'`, "", false},               // bad escape
		{`U&'\12'`, "", false},                 // short escape
		{`U&'\+11FFFF'`, "", false},            // beyond Unicode
		{`B'1010'`, "1010", true},              // bit strings keep their digits
		{`B'102'`, "", false},                  // not binary
		{`X'1Fa0'`, "1Fa0", true},              // hex digits
		{`x'1G'`, "", false},                   // not hex
		{"B'10'\n'01'", "1001", true},          // continued bit string
		{`$$it's \n$$`, `it's \n`, true},       // dollar quotes are verbatim
		{`$fn$ a $$ b $fn$`, ` a $$ b `, true}, // with a tag
		{`$$`, "", false},                      // unterminated
		{`$$$`, "", false},                     // unterminated
		{`$a$x$b$`, "", false},                 // mismatched tags
		{`'abc`, "", false},                    // unterminated
		{`E'abc\'`, "", false},                 // unterminated
		{`'a' 'b'`, "", false},                 // not one token
		{`"abc"`, "", false},                   // an identifier, not a string
		{`42`, "", false},                      // not a string
		{`'`, "", false},                       // too short
		{``, "", false},                        // empty
	}
	for _, tt := range tests {
		prefix := []byte("pre:")
		got, ok := Unquote(prefix, []byte(tt.tok))
		if ok != tt.ok {
			t.Errorf("Unquote(%q) ok = %v, want %v (value %q)", tt.tok, ok, tt.ok, got)
			continue
		}
		want := "pre:" + tt.want
		if string(got) != want {
			t.Errorf("Unquote(%q) = %q, want %q", tt.tok, got, want)
		}
	}
}

// Every String token the scanner produces for well-formed input must
// unquote.
func TestUnquoteScannedTokens(t *testing.T) {
	src := "SELECT 'a', E'b\\'', N'c', U&'\\0064', B'1', X'f', $$e$$, $t$f$t$, 'g'\n'h'"
	var s Scanner
	s.Reset([]byte(src))
	for tok := s.Next(); tok.Kind != EOF; tok = s.Next() {
		if tok.Kind != String {
			continue
		}
		if _, ok := Unquote(nil, s.Text(tok)); !ok {
			t.Errorf("Unquote(%q) failed", s.Text(tok))
		}
	}
}

func TestUnquoteIdent(t *testing.T) {
	tests := []struct {
		tok  string
		want string
		ok   bool
	}{
		{`"Foo"`, "Foo", true},
		{`"a ""b"" c"`, `a "b" c`, true},
		{`"celery_taskmeta"`, "celery_taskmeta", true},
		{`CeLeRy_TaskMeta`, "celery_taskmeta", true}, // unquoted: folded
		{`ÉTAT`, "État", true},                       // only ASCII folds
		{`a$1`, "a$1", true},
		{`U&"d\0061t\+000061"`, "data", true},
		{`u&"\\x"`, `\x`, true},
		{`U&"a""b"`, `a"b`, true},
		{`U&"\D83D"`, "", false},
		{`""`, "", false}, // zero-length delimited identifier
		{`"abc`, "", false},
		{`"a"b"`, "", false},
		{`'a'`, "", false},
		{`1a`, "", false},
		{`a-b`, "", false},
		{``, "", false},
	}
	for _, tt := range tests {
		got, ok := UnquoteIdent([]byte("x."), []byte(tt.tok))
		if ok != tt.ok {
			t.Errorf("UnquoteIdent(%q) ok = %v, want %v (value %q)", tt.tok, ok, tt.ok, got)
			continue
		}
		if want := "x." + tt.want; string(got) != want {
			t.Errorf("UnquoteIdent(%q) = %q, want %q", tt.tok, got, want)
		}
	}
}

func TestUnquoteAllocs(t *testing.T) {
	buf := make([]byte, 0, 64)
	toks := [][]byte{[]byte(`'it''s'`), []byte(`E'\u20AC\n'`), []byte(`U&'\20AC'`), []byte(`$$x$$`), []byte(`"A""b"`)}
	allocs := testing.AllocsPerRun(100, func() {
		for _, tok := range toks[:4] {
			buf, _ = Unquote(buf[:0], tok)
		}
		buf, _ = UnquoteIdent(buf[:0], toks[4])
	})
	if allocs != 0 {
		t.Errorf("Unquote allocates %v times per run", allocs)
	}
}
