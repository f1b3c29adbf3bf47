package sqlscan

// Byte classes used by the scanner. A single table lookup per byte is the
// cheapest way to answer "may this byte continue an identifier?" and
// friends, which is what the scanner does for almost every input byte.
const (
	cIdentStart uint8 = 1 << iota // [A-Za-z_\x80-\xff]: starts identifiers and dollar-quote tags
	cIdentCont                    // identStart plus [0-9$]
	cDigit                        // [0-9]
	cHex                          // [0-9A-Fa-f]
	cSpace                        // PostgreSQL's scanner_isspace: space \t \n \r \f \v
	cOp                           // operator characters: ~ ! @ # ^ & | ` ? + - * / % < > =
	cTagCont                      // dollar-quote tag continuation: identStart plus [0-9] (no '$')
)

var class = func() (t [256]uint8) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] |= cIdentStart | cIdentCont | cTagCont
		t[c-'a'+'A'] |= cIdentStart | cIdentCont | cTagCont
	}
	for c := 0x80; c <= 0xff; c++ {
		t[c] |= cIdentStart | cIdentCont | cTagCont
	}
	t['_'] |= cIdentStart | cIdentCont | cTagCont
	for c := '0'; c <= '9'; c++ {
		t[c] |= cIdentCont | cDigit | cHex | cTagCont
	}
	for c := 'a'; c <= 'f'; c++ {
		t[c] |= cHex
		t[c-'a'+'A'] |= cHex
	}
	t['$'] |= cIdentCont
	for _, c := range []byte(" \t\n\r\f\v") {
		t[c] |= cSpace
	}
	for _, c := range []byte("~!@#^&|`?+-*/%<>=") {
		t[c] |= cOp
	}
	return t
}()

// lower maps ASCII upper-case letters to lower case and every other byte to
// itself. PostgreSQL folds unquoted identifiers with exactly this rule in a
// UTF-8 database (downcase_identifier leaves multi-byte characters alone).
var lower = func() (t [256]byte) {
	for i := range t {
		t[i] = byte(i)
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = byte(c - 'A' + 'a')
	}
	return t
}()

func isSpace(c byte) bool     { return class[c]&cSpace != 0 }
func isDigit(c byte) bool     { return class[c]&cDigit != 0 }
func isIdentCont(c byte) bool { return class[c]&cIdentCont != 0 }

// EqualFold reports whether tok, ASCII case-folded the way PostgreSQL folds
// unquoted identifiers, equals word. word must be lower case; it is meant to
// be a literal such as "select". Use it to compare Ident tokens with
// keywords without allocating.
func EqualFold(tok []byte, word string) bool {
	if len(tok) != len(word) {
		return false
	}
	for i := 0; i < len(tok); i++ {
		if lower[tok[i]] != word[i] {
			return false
		}
	}
	return true
}

// skipSpace returns the index of the first non-whitespace byte at or after i.
func skipSpace(src []byte, i int) int {
	for i < len(src) && isSpace(src[i]) {
		i++
	}
	return i
}

// trimSpace trims PostgreSQL whitespace from both ends of b.
func trimSpace(b []byte) []byte {
	i := skipSpace(b, 0)
	j := len(b)
	for j > i && isSpace(b[j-1]) {
		j--
	}
	return b[i:j]
}
