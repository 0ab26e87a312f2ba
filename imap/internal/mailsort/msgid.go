package mailsort

import (
	"strings"

	"github.com/letterbox-mail/letterbox/imap/internal/mailaddr"
)

// MessageID returns the first valid message ID in a raw Message-ID field
// value, normalised (see MessageIDs), or "" when there is none; THREAD=
// REFERENCES then gives the message a unique ID of its own (RFC 5256 §3,
// step 1.A).
func MessageID(raw string) string {
	ids := messageIDs(raw, 1)
	if len(ids) == 0 {
		return ""
	}
	return ids[0]
}

// References returns the references THREAD=REFERENCES reconstructs a
// message's ancestry from (RFC 5256 §3), oldest first: the valid message
// IDs of the References field; if it has none, the first valid one of
// In-Reply-To (whose later IDs are ignored, because MUAs put addresses and
// prose there); else nil.
func References(references, inReplyTo string) []string {
	if ids := MessageIDs(references); len(ids) > 0 {
		return ids
	}
	return messageIDs(inReplyTo, 1)
}

// MessageIDs returns the valid msg-ids of a field value (RFC 5322 §3.6.4,
// with the obsolete forms of §4.5.4), skipping anything between them that
// is not one. A msg-id is valid if it has a non-empty left part, "@" and a
// non-empty right part inside angle brackets. IDs are normalised the way
// RFC 5256 §3 requires, so that <"01KF8JCEOCBS0045PS"@xxx.yyy.com> and
// <01KF8JCEOCBS0045PS@xxx.yyy.com> match: quoting, quoted-pairs, comments
// and folding whitespace are removed and the brackets dropped; a space
// inside quotes is kept, since it is part of the ID.
// Comparisons of the results are case-sensitive (RFC 5256 §3).
func MessageIDs(raw string) []string {
	return messageIDs(raw, -1)
}

func messageIDs(s string, max int) []string {
	var ids []string
	for max != 0 {
		i := strings.IndexByte(s, '<')
		if i < 0 {
			break
		}
		id, n, ok := msgID(s[i+1:])
		s = s[i+1+n:]
		if ok {
			ids = append(ids, id)
			max--
		}
	}
	return ids
}

// msgID reads one msg-id after its "<"; n counts the bytes it consumed. A
// "<" before the closing ">" restarts the search there, so "<<a@b>" finds
// a@b.
func msgID(s string) (id string, n int, ok bool) {
	// Most IDs need no normalising: copy them out in one piece (a copy,
	// so that cached keys do not pin the whole header field).
	if end := strings.IndexAny(s, "<>\"(\\ \t\r\n"); end >= 0 && s[end] == '>' {
		v := s[:end]
		at := strings.IndexByte(v, '@')
		return strings.Clone(v), end + 1, at > 0 && at < len(v)-1
	}
	var b strings.Builder
	b.Grow(len(s))
	at := -1
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '>':
			v := b.String()
			return v, i + 1, at > 0 && at < len(v)-1
		case c == '<':
			return "", i, false
		case c == '"':
			text, m := mailaddr.Quoted(s[i+1:])
			b.WriteString(text)
			i += m
		case c == '(':
			_, m := mailaddr.Comment(s[i+1:])
			i += m
		case c == '\\' && i+1 < len(s):
			i++
			if !isSpace(s[i]) {
				b.WriteByte(s[i])
			}
		case isSpace(c):
		case c == '@' && at < 0:
			at = b.Len()
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	return "", len(s), false
}
