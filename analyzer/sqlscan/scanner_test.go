package sqlscan

import (
	"fmt"
	"strings"
	"testing"
)

// tokens renders the token stream of src as "Kind:text" items.
func tokens(src string) []string {
	var s Scanner
	s.Reset([]byte(src))
	var out []string
	for {
		t := s.Next()
		if t.Kind == EOF {
			if t.Start != len(src) || t.End != len(src) {
				out = append(out, fmt.Sprintf("bad EOF %d:%d", t.Start, t.End))
			}
			return out
		}
		out = append(out, t.Kind.String()+":"+src[t.Start:t.End])
	}
}

func TestScanner(t *testing.T) {
	tests := []struct {
		src  string
		want string // space-separated Kind:text, "|" separates tokens containing spaces
	}{
		// identifiers and keywords
		{`SELECT a$1, _x, Ünïcödé FROM t`, `Ident:SELECT|Ident:a$1|Punct:,|Ident:_x|Punct:,|Ident:Ünïcödé|Ident:FROM|Ident:t`},
		{`"Foo ""bar"""."x"`, `QuotedIdent:"Foo ""bar"""|Punct:.|QuotedIdent:"x"`},
		{`U&"d\0061t\+000061" u&"x"`, `QuotedIdent:U&"d\0061t\+000061"|QuotedIdent:u&"x"`},
		{`U & 'x'`, `Ident:U|Operator:&|String:'x'`},
		// every string form
		{`'it''s'`, `String:'it''s'`},
		{`'a\'`, `String:'a\'`}, // standard_conforming_strings: backslash is literal
		{`E'a\'b' e'\\'`, `String:E'a\'b'|String:e'\\'`},
		{`E'x''y'`, `String:E'x''y'`},
		{`N'abc' n'x'`, `String:N'abc'|String:n'x'`},
		{`B'1010' X'1F' b'' x'ff'`, `String:B'1010'|String:X'1F'|String:b''|String:x'ff'`},
		{`U&'d\0061t\+000061'`, `String:U&'d\0061t\+000061'`},
		{`$$a'b$$`, `String:$$a'b$$`},
		{`$fn$ body $$ inner $$ $fn$`, `String:$fn$ body $$ inner $$ $fn$`},
		{`$a$x$ba$a$`, `String:$a$x$ba$a$`},
		{`$a$ $ab$ $a$`, `String:$a$ $ab$ $a$`},
		{`$_1$x$_1$`, `String:$_1$x$_1$`},
		{`$Tag$x$tag$ y $Tag$`, `String:$Tag$x$tag$ y $Tag$`}, // tags are case-sensitive
		// continuation across a newline joins constants; without a newline it does not
		{"'a'\n'b'", "String:'a'\n'b'"},
		{"'a' -- c\n  'b'", "String:'a' -- c\n  'b'"},
		{"E'a'\r\n'\\''", "String:E'a'\r\n'\\''"},
		{`'a' 'b'`, `String:'a'|String:'b'`},
		{"'a' /* c */\n'b'", "String:'a'|String:'b'"},
		{"'a'\n", "String:'a'"},
		{"'a' --x", "String:'a'"},
		// numbers
		{`42 4.2 .5 5. 1e10 1.5E-3 2e+7 1_000_000 0x1F 0X_ff 0o17 0b1010 007`, `Number:42|Number:4.2|Number:.5|Number:5.|Number:1e10|Number:1.5E-3|Number:2e+7|Number:1_000_000|Number:0x1F|Number:0X_ff|Number:0o17|Number:0b1010|Number:007`},
		{`1..10 a...b`, `Number:1|Operator:..|Number:10|Ident:a|Operator:..|Punct:.|Ident:b`},
		{`1e 1e+ 0x 1_ 1__2 0b12`, `Number:1|Ident:e|Number:1|Ident:e|Operator:+|Number:0|Ident:x|Number:1|Ident:_|Number:1|Ident:__2|Number:0b1|Number:2`},
		{`123abc t.5`, `Number:123|Ident:abc|Ident:t|Number:.5`},
		// params
		{`$1 $23 $0`, `Param:$1|Param:$23|Param:$0`},
		{`$1abc`, `Param:$1|Ident:abc`},
		{`x$1`, `Ident:x$1`},
		{`$ $x $`, `Other:$|Other:$|Ident:x|Other:$`},
		// operators
		{`a->>'k' b->'k' c @> d <@ e != f <> g <= h >= i || j`, `Ident:a|Operator:->>|String:'k'|Ident:b|Operator:->|String:'k'|Ident:c|Operator:@>|Ident:d|Operator:<@|Ident:e|Operator:!=|Ident:f|Operator:<>|Ident:g|Operator:<=|Ident:h|Operator:>=|Ident:i|Operator:|||Ident:j`},
		{`x=-5`, `Ident:x|Operator:=|Operator:-|Number:5`},
		{`x*-+5`, `Ident:x|Operator:*|Operator:-|Operator:+|Number:5`},
		{`x@-5 x?-y x%-1`, `Ident:x|Operator:@-|Number:5|Ident:x|Operator:?-|Ident:y|Ident:x|Operator:%-|Number:1`},
		{`x--5`, `Ident:x`},
		{`x+--c` + "\n" + `5`, `Ident:x|Operator:+|Number:5`},
		{`x*/*c*/5`, `Ident:x|Operator:*|Number:5`},
		{`a := 1 => 2`, `Ident:a|Operator::=|Number:1|Operator:=>|Number:2`},
		{"a ~~* b `x` #", "Ident:a|Operator:~~*|Ident:b|Operator:`|Ident:x|Operator:`|Operator:#"},
		// casts and punctuation
		{`x::int[]`, `Ident:x|Cast:::|Ident:int|Punct:[|Punct:]`},
		{`'5'::numeric(10,2)`, `String:'5'|Cast:::|Ident:numeric|Punct:(|Number:10|Punct:,|Number:2|Punct:)`},
		{`a[1:2];`, `Ident:a|Punct:[|Number:1|Punct::|Number:2|Punct:]|Punct:;`},
		{`{\`, `Other:{|Other:\`},
		// comments
		{"a /* x /* nested */ still */ b -- tail\nc", `Ident:a|Ident:b|Ident:c`},
		{"a /*/ b */ c", `Ident:a|Ident:c`},
		{"a /**/ b", `Ident:a|Ident:b`},
		{"-- only", ``},
		{"a\v\f\r\tb", `Ident:a|Ident:b`},
		// unterminated input runs to the end
		{`'abc`, `String:'abc`},
		{`E'abc\`, `String:E'abc\`},
		{`E'abc\'`, `String:E'abc\'`},
		{`"abc`, `QuotedIdent:"abc`},
		{`$$abc`, `String:$$abc`},
		{`$q$abc$q`, `String:$q$abc$q`},
		{`a /* never closed`, `Ident:a`},
		{`a /* /* */`, `Ident:a`},
		{"'a'\n'", "String:'a'\n'"},
		{`U&'x`, `String:U&'x`},
		{`B'10`, `String:B'10`},
	}
	for _, tt := range tests {
		got := strings.Join(tokens(tt.src), "|")
		if got != tt.want {
			t.Errorf("tokens(%q)\n got: %s\nwant: %s", tt.src, got, tt.want)
		}
	}
}

func TestEqualFold(t *testing.T) {
	for _, tt := range []struct {
		tok, word string
		want      bool
	}{
		{"SELECT", "select", true},
		{"SeLeCt", "select", true},
		{"select", "select", true},
		{"selec", "select", false},
		{"SELECTS", "select", false},
		{"ÉTAT", "état", false}, // only ASCII folds, as in PostgreSQL with UTF-8
		{"", "", true},
	} {
		if got := EqualFold([]byte(tt.tok), tt.word); got != tt.want {
			t.Errorf("EqualFold(%q, %q) = %v", tt.tok, tt.word, got)
		}
	}
}

func TestLower8(t *testing.T) {
	for c := 0; c < 256; c++ {
		for pos := 0; pos < 8; pos++ {
			var b [8]byte
			for i := range b {
				b[i] = byte(c + i*37)
			}
			b[pos] = byte(c)
			w := lower8(load(b[:]))
			for i := range b {
				if got, want := byte(w>>(8*i)), lower[b[i]]; got != want {
					t.Fatalf("lower8 byte %#x -> %#x, want %#x", b[i], got, want)
				}
			}
		}
	}
}

func TestLoad(t *testing.T) {
	b := []byte("abcdefghij")
	for n := 0; n <= 8; n++ {
		var want uint64
		for i := n - 1; i >= 0; i-- {
			want = want<<8 | uint64(b[i])
		}
		if got := load(b[:n]); got != want {
			t.Errorf("load(%q) = %#x, want %#x", b[:n], got, want)
		}
	}
}

func TestKeywordLookup(t *testing.T) {
	for id := kw(1); id < kwCount; id++ {
		w := kwWords[id]
		if got := lookupKeyword([]byte(strings.ToUpper(w))); got != id {
			t.Errorf("lookupKeyword(%q) = %d, want %d", w, got, id)
		}
	}
	for _, w := range []string{"id", "task_id", "selec", "selectx", "", "a", "celery_taskmeta", "inn", "nul"} {
		if got := lookupKeyword([]byte(w)); got != kwNone {
			t.Errorf("lookupKeyword(%q) = %d, want none", w, got)
		}
	}
}
