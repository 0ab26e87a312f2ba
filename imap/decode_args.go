package imap

import (
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
)

// Decoding of the arguments many commands share: sequence sets, flags,
// dates (RFC 3501 §9).

// numSet reads a sequence set (RFC 3501 §9 sequence-set), "$" (RFC 5182)
// included. "*" is 0, as in go-imap's sets.
func (p *parser) numSet(uid bool) imap.NumSet {
	if p.maybe('$') {
		return imap.SearchRes()
	}
	var ranges [][2]uint32
	for {
		a := p.seqNumber()
		b := a
		if p.maybe(':') {
			b = p.seqNumber()
		}
		ranges = append(ranges, [2]uint32{a, b})
		if !p.maybe(',') {
			break
		}
	}
	if uid {
		var s imap.UIDSet
		for _, r := range ranges {
			s.AddRange(imap.UID(r[0]), imap.UID(r[1]))
		}
		return s
	}
	var s imap.SeqSet
	for _, r := range ranges {
		s.AddRange(r[0], r[1])
	}
	return s
}

func (p *parser) seqNumber() uint32 {
	if p.maybe('*') {
		return 0
	}
	return p.nzNumber()
}

// flagList reads "(" flags ")", empty allowed.
func (p *parser) flagList() []imap.Flag {
	var out []imap.Flag
	p.list(true, func() { out = append(out, p.flag()) })
	return out
}

// flag reads a flag: "\" atom or a keyword atom ("\*" in PERMANENTFLAGS
// only, refused by the caller).
func (p *parser) flag() imap.Flag {
	if p.maybe('\\') {
		if p.maybe('*') {
			return imap.FlagWildcard
		}
		return imap.Flag(`\` + p.atom())
	}
	return imap.Flag(p.atom())
}

var months = []string{"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"}

// date reads a date (RFC 3501 §9 date): d-Mon-yyyy, optionally quoted.
func (p *parser) date() time.Time {
	q := p.maybe('"')
	day, mon, year := p.dateParts()
	if q {
		p.expect('"')
	}
	return time.Date(year, mon, day, 0, 0, 0, 0, time.UTC)
}

func (p *parser) dateParts() (int, time.Month, int) {
	if p.peek() == ' ' {
		p.pos++ // date-day-fixed
	}
	day := int(p.number64(31))
	p.expect('-')
	if len(p.line)-p.pos < 3 {
		p.fail("bad month")
	}
	m := strings.ToLower(string(p.line[p.pos : p.pos+3]))
	mon := 0
	for i, name := range months {
		if name == m {
			mon = i + 1
		}
	}
	if mon == 0 {
		p.fail("bad month %q", m)
	}
	p.pos += 3
	p.expect('-')
	start := p.pos
	year := int(p.number64(9999))
	if p.pos-start != 4 {
		p.fail("bad year")
	}
	if day < 1 || day > daysIn(time.Month(mon), year) {
		p.fail("bad day")
	}
	return day, time.Month(mon), year
}

func daysIn(m time.Month, year int) int {
	return time.Date(year, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// dateTime reads a date-time (RFC 3501 §9): "dd-Mon-yyyy hh:mm:ss +zzzz".
func (p *parser) dateTime() time.Time {
	p.expect('"')
	day, mon, year := p.dateParts()
	p.sp()
	two := func(max uint64) int {
		start := p.pos
		v := p.number64(max)
		if p.pos-start != 2 {
			p.fail("bad time")
		}
		return int(v)
	}
	h := two(23)
	p.expect(':')
	mi := two(59)
	p.expect(':')
	s := two(60)
	p.sp()
	sign := p.peek()
	if sign != '+' && sign != '-' {
		p.fail("bad zone")
	}
	p.pos++
	start := p.pos
	z := int(p.number64(9999))
	if p.pos-start != 4 || z%100 >= 60 {
		p.fail("bad zone")
	}
	p.expect('"')
	off := (z/100*60 + z%100) * 60
	if sign == '-' {
		off = -off
	}
	return time.Date(year, mon, day, h, mi, s, 0, time.FixedZone("", off))
}
