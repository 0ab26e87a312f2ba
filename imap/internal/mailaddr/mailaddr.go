// Package mailaddr reads RFC 5322 address lists the way IMAP shows them in
// an ENVELOPE (RFC 3501 §7.4.2): display name, obsolete source route,
// mailbox and host, with groups as start and end markers. The IMAP engine
// builds ENVELOPE from it and mailsort its SORT keys (RFC 5256 FROM, TO,
// CC; RFC 5957 DISPLAYFROM, DISPLAYTO), so that what a client sorts by is
// what it is shown.
//
// It reads leniently, as mail needs: the obsolete forms of RFC 5322 §4.4
// (routes, CFWS around dots, empty list members), comments anywhere,
// unterminated quotes, comments and brackets, a name written without angle
// brackets before an addr-spec. Values are bytes as written: encoded-words
// are not decoded and 8-bit text is left as it is.
package mailaddr

import "strings"

// Kind says what an Address stands for.
type Kind uint8

const (
	// Mailbox is an address.
	Mailbox Kind = iota
	// GroupStart starts a group: Mailbox holds the group's name and the
	// other fields are empty (an ENVELOPE address with a NIL host).
	GroupStart
	// GroupEnd ends a group: every field is empty.
	GroupEnd
)

// Address is one address of a list as ENVELOPE has it.
type Address struct {
	Kind Kind
	// Name is the display name, quotes removed and words joined by the
	// spaces they had; for an addr-spec without one, the last comment
	// ("user@host (Real Name)"), as Dovecot shows it.
	Name string
	// Route is an obsolete source route, "@a,@b" (RFC 5322 §4.4
	// obs-route), without its colon.
	Route string
	// Mailbox and Host are the local part and the domain, without
	// quoting, comments or white space. Host is empty if the address had
	// no "@".
	Mailbox, Host string
}

// List returns the addresses of a field value, in order. Members that hold
// no address (nothing but a name, "<>", only comments) are left out: an
// ENVELOPE address without mailbox and host would read as a group's end.
// A group left open is closed at the end.
func List(raw string) []Address {
	var out []Address
	parse(raw, func(a Address) bool {
		out = append(out, a)
		return true
	})
	return out
}

// First returns the first address List would return, and false if there
// is none. It stops reading at that address.
func First(raw string) (Address, bool) {
	var first Address
	found := false
	parse(raw, func(a Address) bool {
		first, found = a, true
		return false
	})
	return first, found
}

// parse calls emit for each address until it returns false.
func parse(raw string, emit func(Address) bool) {
	if strings.TrimSpace(raw) == "" {
		return
	}
	toks := tokenize(raw)
	inGroup := false
	for len(toks) > 0 {
		end := memberEnd(toks)
		seg := toks[:end]
		sep := ""
		if end < len(toks) {
			sep = toks[end].text
			toks = toks[end+1:]
		} else {
			toks = nil
		}
		if sep == ":" {
			if inGroup && !emit(Address{Kind: GroupEnd}) {
				return
			}
			inGroup = true
			if !emit(Address{Kind: GroupStart, Mailbox: phrase(seg)}) {
				return
			}
			continue
		}
		if a, ok := member(seg); ok && !emit(a) {
			return
		}
		if sep == ";" && inGroup {
			inGroup = false
			if !emit(Address{Kind: GroupEnd}) {
				return
			}
		}
	}
	if inGroup {
		emit(Address{Kind: GroupEnd})
	}
}

// memberEnd returns the index of the "," or ";" that ends the list member
// at the start of toks, or of the ":" that makes it a group's name
// (len(toks) if none). Inside "<...>", "," and ":" belong to an obsolete
// route.
func memberEnd(toks []token) int {
	angle := false
	for i, t := range toks {
		if t.kind != tokSpecial {
			continue
		}
		switch t.text {
		case "<":
			angle = true
		case ">":
			angle = false
		case ",", ";", ":":
			if !angle {
				return i
			}
		}
	}
	return len(toks)
}

// member reads one mailbox: name-addr or addr-spec. ok is false when it
// holds no address.
func member(seg []token) (a Address, ok bool) {
	angle, closing := -1, -1
	for i, t := range seg {
		if t.kind == tokSpecial && t.text == "<" && angle < 0 {
			angle = i
		} else if t.kind == tokSpecial && t.text == ">" && angle >= 0 {
			closing = i
			break
		}
	}
	if angle >= 0 {
		inside := seg[angle+1:]
		if closing >= 0 {
			inside = seg[angle+1 : closing]
		}
		route, spec := splitRoute(inside)
		a = addrSpec(spec)
		a.Route = route
		a.Name = phrase(seg[:angle])
		return a, a.Mailbox != "" || a.Host != ""
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
		return Address{}, false // several words and no "@": a name alone
	}
	a = addrSpec(seg[start:])
	if a.Mailbox == "" && a.Host == "" {
		return Address{}, false
	}
	a.Name = phrase(seg[:start])
	if a.Name == "" {
		a.Name = lastComment(seg)
	}
	return a, true
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

// splitRoute separates an obsolete source route, "@a,@b:" (RFC 5322 §4.4
// obs-route), from the addr-spec after it inside an angle-addr.
func splitRoute(seg []token) (route string, spec []token) {
	for i, t := range seg {
		if t.kind == tokComment {
			continue
		}
		if t.kind != tokSpecial || (t.text != "@" && t.text != ",") {
			return "", seg
		}
		for j := i; j < len(seg); j++ {
			if seg[j].kind == tokSpecial && seg[j].text == ":" {
				var b strings.Builder
				for _, r := range seg[i:j] {
					if r.kind != tokComment {
						b.WriteString(r.text)
					}
				}
				return b.String(), seg[j+1:]
			}
		}
		return "", seg
	}
	return "", seg
}

// addrSpec joins local-part "@" domain, dropping CFWS (obs-local-part and
// obs-domain allow it around dots) and quoting. It stops at a special that
// cannot be part of an addr-spec, which only garbage puts there.
func addrSpec(seg []token) Address {
	var local, host strings.Builder
	dst := &local
	for _, t := range seg {
		switch {
		case t.kind == tokComment:
		case t.kind == tokSpecial && t.text == "@" && dst == &local:
			dst = &host
		case t.kind == tokSpecial && t.text != ".":
			return Address{Mailbox: local.String(), Host: host.String()}
		default:
			dst.WriteString(t.text)
		}
	}
	return Address{Mailbox: local.String(), Host: host.String()}
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

// lastComment is the last non-blank comment, white space collapsed.
func lastComment(seg []token) string {
	for i := len(seg) - 1; i >= 0; i-- {
		if t := seg[i]; t.kind == tokComment {
			if c := collapse(t.text); c != "" {
				return c
			}
		}
	}
	return ""
}

// collapse turns runs of white space into one space and trims it.
func collapse(s string) string {
	var b strings.Builder
	space := false
	for i := 0; i < len(s); i++ {
		if isSpace(s[i]) {
			space = b.Len() > 0
			continue
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
