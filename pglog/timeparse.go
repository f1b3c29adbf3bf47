package pglog

import (
	"time"
)

// timeCache parses PostgreSQL's log time stamps ("2024-01-02 03:04:05.678 UTC", %m; without
// ".678" for %t and %s) quickly: the minute and zone of the last stamps are remembered, so a
// line usually costs a comparison and a few digits.
type timeCache struct {
	loc   *time.Location // Options.Location; nil: abbreviations from zoneAbbrevs, else UTC
	slots [2]minuteSlot
	next  int
}

type minuteSlot struct {
	key  [24]byte // "2024-01-02 03:04" + zone
	n    int
	base int64 // Unix seconds at the start of that minute
	ok   bool
}

func digits2(b []byte) (int, bool) {
	if b[0] < '0' || b[0] > '9' || b[1] < '0' || b[1] > '9' {
		return 0, false
	}
	return int(b[0]-'0')*10 + int(b[1]-'0'), true
}

// parse reads a time stamp at the start of b: "YYYY-MM-DD HH:MM:SS", then ".fff" when
// millis (1 to 6 digits), then " ZONE" if a zone follows. It returns the time and the bytes
// consumed, 0 if b does not start with a time stamp.
func (c *timeCache) parse(b []byte, millis bool) (time.Time, int) {
	if len(b) < 19 || b[4] != '-' || b[7] != '-' || b[10] != ' ' || b[13] != ':' || b[16] != ':' {
		return time.Time{}, 0
	}
	sec, ok := digits2(b[17:])
	if !ok || sec > 60 {
		return time.Time{}, 0
	}
	n := 19
	nsec := 0
	if millis {
		if len(b) < 21 || b[19] != '.' {
			return time.Time{}, 0
		}
		n = 20
		scale := 100_000_000
		for n < len(b) && n < 26 && b[n] >= '0' && b[n] <= '9' {
			nsec += int(b[n]-'0') * scale
			scale /= 10
			n++
		}
		if n == 20 {
			return time.Time{}, 0
		}
	}
	// The zone: " UTC", " CEST" (letters), or " +03", " -0330" (a sign and digits).
	zs, ze := n, n
	if n+1 < len(b) && b[n] == ' ' {
		k := n + 1
		switch c := b[k]; {
		case c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z':
			for k < len(b) && k-n <= 6 && (b[k] >= 'A' && b[k] <= 'Z' || b[k] >= 'a' && b[k] <= 'z') {
				k++
			}
		case c == '+' || c == '-':
			k++
			for k < len(b) && k-n <= 6 && b[k] >= '0' && b[k] <= '9' {
				k++
			}
			if k == n+2 {
				k = n // a sign alone
			}
		}
		if k > n+1 && k-n <= 6 {
			zs, ze = n+1, k
		}
	}
	zone := b[zs:ze]
	if ze > n {
		n = ze
	}
	// The minute, from the cache.
	var key [24]byte
	copy(key[:16], b[:16])
	kn := 16 + copy(key[16:], zone)
	for i := range c.slots {
		s := &c.slots[i]
		if s.ok && s.n == kn && s.key == key {
			return time.Unix(s.base+int64(sec), int64(nsec)).UTC(), n
		}
	}
	base, ok := c.minute(b[:16], string(zone))
	if !ok {
		return time.Time{}, 0
	}
	s := &c.slots[c.next]
	c.next = (c.next + 1) % len(c.slots)
	*s = minuteSlot{key: key, n: kn, base: base, ok: true}
	return time.Unix(base+int64(sec), int64(nsec)).UTC(), n
}

