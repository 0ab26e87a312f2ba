package imap

import (
	"net/mail"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
)

// envelope builds the ENVELOPE of a message from its header, the way
// Dovecot does: strings are the raw header values (encoded-words are not
// decoded, RFC 3501 §7.4.2), unfolded. imapserver re-encodes non-ASCII
// text as RFC 2047 words and writes the date in RFC 5322 form.
func envelope(p *mimePart) *imap.Envelope {
	env := &imap.Envelope{
		Subject: p.header("subject"),
		From:    addressList(p.header("from")),
		Sender:  addressList(p.header("sender")),
		ReplyTo: addressList(p.header("reply-to")),
		To:      addressList(p.header("to")),
		Cc:      addressList(p.header("cc")),
		Bcc:     addressList(p.header("bcc")),
	}
	if t, ok := sentDate(p); ok {
		env.Date = t
	}
	env.InReplyTo = msgIDs(p.header("in-reply-to"))
	if ids := msgIDs(p.header("message-id")); len(ids) > 0 {
		env.MessageID = ids[0]
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
func addressList(v string) []imap.Address {
	v = strings.TrimSpace(v)
	if v == "" {
		return nil
	}
	var out []imap.Address
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
			out = append(out, imap.Address{Mailbox: phrase(seg)})
			inGroup = true
		default:
			if addr, ok := mailbox(seg); ok {
				out = append(out, addr)
			}
			if sep == ";" && inGroup {
				out = append(out, imap.Address{})
				inGroup = false
			}
		}
		i = j + 1
	}
	if inGroup {
		out = append(out, imap.Address{})
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
func mailbox(toks []addrTok) (imap.Address, bool) {
	lt := -1
	for i, t := range toks {
		if t.kind == tkSpecial && t.text == "<" {
			lt = i
			break
		}
	}
	var addr imap.Address
	var spec []addrTok
	var comment string
	if lt >= 0 {
		addr.Name = phrase(toks[:lt])
		gt := len(toks)
		for i := lt + 1; i < len(toks); i++ {
			if toks[i].kind == tkSpecial && toks[i].text == ">" {
				gt = i
				break
			}
		}
		spec = toks[lt+1 : gt]
		// Source route "@a,@b:" is dropped.
		for i, t := range spec {
			if t.kind == tkSpecial && t.text == ":" {
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
		addr.Mailbox = specText(spec[:at])
		addr.Host = specText(spec[at+1:])
	} else {
		addr.Mailbox = specText(spec)
	}
	if addr.Name == "" && lt < 0 && comment != "" {
		addr.Name = comment
	}
	if addr.Mailbox == "" && addr.Host == "" {
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

// bodyStructure turns a parsed part into BODYSTRUCTURE (always the
// extended form; imapserver cuts it down for BODY).
func bodyStructure(p *mimePart) imap.BodyStructure {
	if p.isMultipart() {
		bs := &imap.BodyStructureMultiPart{Subtype: p.sub}
		for _, c := range p.children {
			bs.Children = append(bs.Children, bodyStructure(c))
		}
		bs.Extended = &imap.BodyStructureMultiPartExt{
			Params:      paramMap(p.params),
			Disposition: disposition(p),
			Language:    languages(p.header("content-language")),
			Location:    p.header("content-location"),
		}
		return bs
	}
	typ, sub := p.typ, p.sub
	if typ == "multipart" {
		// A multipart without a boundary is sent as what it is, a leaf.
		typ, sub = "text", "plain"
	}
	bs := &imap.BodyStructureSinglePart{
		Type:        typ,
		Subtype:     sub,
		Params:      paramMap(p.params),
		ID:          p.header("content-id"),
		Description: p.header("content-description"),
		Encoding:    strings.ToLower(strings.TrimSpace(stripComments(p.header("content-transfer-encoding")))),
		Size:        uint32(min(p.end-p.bodyOff, 1<<32-1)),
		Extended: &imap.BodyStructureSinglePartExt{
			Disposition: disposition(p),
			Language:    languages(p.header("content-language")),
			Location:    p.header("content-location"),
		},
	}
	if p.msg != nil {
		bs.MessageRFC822 = &imap.BodyStructureMessageRFC822{
			Envelope:      envelope(p.msg),
			BodyStructure: bodyStructure(p.msg),
			NumLines:      p.lines,
		}
	} else if typ == "text" {
		bs.Text = &imap.BodyStructureText{NumLines: p.lines}
	}
	return bs
}

func paramMap(ps []param) map[string]string {
	if len(ps) == 0 {
		return nil
	}
	m := make(map[string]string, len(ps))
	for _, p := range ps {
		if _, dup := m[p.key]; !dup {
			m[p.key] = p.value
		}
	}
	return m
}

func disposition(p *mimePart) *imap.BodyStructureDisposition {
	v := p.header("content-disposition")
	if v == "" {
		return nil
	}
	d, params := parseDisposition(v)
	if d == "" {
		return nil
	}
	return &imap.BodyStructureDisposition{Value: d, Params: paramMap(params)}
}

func languages(v string) []string {
	v = strings.TrimSpace(stripComments(v))
	if v == "" {
		return nil
	}
	var out []string
	for _, l := range strings.Split(v, ",") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
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
