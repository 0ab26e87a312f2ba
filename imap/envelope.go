package imap

import (
	"net/mail"
	"strings"
	"time"
)

// envelope is a message's ENVELOPE (RFC 3501 §7.4.2): the header
// values as written (unfolded, encoded-words not decoded), as Dovecot sends
// them.
type envelopeData struct {
	date, subject                      string
	from, sender, replyTo, to, cc, bcc []address
	inReplyTo                          []string
	messageID                          string
}

// address is an ENVELOPE address: name, source route (RFC 822 obsolete
// route, "@a,@b"), mailbox and host. A group is a start marker (mailbox
// the group name, host empty) and an end marker (all empty).
type address struct {
	name, route, mailbox, host string
	groupEnd                   bool
}

func envelope(p *mimePart) *envelopeData {
	env := &envelopeData{
		date:    strings.TrimSpace(p.header("date")),
		subject: p.header("subject"),
		from:    addressList(p.header("from")),
		sender:  addressList(p.header("sender")),
		replyTo: addressList(p.header("reply-to")),
		to:      addressList(p.header("to")),
		cc:      addressList(p.header("cc")),
		bcc:     addressList(p.header("bcc")),
	}
	env.inReplyTo = msgIDs(p.header("in-reply-to"))
	if ids := msgIDs(p.header("message-id")); len(ids) > 0 {
		env.messageID = ids[0]
	}
	return env
}

// msgIDs returns the "<...>" ids in a header value, without the brackets;
// a value with none is taken whole.
func msgIDs(v string) []string {
	v = strings.TrimSpace(v)
	if v == "" {
		return nil
	}
	var ids []string
	rest := v
	for {
		i := strings.IndexByte(rest, '<')
		if i < 0 {
			break
		}
		j := strings.IndexByte(rest[i:], '>')
		if j < 0 {
			break
		}
		if id := strings.TrimSpace(rest[i+1 : i+j]); id != "" {
			ids = append(ids, id)
		}
		rest = rest[i+j+1:]
	}
	if len(ids) == 0 {
		ids = []string{strings.Trim(v, "<> \t")}
	}
	return ids
}

// addressList parses an RFC 5322 address list into ENVELOPE addresses.
// Display names stay as written (quotes removed, encoded-words kept); a
// comment serves as the name of an address without one; groups become the
// start and end markers of RFC 3501 §7.4.2.
func addressList(v string) []address {
	v = strings.TrimSpace(v)
	if v == "" {
		return nil
	}
	var out []address
	toks := tokenizeAddr(v)
	i := 0
	inGroup := false
	for i < len(toks) {
		// Find the extent of one mailbox or a group start.
		j := i
		depthAngle := false
		for j < len(toks) {
			t := toks[j]
			if t.kind == tkSpecial {
				if t.text == "<" {
					depthAngle = true
				} else if t.text == ">" {
					depthAngle = false
				} else if !depthAngle && (t.text == "," || t.text == ";" || t.text == ":") {
					break
				}
			}
			j++
		}
		seg := toks[i:j]
		var sep string
		if j < len(toks) {
			sep = toks[j].text
		}
		switch sep {
		case ":":
			out = append(out, address{mailbox: phrase(seg)})
			inGroup = true
		default:
			if addr, ok := mailbox(seg); ok {
				out = append(out, addr)
			}
			if sep == ";" && inGroup {
				out = append(out, address{groupEnd: true})
				inGroup = false
			}
		}
		i = j + 1
	}
	if inGroup {
		out = append(out, address{groupEnd: true})
	}
	return out
}

const (
	tkAtom = iota
	tkQuoted
	tkComment
	tkSpecial
	tkSpace
)

type addrTok struct {
	kind int
	text string
}