// minute returns the Unix time of "YYYY-MM-DD HH:MM" in zone.
func (c *timeCache) minute(b []byte, zone string) (int64, bool) {
	var v [5]int
	for i, at := range [5]int{0, 5, 8, 11, 14} {
		d, ok := digits2(b[at:])
		if !ok {
			return 0, false
		}
		v[i] = d
	}
	y2, ok := digits2(b[2:])
	if !ok {
		return 0, false
	}
	year := v[0]*100 + y2
	month, day, hour, minute := v[1], v[2], v[3], v[4]
	if year < 1970 || year > 2200 || month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 {
		return 0, false
	}
	loc, fixed := c.zone(zone)
	t := time.Date(year, time.Month(month), day, hour, minute, 0, 0, loc)
	if !fixed && zone != "" {
		// Around a DST change the same wall clock exists twice: the abbreviation tells which.
		if name, _ := t.Zone(); name != zone {
			for _, d := range []time.Duration{-time.Hour, time.Hour} {
				u := t.Add(d)
				if name, _ := u.Zone(); name == zone && u.Hour() == hour && u.Minute() == minute {
					t = u
					break
				}
			}
		}
	}
	return t.Unix(), true
}

// zone resolves a zone as PostgreSQL prints it (%Z of log_timezone). fixed says the result
// does not depend on the date.
func (c *timeCache) zone(z string) (*time.Location, bool) {
	switch z {
	case "UTC", "GMT", "UCT", "Z", "Etc/UTC":
		return time.UTC, true
	case "":
		if c.loc != nil {
			return c.loc, false
		}
		return time.UTC, true
	}
	if z[0] == '+' || z[0] == '-' {
		// +03, -0330, +05:30
		d := make([]byte, 0, 4)
		for i := 1; i < len(z); i++ {
			if z[i] >= '0' && z[i] <= '9' {
				d = append(d, z[i])
			}
		}
		off := 0
		switch len(d) {
		case 1, 2:
			h, _ := parseUint(d)
			off = h * 3600
		case 3, 4:
			h, _ := parseUint(d[:len(d)-2])
			m, _ := parseUint(d[len(d)-2:])
			off = h*3600 + m*60
		default:
			return time.UTC, true
		}
		if z[0] == '-' {
			off = -off
		}
		return time.FixedZone(z, off), true
	}
	if c.loc != nil {
		return c.loc, false
	}
	if off, ok := zoneAbbrevs[z]; ok {
		return time.FixedZone(z, off*60), true
	}
	return time.UTC, true
}

// zoneAbbrevs are the offsets, in minutes east of UTC, of zone abbreviations common in server
// logs, for when Options.Location is not given. Ambiguous ones (IST, CST in China) take the
// meaning of PostgreSQL's "Default" timezone_abbreviations set.
var zoneAbbrevs = map[string]int{
	"WET": 0, "WEST": 60, "BST": 60, "IST": 120, "CET": 60, "CEST": 120, "MET": 60, "MEST": 120,
	"EET": 120, "EEST": 180, "MSK": 180, "EST": -300, "EDT": -240, "CST": -360, "CDT": -300,
	"MST": -420, "MDT": -360, "PST": -480, "PDT": -420, "AKST": -540, "AKDT": -480,
	"HST": -600, "AST": -240, "ADT": -180, "NST": -210, "NDT": -150, "JST": 540, "KST": 540,
	"HKT": 480, "SGT": 480, "AWST": 480, "ACST": 570, "ACDT": 630, "AEST": 600, "AEDT": 660,
	"NZST": 720, "NZDT": 780, "SAST": 120, "WIB": 420, "PKT": 300,
}

// parseEpoch reads %n: Unix seconds with milliseconds, "1704164645.678".
func parseEpoch(b []byte) (time.Time, int) {
	sec, n := parseUint(b)
	if n < 9 || n > 10 || n >= len(b) || b[n] != '.' {
		return time.Time{}, 0
	}
	n++
	nsec, scale, m := 0, 100_000_000, 0
	for n < len(b) && m < 6 && b[n] >= '0' && b[n] <= '9' {
		nsec += int(b[n]-'0') * scale
		scale /= 10
		n++
		m++
	}
	if m == 0 {
		return time.Time{}, 0
	}
	return time.Unix(int64(sec), int64(nsec)).UTC(), n
}
