package sqlscan

import "encoding/binary"

// kw identifies the few keywords the normalizer and splitter look at. The
// scanner itself has no notion of keywords (PostgreSQL's lexer only tells
// them apart from identifiers by table lookup, too).
type kw uint8

const (
	kwNone kw = iota
	// statement verbs
	kwSelect
	kwInsert
	kwUpdate
	kwDelete
	kwMerge
	kwWith
	kwValues
	kwTable
	kwBegin
	kwStart
	kwCommit
	kwEnd
	kwRollback
	kwAbort
	kwSavepoint
	kwRelease
	kwPrepare
	kwExecute
	kwDeallocate
	kwSet
	kwReset
	kwShow
	kwCopy
	kwExplain
	kwCreate
	kwAlter
	kwDrop
	kwTruncate
	kwGrant
	kwRevoke
	kwComment
	kwVacuum
	kwAnalyze
	kwLock
	kwListen
	kwNotify
	kwUnlisten
	kwDiscard
	kwCall
	kwDo
	kwDeclare
	kwFetch
	kwClose
	// expression context
	kwIn
	kwIs
	kwNot
	kwNull
	kwTrue
	kwFalse
	kwUescape
	kwOrder
	kwGroup
	kwBy
	kwLimit
	kwOffset
	kwHaving
	kwWindow
	kwUnion
	kwIntersect
	kwExcept
	kwReturning
	kwFor
	kwAnd
	kwOr
	kwThen
	kwElse
	kwWhen
	kwCase
	kwWhere
	kwOn
	kwBetween
	kwReturn
	kwDistinct
	kwAll
	kwDefault
	kwLike
	kwIlike
	kwTo
	kwFrom
	kwZone
	kwEscape
	kwUsing
	kwFunction
	kwProcedure
	kwReplace
	kwExtract
	kwCast
	kwAs
	kwCount // number of keywords
)

var kwWords = [kwCount]string{
	kwSelect: "select", kwInsert: "insert", kwUpdate: "update", kwDelete: "delete",
	kwMerge: "merge", kwWith: "with", kwValues: "values", kwTable: "table",
	kwBegin: "begin", kwStart: "start", kwCommit: "commit", kwEnd: "end",
	kwRollback: "rollback", kwAbort: "abort", kwSavepoint: "savepoint",
	kwRelease: "release", kwPrepare: "prepare", kwExecute: "execute",
	kwDeallocate: "deallocate", kwSet: "set", kwReset: "reset", kwShow: "show",
	kwCopy: "copy", kwExplain: "explain", kwCreate: "create", kwAlter: "alter",
	kwDrop: "drop", kwTruncate: "truncate", kwGrant: "grant", kwRevoke: "revoke",
	kwComment: "comment", kwVacuum: "vacuum", kwAnalyze: "analyze", kwLock: "lock",
	kwListen: "listen", kwNotify: "notify", kwUnlisten: "unlisten",
	kwDiscard: "discard", kwCall: "call", kwDo: "do", kwDeclare: "declare",
	kwFetch: "fetch", kwClose: "close",
	kwIn: "in", kwIs: "is", kwNot: "not", kwNull: "null", kwTrue: "true",
	kwFalse: "false", kwUescape: "uescape", kwOrder: "order", kwGroup: "group",
	kwBy: "by", kwLimit: "limit", kwOffset: "offset", kwHaving: "having",
	kwWindow: "window", kwUnion: "union", kwIntersect: "intersect",
	kwExcept: "except", kwReturning: "returning", kwFor: "for", kwAnd: "and",
	kwOr: "or", kwThen: "then", kwElse: "else", kwWhen: "when", kwCase: "case",
	kwWhere: "where", kwOn: "on", kwBetween: "between", kwReturn: "return",
	kwDistinct: "distinct", kwAll: "all", kwDefault: "default", kwLike: "like",
	kwIlike: "ilike", kwTo: "to", kwFrom: "from", kwZone: "zone",
	kwEscape: "escape", kwUsing: "using", kwFunction: "function",
	kwProcedure: "procedure", kwReplace: "replace", kwExtract: "extract",
	kwCast: "cast", kwAs: "as",
}

const maxKwLen = 10

// Keyword properties.
const (
	// fUnary: a '-' right after this keyword is a sign, not subtraction
	// (SELECT -1, WHERE x = 1 AND -2 < y, LIMIT -1, ...).
	fUnary uint8 = 1 << iota
	// fEndsSort: ends an ORDER BY / GROUP BY list.
	fEndsSort
	// fConst: may be a constant (TRUE, FALSE, NULL, the ALL of LIMIT ALL).
	fConst
)

