package analyzer

import "github.com/pgpollwatch/pgpollwatch/event"

// Classifier finds the watched lookup or write in one statement, as the analyzer does, for
// those outside it that must act on statements before they run (the coalescing cache). It is
// not safe for concurrent use: give each session its own.
type Classifier struct {
	m   matcher
	key []byte
}

// NewClassifier reads statements against watches (Presets when nil).
func NewClassifier(watches []Watch) *Classifier {
	if watches == nil {
		watches = Presets
	}
	return &Classifier{m: matcher{watches: watches}, key: make([]byte, 0, maxKeyLen+64)}
}

// Lookup is what a statement does to a watched table.
type Lookup struct {
	Watch    int  // index into the watches; -1 when the statement is no watched lookup or write
	Write    bool // it writes the table
	Param    int  // the 1-based parameter holding the key(s); 0 when they are literals (or unknown)
	AnyArray bool // the parameter is an array (= ANY($n))
	Keys     int  // literal keys found (each passed to the key function)
}

// Match reads one statement (the first of a string) and calls key with each literal key,
// decoded; key's argument is valid only during the call.
func (c *Classifier) Match(sql []byte, key func(k []byte)) Lookup {
	lk := c.m.match(sql)
	out := Lookup{Watch: lk.watch, Write: lk.write, Param: lk.param, AnyArray: lk.anyArray}
	for _, t := range lk.keys {
		k, ok := literalKey(c.key[:0], sql, t)
		if ok && len(k) <= maxKeyLen {
			c.key = k
			out.Keys++
			key(k)
		}
	}
	return out
}

// BindKeys calls fn with each key parameter param (1-based) carries in a Bind: its value, or
// each element of an array; false when the Bind has no such parameter.
func (c *Classifier) BindKeys(bind event.BindMessage, param int, array bool, fn func(k []byte)) bool {
	found := false
	bind.Params(func(i int, format int16, v []byte) bool {
		if i != param-1 {
			return true
		}
		found = v != nil
		paramKeys(c.key[:0], format, v, array, func(k []byte) {
			if len(k) <= maxKeyLen {
				fn(k)
			}
		})
		return false
	})
	return found
}
