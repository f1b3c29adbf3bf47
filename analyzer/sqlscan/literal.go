package sqlscan

import (
	"math"
	"math/bits"
)

// Typing literals the way PostgreSQL does, without converting them.

// stringClass classifies a String token by its first byte.
func stringClass(c byte) (ConstKind, uint8) {
	switch c {
	case 'n', 'N':
		return ConstString, hcNString
	case 'b', 'B', 'x', 'X':
		return ConstBitString, hcBits
	}
	return ConstString, hcString
}

// classifyNumber gives the type PostgreSQL assigns a numeric literal: int4
// if the (signed) integer fits, else int8 if it fits, else numeric; any
// literal with a '.' or exponent is numeric.
func classifyNumber(b []byte, neg bool) (ConstKind, uint8) {
	mag, ok := parseUint(b)
	if !ok {
		return ConstNumeric, hcNumeric
	}
	lim32, lim64 := uint64(math.MaxInt32), uint64(math.MaxInt64)
	if neg {
		lim32++
		lim64++
	}
	switch {
	case mag <= lim32:
		return ConstInteger, hcInt
	case mag <= lim64:
		return ConstBigint, hcBigint
	}
	return ConstNumeric, hcNumeric
}

// parseUint parses an integer literal (decimal, 0x, 0o, 0b, with
// underscores). ok is false for non-integers and on uint64 overflow.
func parseUint(b []byte) (v uint64, ok bool) {
	base := uint64(10)
	i := 0
	if len(b) > 2 && b[0] == '0' {
		switch b[1] | 0x20 {
		case 'x':
			base, i = 16, 2
		case 'o':
			base, i = 8, 2
		case 'b':
			base, i = 2, 2
		}
	}
	for ; i < len(b); i++ {
		c := b[i]
		var d uint64
		switch {
		case c == '_':
			continue
		case isDigit(c):
			d = uint64(c - '0')
		case base == 16 && class[c]&cHex != 0:
			d = uint64(hexVal(c))
		default:
			return 0, false
		}
		hi, lo := bits.Mul64(v, base)
		lo2, carry := bits.Add64(lo, d, 0)
		if hi != 0 || carry != 0 {
			return 0, false
		}
		v = lo2
	}
	return v, true
}

// maxParamNumber caps parameter numbers so placeholder numbering cannot
// overflow; PostgreSQL's own limit is far lower.
const maxParamNumber = 1 << 30

// paramNumber parses the digits of $n, saturating at maxParamNumber.
func paramNumber(digits []byte) int {
	v := 0
	for _, c := range digits {
		v = v*10 + int(c-'0')
		if v >= maxParamNumber {
			return maxParamNumber
		}
	}
	return v
}