func tokenizeAddr(s string) []addrTok {
	var toks []addrTok
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			j := i
			for j < len(s) && (s[j] == ' ' || s[j] == '\t' || s[j] == '\r' || s[j] == '\n') {
				j++
			}
			toks = append(toks, addrTok{tkSpace, " "})
			i = j
		case c == '"':
			var b strings.Builder
			j := i + 1
			for ; j < len(s) && s[j] != '"'; j++ {
				if s[j] == '\\' && j+1 < len(s) {
					j++
				}
				b.WriteByte(s[j])
			}
			toks = append(toks, addrTok{tkQuoted, b.String()})
			i = j + 1
		case c == '(':
			depth := 0
			var b strings.Builder
			j := i
			for ; j < len(s); j++ {
				if s[j] == '\\' && j+1 < len(s) {
					j++
					b.WriteByte(s[j])
					continue
				}
				if s[j] == '(' {
					depth++
					if depth == 1 {
						continue
					}
				} else if s[j] == ')' {
					depth--
					if depth == 0 {
						break
					}
				}
				b.WriteByte(s[j])
			}
			toks = append(toks, addrTok{tkComment, b.String()})
			i = j + 1
		case strings.IndexByte("<>@,;:.[]", c) >= 0:
			toks = append(toks, addrTok{tkSpecial, string(c)})
			i++
		default:
			j := i
			for j < len(s) && strings.IndexByte(" \t\r\n\"(<>@,;:.[]", s[j]) < 0 {
				j++
			}
			toks = append(toks, addrTok{tkAtom, s[i:j]})
			i = j
		}
	}
	return toks
}

// phrase joins words and quoted strings with single spaces.
func phrase(toks []addrTok) string {
	var words []string
	var cur strings.Builder
	flush := func() {
		if cur.Len() > 0 {
			words = append(words, cur.String())
			cur.Reset()
		}
	}
	for _, t := range toks {
		switch t.kind {
		case tkAtom, tkQuoted:
			cur.WriteString(t.text)
		case tkSpecial:
			if t.text == "." {
				cur.WriteString(".")
			}
		case tkSpace:
			flush()
		}
	}
	flush()
	return strings.Join(words, " ")
}

// mailbox parses "name <local@domain>" or "local@domain (comment)".
func mailbox(toks []addrTok) (address, bool) {
	lt := -1
	for i, t := range toks {
		if t.kind == tkSpecial && t.text == "<" {
			lt = i
			break
		}
	}
	var addr address
	var spec []addrTok
	var comment string
	if lt >= 0 {
		addr.name = phrase(toks[:lt])
		gt := len(toks)
		for i := lt + 1; i < len(toks); i++ {
			if toks[i].kind == tkSpecial && toks[i].text == ">" {
				gt = i
				break
			}
		}
		spec = toks[lt+1 : gt]
		// An obsolete source route "@a,@b:" goes into the route field
		// (RFC 3501 §7.4.2 addr-adl).
		for i, t := range spec {
			if t.kind == tkSpecial && t.text == ":" {
				addr.route = specText(spec[:i])
				spec = spec[i+1:]
				break
			}
		}
	} else {
		spec = toks
	}
	for _, t := range spec {
		if t.kind == tkComment && comment == "" {
			comment = strings.TrimSpace(t.text)
		}
	}
	at := -1
	for i := len(spec) - 1; i >= 0; i-- {
		if spec[i].kind == tkSpecial && spec[i].text == "@" {
			at = i
			break
		}
	}
	if at >= 0 {
		addr.mailbox = specText(spec[:at])
		addr.host = specText(spec[at+1:])
	} else {
		addr.mailbox = specText(spec)
	}
	if addr.name == "" && lt < 0 && comment != "" {
		addr.name = comment
	}
	if addr.mailbox == "" && addr.host == "" {
		return addr, false
	}
	return addr, true
}

// specText joins the tokens of a local part or domain without spaces or
// comments.
func specText(toks []addrTok) string {
	var b strings.Builder
	for _, t := range toks {
		switch t.kind {
		case tkAtom, tkQuoted:
			b.WriteString(t.text)
		case tkSpecial:
			if t.text != "<" && t.text != ">" {
				b.WriteString(t.text)
			}
		}
	}
	return b.String()
}

// sentDate is the Date header's day, for SENTBEFORE and the like.
func sentDate(p *mimePart) (time.Time, bool) {
	d := p.header("date")
	if d == "" {
		return time.Time{}, false
	}
	t, err := mail.ParseDate(stripComments(d))
	return t, err == nil
}