var kwFlags = func() (f [kwCount]uint8) {
	for _, k := range []kw{kwSelect, kwWhere, kwAnd, kwOr, kwNot, kwThen, kwElse,
		kwWhen, kwCase, kwValues, kwLimit, kwOffset, kwBy, kwHaving, kwOn,
		kwBetween, kwReturn, kwReturning, kwDistinct, kwAll, kwDefault, kwLike,
		kwIlike, kwTo, kwFrom, kwFor, kwZone, kwEscape, kwUsing} {
		f[k] |= fUnary
	}
	for _, k := range []kw{kwLimit, kwOffset, kwFetch, kwFor, kwHaving, kwWindow,
		kwUnion, kwIntersect, kwExcept, kwReturning, kwOrder} {
		f[k] |= fEndsSort
	}
	for _, k := range []kw{kwTrue, kwFalse, kwNull, kwAll} {
		f[k] |= fConst
	}
	return f
}()

// The keyword table is a perfect hash: every identifier of 2 to 10 bytes
// is packed (lower-cased) into two words, hashed with one multiply, and
// the slot it lands in names the only keyword it can be. Most identifiers
// in real statements are column and table names, so the common case is a
// miss that costs a multiply and one compare.
const kwSlotsBits = 11

type kwEntry struct {
	w0, w1 uint64
}

var (
	kwEntries [kwCount]kwEntry
	kwSlots   [1 << kwSlotsBits]kw
	kwMul     uint64
)

func init() {
	for id := kw(1); id < kwCount; id++ {
		w0, w1 := packFold([]byte(kwWords[id]))
		kwEntries[id] = kwEntry{w0, w1}
	}
	// Find a multiplier without collisions; deterministic, and the first
	// few candidates succeed.
	for m := uint64(0x9e3779b97f4a7c15); ; m += 0x5851f42d4c957f2e {
		kwMul = m | 1
		clear(kwSlots[:])
		ok := true
		for id := kw(1); id < kwCount && ok; id++ {
			e := kwEntries[id]
			slot := kwSlot(e.w0, e.w1)
			ok = kwSlots[slot] == kwNone
			kwSlots[slot] = id
		}
		if ok {
			return
		}
	}
}

func kwSlot(w0, w1 uint64) uint64 {
	return ((w0 ^ w1*0xff51afd7ed558ccd) * kwMul) >> (64 - kwSlotsBits)
}

// packFold packs up to 16 bytes of b, ASCII-lower-cased, into two words.
func packFold(b []byte) (w0, w1 uint64) {
	if len(b) > 8 {
		return lower8(load(b[:8])), lower8(load(b[8:]))
	}
	return lower8(load(b)), 0
}

// lookupKeyword returns the keyword an Ident token's text spells, if it is
// one we care about. (The normalizer's loop inlines the same steps by hand,
// sharing the first folded word with the identifier's hash.)
func lookupKeyword(b []byte) kw {
	if uint(len(b)-2) > maxKwLen-2 {
		return kwNone
	}
	return kwFind(packFold(b))
}

// kwFind returns the keyword packed into w0, w1 (see packFold), if any.
func kwFind(w0, w1 uint64) kw {
	id := kwSlots[kwSlot(w0, w1)]
	if e := &kwEntries[id]; e.w0 != w0 || e.w1 != w1 {
		return kwNone
	}
	return id
}

// load reads up to 8 bytes of b as a little-endian word, zero padded.
func load(b []byte) uint64 {
	switch n := len(b); {
	case n >= 8:
		return binary.LittleEndian.Uint64(b)
	case n >= 4:
		// Two overlapping 4-byte loads; the overlap holds equal bytes.
		return uint64(binary.LittleEndian.Uint32(b)) | uint64(binary.LittleEndian.Uint32(b[n-4:]))<<(8*(n-4))
	case n > 0:
		return uint64(b[0]) | uint64(b[n/2])<<(8*(n/2)) | uint64(b[n-1])<<(8*(n-1))
	}
	return 0
}

// lower8 lower-cases the ASCII letters in the 8 bytes of w at once (SWAR);
// bytes >= 0x80 are left alone, exactly like the lower table.
func lower8(w uint64) uint64 {
	const hi = 0x8080808080808080
	x := w &^ hi
	ge := x + 0x3f3f3f3f3f3f3f3f // high bit set where byte >= 'A'
	gt := x + 0x2525252525252525 // high bit set where byte > 'Z'
	m := ge &^ gt &^ w & hi
	return w | m>>2
}
