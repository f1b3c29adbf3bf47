package sqlscan

import (
	"bytes"
	"encoding/binary"
)

// The fingerprint is a 64-bit hash of the normalized token stream. It is a
// fixed-seed, word-at-a-time hash implemented here so that it is stable
// across processes, versions and platforms (do not change it: stored
// fingerprints would stop matching) and so that identifier bytes can be
// lower-cased eight at a time while they are hashed (see lower8).
//
// Each token costs one step per started 8-byte word of its text (or one
// step for its payload: a parameter number, a punctuation byte, a constant
// class). A step is h = g_m(h ^ w) with g_m(x) = y ^ y>>32, y = x*m, a
// bijection for every odd m. The token's first step uses a multiplier
// derived from its tag (token class and length), so tags cost nothing
// extra yet can never be confused with text; later words use a fixed
// multiplier. Because every step is a bijection, two token streams that
// differ in a single token of the same class and length never collide.
// The final avalanche is MurmurHash3's fmix64.

const (
	hashSeed = 0x243f6a8885a308d3 // digits of pi: an arbitrary fixed seed
	hashMul  = 0x9e3779b97f4a7c15 // odd
	tagMulK  = 0x6eed0e9da4d94a4e // even, so hashMul ^ tag*tagMulK stays odd
)

// Tags of the token classes that enter the hash (they must stay below
// 256: text tokens put their length above them).
const (
	tagIdent     uint64 = iota + 1 // identifier or keyword (text: case-folded / unquoted value)
	tagQuotedRaw                   // malformed quoted identifier (text, verbatim)
	tagOp                          // operator (text)
	tagPunct                       // punctuation (payload: the byte)
	tagCast                        // ::
	tagParam                       // $n (payload: n)
	tagConst                       // constant (payload: hash class)
	tagInList                      // collapsed IN list (payload: set of hash classes)
	tagSep                         // boundary between two statements
	tagOther                       // stray byte (payload: the byte)
	tagSortPos                     // ORDER BY / GROUP BY column number (payload: the number)
)

// Hash classes of constants: what pg_stat_statements' jumbling can tell
// apart (it hashes a Const's type, never its value).
const (
	hcString  uint8 = iota + 1 // '...', E'', U&'', $$: type unknown, resolved from context (also NULL)
	hcNString                  // N'...': PostgreSQL lexes it as the type name nchar + '...'
	hcBits                     // B'...', X'...': type bit
	hcInt                      // integer that fits int4
	hcBigint                   // integer that fits int8
	hcNumeric                  // any other number
	hcBool                     // TRUE, FALSE
)

type hasher struct{ h uint64 }

func (h *hasher) reset() { h.h = hashSeed }

// step adds one word with multiplier m (odd).
func (h *hasher) step(w, m uint64) {
	x := (h.h ^ w) * m
	h.h = x ^ x>>32
}

// tagMul is the multiplier of a token's first step: distinct tags give
// distinct odd multipliers.
func tagMul(tag uint64) uint64 { return hashMul ^ tag*tagMulK }

// tok adds a token without text: its tag and a payload word.
func (h *hasher) tok(tag, payload uint64) { h.step(payload, tagMul(tag)) }

// text adds a token with text b verbatim.
func (h *hasher) text(tag uint64, b []byte) {
	m := tagMul(tag | uint64(len(b))<<8)
	if len(b) <= 8 {
		h.step(load(b), m)
		return
	}
	h.step(binary.LittleEndian.Uint64(b), m)
	for b = b[8:]; len(b) >= 8; b = b[8:] {
		h.step(binary.LittleEndian.Uint64(b), hashMul)
	}
	if len(b) > 0 {
		h.step(load(b), hashMul)
	}
}

// foldRest adds the words of b with ASCII letters lower-cased (so that
// hashing an identifier's folded text needs no copy), after the token's
// first step.
func (h *hasher) foldRest(b []byte) {
	for ; len(b) >= 8; b = b[8:] {
		h.step(lower8(binary.LittleEndian.Uint64(b)), hashMul)
	}
	if len(b) > 0 {
		h.step(lower8(load(b)), hashMul)
	}
}

// sum returns the final fingerprint, never 0.
func (h *hasher) sum() uint64 {
	x := h.h
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	if x == 0 {
		x = 1
	}
	return x
}

// Fingerprint returns the fingerprint [Normalize] computes for src, without
// producing the normalized text. It never returns 0.
func Fingerprint(src []byte) uint64 {
	var n normalizer
	n.init(src, false)
	n.run()
	return n.h.sum()
}

// hashQuotedIdent hashes a quoted identifier by its value, exactly like an
// unquoted identifier with that (already folded) spelling.
func (n *normalizer) hashQuotedIdent(b []byte) {
	if l := len(b); l >= 2 && b[0] == '"' && b[l-1] == '"' && bytes.IndexByte(b[1:l-1], '"') < 0 {
		v := b[1 : l-1]
		n.h.text(tagIdent, v)
		return
	}
	var buf [128]byte
	if v, ok := UnquoteIdent(buf[:0], b); ok {
		n.h.text(tagIdent, v)
		return
	}
	n.h.text(tagQuotedRaw, b)
}
