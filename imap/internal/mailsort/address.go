package mailsort

import (
	"strings"
	"unicode/utf8"
)

// AddrMailboxKey returns the SORT key of an address field (From, To, Cc):
// the [IMAP] addr-mailbox of its first address (RFC 5256 §3), as an
// ENVELOPE would show it (RFC 3501 §7.4.2): the local part without quoting,
// comments or an obsolete route; the group name when the field starts with
// a group; "" for a missing, empty or unparseable field.
func AddrMailboxKey(raw string) string {
	return firstAddress(raw).mailbox
}

// DisplayKey returns the DISPLAYFROM/DISPLAYTO sort value of an address
// field (RFC 5957 §3) for its first address: the display name with
// encoded-words decoded and spaces trimmed and collapsed, if that is not
// empty; else addr-mailbox@addr-host;
// else addr-mailbox; else "". An address without a display name but with a
// comment, "user@host (Real Name)", shows the comment as its name, as
// ENVELOPE does.
func DisplayKey(raw string) string {
	a := firstAddress(raw)
	if a.name != "" {
		if n := strings.Trim(decodeText(a.name), " "); n != "" {
			return n
		}
	}
	if a.mailbox != "" && a.host != "" {
		return a.mailbox + "@" + a.host
	}
	return a.mailbox
}

// address is one address structure of RFC 3501 §7.4.2. A group start has
// only mailbox set, to the group's name.
type address struct {
	name, mailbox, host string
}

// firstAddress reads the first address of an RFC 5322 address-list,
// leniently: obsolete syntax (§4.4: routes, CFWS around dots, empty list
// members), groups, comments, unterminated quotes and brackets, and a
// name written without angle brackets before an addr-spec. A member that
// cannot be read as an address (several words but no "@" or "<", or no
// word at all) yields the zero address.
func firstAddress(raw string) address {
	if !utf8.ValidString(raw) {
		raw = latin1ish(raw) // as decodeText does: keys are UTF-8
	}
	toks := tokenize(raw)
	// Skip the empty members obs-addr-list allows (", , a@b").
	for len(toks) > 0 && toks[0].kind == tokSpecial && toks[0].text == "," {
		toks = toks[1:]
	}
	// The member ends at the first "," or ";" outside an angle-addr, or
	// at a ":" that makes it a group name. Inside "<...>", "," and ":"
	// belong to an obsolete route.
	end, angle, closing := len(toks), -1, -1
	for i, t := range toks {
		if t.kind != tokSpecial {
			continue
		}
		if angle >= 0 && closing < 0 {
			if t.text == ">" {
				closing = i
			}
			continue
		}
		if t.text == "<" && angle < 0 {
			angle = i
		} else if t.text == "," || t.text == ";" || (t.text == ":" && angle < 0) {
			end = i
			break
		}
	}
	seg := toks[:end]
	if end < len(toks) && toks[end].text == ":" {
		// RFC 3501 §7.4.2: a group starts with an address whose
		// mailbox is the group name and whose host is NIL.
		return address{mailbox: phrase(seg)}
	}
	if angle >= 0 {
		inside := seg[angle+1:]
		if closing >= 0 {
			inside = seg[angle+1 : closing]
		}
		a := addrSpec(stripRoute(inside))
		a.name = phrase(seg[:angle])
		if a.name == "" {
			a.name = firstComment(seg)
		}
		return a
	}
	// A bare addr-spec; words before its local part are taken as a
	// display name, as mail readers do with "John Doe john@example.com".
	at := -1
	for i, t := range seg {
		if t.kind == tokSpecial && t.text == "@" {
			at = i
			break
		}
	}
	start := localStart(seg, at)
	if at < 0 && start > 0 {
		return address{}
	}
	a := addrSpec(seg[start:])
	if a.mailbox == "" && a.host == "" {
		return address{} // nothing but comments or specials
	}
	a.name = phrase(seg[:start])
	if a.name == "" {
		a.name = firstComment(seg)
	}
	return a
}

// localStart returns where the local part ending before seg[at] (or at the
// end of seg when at < 0) begins: the last run of words joined by dots.
func localStart(seg []token, at int) int {
	if at < 0 {
		at = len(seg)
	}
	start, wantWord := at, true
	for i := at - 1; i >= 0; i-- {
		t := seg[i]
		switch {
		case t.kind == tokComment:
			continue
		case t.kind == tokSpecial && t.text == ".":
			wantWord = true
		case (t.kind == tokAtom || t.kind == tokQuoted) && wantWord:
			wantWord = false
		default:
			return start
		}
		start = i
	}
	return start
}

// stripRoute drops an obsolete source route, "@a,@b:" (RFC 5322 §4.4
// obs-route), from the inside of an angle-addr.
func stripRoute(seg []token) []token {
	for i, t := range seg {
		if t.kind == tokComment {
			continue
		}
		if t.kind != tokSpecial || (t.text != "@" && t.text != ",") {
			return seg
		}
		for j := i; j < len(seg); j++ {
			if seg[j].kind == tokSpecial && seg[j].text == ":" {
				return seg[j+1:]
			}
		}
		return seg
	}
	return seg
}

// addrSpec joins local-part "@" domain, dropping CFWS (obs-local-part and
// obs-domain allow it around dots) and quoting. It stops at a special that
// cannot be part of an addr-spec, which only garbage puts there.
func addrSpec(seg []token) address {
	var local, host strings.Builder
	dst := &local
	for _, t := range seg {
		switch {
		case t.kind == tokComment:
		case t.kind == tokSpecial && t.text == "@" && dst == &local:
			dst = &host
		case t.kind == tokSpecial && t.text != ".":
			return address{mailbox: local.String(), host: host.String()}
		default:
			dst.WriteString(t.text)
		}
	}
	return address{mailbox: local.String(), host: host.String()}
}

// phrase joins the words of a display name with the spacing they had;
// comments are not part of a phrase.
func phrase(seg []token) string {
	var b strings.Builder
	for _, t := range seg {
		if t.kind == tokComment {
			continue
		}
		if b.Len() > 0 && t.space {
			b.WriteByte(' ')
		}
		b.WriteString(t.text)
	}
	return b.String()
}

func firstComment(seg []token) string {
	for _, t := range seg {
		if t.kind == tokComment {
			if c := strings.Trim(collapseSpace(t.text), " "); c != "" {
				return c
			}
		}
	}
	return ""
}
