package mailsort

import (
	"strconv"
	"strings"
	"time"

	"github.com/letterbox-mail/letterbox/imap/internal/mailaddr"
)

// SentDate returns the sent date of RFC 5256 §2.2 for a raw Date field
// value, in UTC. ok is false when the field is missing or holds no
// recognisable day, month and year: RFC 5256 §2.2 then uses the message's
// INTERNALDATE instead, which only the caller knows (see Keys.HasSent).
//
// The field is read leniently, as §2.2 asks: an invalid time zone counts
// as UTC and an invalid or missing time as 00:00:00. Besides RFC 5322
// §3.3 and its obsolete forms (§4.3: two- and three-digit years, named
// zones, comments anywhere), the asctime form "Mon Jan 2 15:04:05 2006"
// and ISO 8601 "2006-01-02T15:04:05Z" are accepted, since both turn up in
// real mail. Named zones have their RFC 5322 offsets whatever the server's
// local zone is; military letters count as UTC (§4.3: their sign was too
// often wrong to trust).
func SentDate(raw string) (t time.Time, ok bool) {
	fields := strings.Fields(strings.ReplaceAll(tightenColons(stripComments(raw)), ",", " "))
	if len(fields) > 0 && len(fields) <= 3 && isoPrefix(fields[0]) {
		return isoDate(fields)
	}
	var month, zone int
	var clock string
	var before, after []string // numbers before and after the month name
	for _, f := range fields {
		switch {
		case clock == "" && strings.Contains(f, ":"):
			clock = f
		case clock != "" && (f[0] == '+' || f[0] == '-' || isAlpha(f)):
			zone = zoneOffset(f)
		case isAlpha(f):
			if m := monthNumber(f); m > 0 && month == 0 {
				month = m
			}
		case isDigits(f) && month == 0:
			before = append(before, f)
		case isDigits(f):
			after = append(after, f)
		}
	}
	// RFC 5322 writes day month year; asctime writes month day ... year.
	var dayStr, yearStr string
	switch {
	case month == 0:
		return time.Time{}, false
	case len(before) > 0 && len(after) > 0:
		dayStr, yearStr = before[len(before)-1], after[0]
	case len(before) == 0 && len(after) >= 2:
		dayStr, yearStr = after[0], after[1]
	default:
		return time.Time{}, false
	}
	day, year := atoi(dayStr), atoi(yearStr)
	switch len(yearStr) { // RFC 5322 §4.3 obs-year
	case 1, 2:
		if year < 50 {
			year += 2000
		} else {
			year += 1900
		}
	case 3:
		year += 1900
	}
	h, m, s := parseClock(clock)
	return makeDate(year, month, day, h, m, s, zone)
}

// makeDate builds the UTC time of a local date and time at offset zone
// (seconds east of UTC), refusing days the month does not have.
func makeDate(year, month, day, h, m, s, zone int) (time.Time, bool) {
	if year < 1 || year > 9999 || month < 1 || month > 12 || day < 1 || day > 31 {
		return time.Time{}, false
	}
	t := time.Date(year, time.Month(month), day, 0, 0, 0, 0, time.UTC)
	if t.Day() != day {
		return time.Time{}, false
	}
	clock := time.Duration(h)*time.Hour + time.Duration(m)*time.Minute + time.Duration(s)*time.Second
	return t.Add(clock - time.Duration(zone)*time.Second), true
}

// parseClock reads hh:mm[:ss]; anything invalid is midnight (RFC 5256
// §2.2). A leap second (60) is accepted and rolls into the next minute.
func parseClock(f string) (h, m, s int) {
	parts := strings.Split(f, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return 0, 0, 0
	}
	h, m = atoi(parts[0]), atoi(parts[1])
	if len(parts) == 3 {
		s = atoi(parts[2])
	}
	if h < 0 || h > 23 || m < 0 || m > 59 || s < 0 || s > 60 {
		return 0, 0, 0
	}
	return h, m, s
}

func isoPrefix(f string) bool {
	d, _, _ := strings.Cut(f, "T")
	return strings.Count(d, "-") == 2
}

// isoDate reads "2006-01-02", "2006-01-02T15:04:05" and the same with a
// space instead of "T", with an optional zone, separated by a space or not.
func isoDate(fields []string) (time.Time, bool) {
	date, rest, _ := strings.Cut(fields[0], "T")
	if len(fields) > 1 {
		rest = strings.Join(fields[1:], "")
	}
	ymd := strings.Split(date, "-")
	if len(ymd) != 3 || !isDigits(ymd[0]) || !isDigits(ymd[1]) || !isDigits(ymd[2]) {
		return time.Time{}, false
	}
	zone := 0
	if i := strings.IndexAny(rest, "Zz+-"); i >= 0 {
		zone = zoneOffset(rest[i:])
		rest = rest[:i]
	}
	h, m, s := parseClock(rest)
	return makeDate(atoi(ymd[0]), atoi(ymd[1]), atoi(ymd[2]), h, m, s, zone)
}

// zoneOffset returns the offset of a zone in seconds east of UTC; a zone
// that cannot be read is UTC (RFC 5256 §2.2).
func zoneOffset(f string) int {
	if f[0] == '+' || f[0] == '-' {
		digits := strings.ReplaceAll(f[1:], ":", "")
		if !isDigits(digits) || (len(digits) != 4 && len(digits) != 2) {
			return 0
		}
		h, m := atoi(digits[:2]), 0
		if len(digits) == 4 {
			m = atoi(digits[2:])
		}
		if m > 59 {
			return 0
		}
		off := (h*60 + m) * 60
		if f[0] == '-' {
			off = -off
		}
		return off
	}
	// RFC 5322 §4.3 obs-zone.
	switch strings.ToUpper(f) {
	case "EDT":
		return -4 * 3600
	case "EST", "CDT":
		return -5 * 3600
	case "CST", "MDT":
		return -6 * 3600
	case "MST", "PDT":
		return -7 * 3600
	case "PST":
		return -8 * 3600
	}
	return 0
}

var months = [...]string{"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"}

// monthNumber recognises a month by its first three letters, so that
// "Sept" and "January" work as well as "Sep" and "Jan".
func monthNumber(f string) int {
	if len(f) < 3 {
		return 0
	}
	for i, m := range months {
		if strings.EqualFold(f[:3], m) {
			return i + 1
		}
	}
	return 0
}

func stripComments(s string) string {
	if !strings.Contains(s, "(") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '(' {
			_, n := mailaddr.Comment(s[i+1:])
			i += n
			b.WriteByte(' ')
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// tightenColons removes the whitespace obs-time allows around the colons
// of a time (RFC 5322 §4.3, "09 :  55  :  06").
func tightenColons(s string) string {
	if !strings.Contains(s, ":") {
		return s
	}
	b := []byte(s)
	out := b[:0]
	for i := 0; i < len(b); i++ {
		if isSpace(b[i]) {
			j := i
			for j < len(b) && isSpace(b[j]) {
				j++
			}
			if (j < len(b) && b[j] == ':') || (len(out) > 0 && out[len(out)-1] == ':') {
				i = j - 1
				continue
			}
		}
		out = append(out, b[i])
	}
	return string(out)
}

// atoi reads a short run of digits; -1 if it is not one.
func atoi(s string) int {
	if len(s) == 0 || len(s) > 9 {
		return -1
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return -1
	}
	return n
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func isAlpha(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i] | 0x20; c < 'a' || c > 'z' {
			return false
		}
	}
	return s != ""
}
