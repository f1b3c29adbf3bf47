package sqlscan

import (
	"bytes"
	"strconv"
)

// Producing the normalized text: the source is copied lazily, in the gaps
// between constants, so a statement with one constant near its end costs
// one append.

// constant records a constant at src[start:end].
func (n *normalizer) constant(start, end int, ck ConstKind, hc uint8) {
	n.h.tok(tagConst, uint64(hc))
	if n.emit {
		n.consts = append(n.consts, Const{int32(start), int32(end), ck})
		n.placeholder(start, end, false)
	}
}

// placeholder replaces src[start:end] by the next $n in the output.
func (n *normalizer) placeholder(start, end int, list bool) {
	src := n.src
	if n.nextN == 0 {
		n.nextN = n.firstNumber()
	}
	dst := append(n.dst, src[n.copied:start]...)
	if len(dst) > n.dst0 && isIdentCont(dst[len(dst)-1]) {
		dst = append(dst, ' ')
	}
	dst = append(dst, '$')
	dst = strconv.AppendInt(dst, int64(n.nextN), 10)
	n.nextN++
	if list {
		dst = append(dst, " /*, ... */"...)
	}
	if end < len(src) && isIdentCont(src[end]) {
		dst = append(dst, ' ')
	}
	n.dst = dst
	n.copied = end
}

// firstNumber returns the number of the first placeholder: one more than
// the highest parameter anywhere in src. Only a statement that contains a
// '$' (rare outside the extended protocol, which rarely has constants)
// pays for a second scan.
func (n *normalizer) firstNumber() int {
	m := n.maxParam
	if bytes.IndexByte(n.src, '$') >= 0 {
		var c Scanner
		c.Reset(n.src)
		for t := c.Next(); t.Kind != EOF; t = c.Next() {
			if t.Kind == Param {
				if v := paramNumber(n.src[t.Start+1 : t.End]); v > m {
					m = v
				}
			}
		}
	}
	n.maxParam = m
	return m + 1
}

// finish writes the rest of the text: up to the ';' that ends the last
// statement (or the end of src), without trailing whitespace.
func (n *normalizer) finish() {
	if !n.emit {
		return
	}
	end := len(n.src)
	if n.cutAt >= 0 {
		end = n.cutAt
	}
	dst := n.dst
	if n.copied < end {
		dst = append(dst, n.src[n.copied:end]...)
	}
	for len(dst) > n.dst0 && isSpace(dst[len(dst)-1]) {
		dst = dst[:len(dst)-1]
	}
	n.dst = dst
}
