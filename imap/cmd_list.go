package imap

import (
	"strings"
	"unicode/utf8"

	"github.com/emersion/go-imap/v2"

	"github.com/letterbox-mail/letterbox/store"
)

// LIST (RFC 3501 §6.3.8, RFC 9051 §6.3.9) with LIST-EXTENDED (RFC 5258),
// LIST-STATUS (RFC 5819), SPECIAL-USE (RFC 6154) and CHILDREN (RFC 3348),
// and LSUB (RFC 3501 §6.3.9).

// listArgs is a decoded LIST or LSUB.
type listArgs struct {
	ref      string
	patterns []string
	opts     imap.ListOptions
	extended bool // LIST-EXTENDED syntax used (selection, several patterns, RETURN)
}

// parseListArgs decodes the arguments of LIST (lsub false) or LSUB. Names are
// left as sent (modified UTF-7 or UTF-8).
func parseListArgs(p *parser, lsub bool) listArgs {
	var a listArgs
	p.sp()
	if !lsub && p.peek() == '(' {
		a.extended = true
		p.list(true, func() {
			switch w := p.word(); w {
			case "SUBSCRIBED":
				a.opts.SelectSubscribed = true
			case "REMOTE":
				a.opts.SelectRemote = true
			case "RECURSIVEMATCH":
				a.opts.SelectRecursiveMatch = true
			case "SPECIAL-USE":
				a.opts.SelectSpecialUse = true
			default:
				p.fail("unknown LIST selection option %s", w)
			}
		})
		if a.opts.SelectRecursiveMatch && !a.opts.SelectSubscribed && !a.opts.SelectSpecialUse {
			p.fail("RECURSIVEMATCH needs another selection option")
		}
		p.sp()
	}
	a.ref = p.astring()
	p.sp()
	if !lsub && p.peek() == '(' {
		a.extended = true
		p.list(false, func() { a.patterns = append(a.patterns, p.listMailbox()) })
	} else {
		a.patterns = []string{p.listMailbox()}
	}
	if !lsub && p.maybeSP() {
		if !p.takeFold("RETURN") {
			p.fail("expected RETURN")
		}
		a.extended = true
		p.sp()
		p.list(true, func() {
			switch w := p.word(); w {
			case "SUBSCRIBED":
				a.opts.ReturnSubscribed = true
			case "CHILDREN":
				a.opts.ReturnChildren = true
			case "SPECIAL-USE":
				a.opts.ReturnSpecialUse = true
			case "STATUS":
				p.sp()
				a.opts.ReturnStatus = parseStatusItems(p)
			default:
				p.fail("unknown LIST return option %s", w)
			}
		})
	}
	p.end()
	return a
}

// listMailbox reads list-mailbox: list-chars (wildcards allowed) or a
// string.
func (p *parser) listMailbox() string {
	if c := p.peek(); c == '"' || c == '{' {
		return p.str(p.c.srv.maxLiteral())
	}
	start := p.pos
	for p.pos < len(p.line) {
		c := p.line[p.pos]
		if isAtomChar(c) || c == '%' || c == '*' || c == ']' {
			p.pos++
			continue
		}
		break
	}
	if p.pos == start {
		p.fail("expected a mailbox pattern")
	}
	return string(p.line[start:p.pos])
}

// listEntry is a name LIST or LSUB may show.
type listEntry struct {
	name        string
	exists      bool // a folder that can be selected
	parent      bool // exists only as the parent of others
	hasChildren bool
	subscribed  bool
	use         store.SpecialUse
}

func (s *session) cmdList(cmd *command) error {
	lsub := cmd.name == "LSUB"
	a := parseListArgs(cmd.p, lsub)
	o := &s.c.out
	if len(a.patterns) == 1 && a.patterns[0] == "" && !a.extended {
		// LIST "" "" asks for the delimiter (RFC 3501 §6.3.8).
		o.writeString(`* ` + cmd.name + ` (\Noselect) "/" ""` + "\r\n")
		return nil
	}
	ref, err := s.decodePattern(a.ref)
	if err != nil {
		return nil // names nothing: OK without a match
	}
	var pats []string
	for _, raw := range a.patterns {
		pat, err := s.decodePattern(raw)
		if err != nil {
			continue
		}
		pats = append(pats, fullPattern(ref, pat))
	}
	entries, subs, err := s.listEntries()
	if err != nil {
		return err
	}
	match := func(name string) bool {
		for _, pat := range pats {
			if matchPattern(name, pat) {
				return true
			}
		}
		return false
	}
	if lsub {
		s.lsub(entries, subs, match)
		return nil
	}
	opts := &a.opts
	for _, e := range entries {
		if !match(e.name) || (!e.exists && !e.parent && !opts.SelectSubscribed) {
			continue
		}
		selected := (!opts.SelectSubscribed || e.subscribed) &&
			(!opts.SelectSpecialUse || e.use != store.UseNone)
		childInfo := false
		if !selected {
			// RFC 5258 §3.5: a parent of a match of the selection,
			// unless that match is listed itself.
			if !opts.SelectRecursiveMatch || !hasDescendant(entries, e.name, func(c listEntry) bool {
				return (!opts.SelectSubscribed || c.subscribed) &&
					(!opts.SelectSpecialUse || c.use != store.UseNone) && !match(c.name)
			}) {
				continue
			}
			childInfo = true
		}
		attrs := listAttrs(e, a.extended)
		if selected && e.subscribed && (opts.ReturnSubscribed || opts.SelectSubscribed) {
			attrs = append(attrs, `\Subscribed`)
		}
		o.writeString("* LIST (" + strings.Join(attrs, " ") + `) "/" `)
		s.writeName(e.name)
		if childInfo {
			o.writeString(` (CHILDINFO ("SUBSCRIBED"))`)
		}
		o.crlf()
		if opts.ReturnStatus != nil && e.exists && selected {
			// RFC 5819 §2: a mailbox that cannot be read gets no STATUS.
			if st, err := s.status(e.name, opts.ReturnStatus); err == nil {
				s.writeStatus(e.name, opts.ReturnStatus, st)
			}
		}
	}
	return nil
}

// listAttrs are a mailbox's LIST attributes but \Subscribed. A parent
// that exists only as a parent is \Noselect, or \NonExistent in an
// extended LIST (RFC 5258 §3); LIST events of NOTIFY use the former.
func listAttrs(e listEntry, extended bool) []string {
	var attrs []string
	switch {
	case !e.exists && (!e.parent || extended):
		attrs = append(attrs, `\NonExistent`)
	case !e.exists:
		attrs = append(attrs, `\Noselect`)
	}
	if e.exists || e.parent {
		if e.hasChildren {
			attrs = append(attrs, `\HasChildren`)
		} else {
			attrs = append(attrs, `\HasNoChildren`)
		}
	}
	if attr, ok := useAttr(e.use); ok {
		attrs = append(attrs, string(attr))
	}
	return attrs
}

// decodePattern decodes a reference or pattern like a mailbox name.
func (s *session) decodePattern(raw string) (string, error) {
	if s.utf8Names() {
		if !utf8.ValidString(raw) {
			return "", errBadName
		}
		return raw, nil
	}
	return decodeMUTF7(raw)
}

// fullPattern puts reference and pattern together (RFC 3501 §6.3.8); a
// pattern starting with the separator ignores the reference. A leading
// INBOX level is case-insensitive.
func fullPattern(ref, pat string) string {
	sep := string(store.Separator)
	if strings.HasPrefix(pat, sep) {
		ref, pat = "", pat[1:]
	}
	if ref != "" && !strings.HasSuffix(ref, sep) && pat != "" {
		ref += sep
	}
	return canonInbox(ref + pat)
}

// matchPattern matches a name against a pattern where "*" matches anything
// and "%" anything but the separator, in time linear in their product.
func matchPattern(name, pat string) bool {
	// prev[j]: pat[:i] matches name[:j].
	prev := make([]bool, len(name)+1)
	cur := make([]bool, len(name)+1)
	prev[0] = true
	for i := 0; i < len(pat); i++ {
		c := pat[i]
		switch c {
		case '*', '%':
			cur[0] = prev[0]
			for j := 1; j <= len(name); j++ {
				cur[j] = prev[j] || (cur[j-1] && (c == '*' || name[j-1] != store.Separator))
			}
		default:
			cur[0] = false
			for j := 1; j <= len(name); j++ {
				cur[j] = prev[j-1] && name[j-1] == c
			}
		}
		prev, cur = cur, prev
	}
	return prev[len(name)]
}

// lsub answers LSUB: the subscribed names that match, in the order of the
// subscriptions file, and, for "%", a \Noselect parent of a deeper
// subscription that is not itself subscribed (RFC 3501 §6.3.9).
func (s *session) lsub(entries []listEntry, subs []string, match func(string) bool) {
	o := &s.c.out
	uses := make(map[string]store.SpecialUse)
	for _, e := range entries {
		uses[e.name] = e.use
	}
	isSub := make(map[string]bool, len(subs))
	for _, n := range subs {
		isSub[n] = true
	}
	sent := make(map[string]bool)
	write := func(name, attrs string) {
		sent[name] = true
		o.writeString("* LSUB (" + attrs + `) "/" `)
		s.writeName(name)
		o.crlf()
	}
	for _, n := range subs {
		if match(n) {
			if !sent[n] {
				attr, _ := useAttr(uses[n])
				write(n, string(attr))
			}
			continue
		}
		for i := strings.LastIndexByte(n, store.Separator); i > 0; i = strings.LastIndexByte(n[:i], store.Separator) {
			parent := n[:i]
			if isSub[parent] || sent[parent] || !match(parent) {
				continue
			}
			write(parent, `\Noselect`)
		}
	}
}

// listEntries merges the folders with the subscriptions, which may name
// folders that do not exist, and returns the subscriptions too.
func (s *session) listEntries() ([]listEntry, []string, error) {
	infos, err := s.user.List()
	if err != nil {
		return nil, nil, err
	}
	subs, err := s.user.Subscriptions()
	if err != nil {
		return nil, nil, err
	}
	out := make([]listEntry, 0, len(infos)+len(subs))
	known := make(map[string]bool, len(infos))
	for _, mi := range infos {
		known[mi.Name] = true
		out = append(out, listEntry{
			name:        mi.Name,
			exists:      !mi.NoSelect,
			parent:      mi.NoSelect,
			hasChildren: mi.HasChildren,
			subscribed:  mi.Subscribed,
			use:         mi.SpecialUse,
		})
	}
	for _, n := range subs {
		if !known[n] {
			known[n] = true
			out = append(out, listEntry{name: n, subscribed: true})
		}
	}
	return out, subs, nil
}

func hasDescendant(entries []listEntry, name string, pred func(listEntry) bool) bool {
	prefix := name + string(store.Separator)
	for _, e := range entries {
		if strings.HasPrefix(e.name, prefix) && pred(e) {
			return true
		}
	}
	return false
}

// canonInbox upper-cases a leading INBOX level of a name or pattern:
// INBOX is case-insensitive (RFC 3501 §5.1).
func canonInbox(s string) string {
	if len(s) >= 5 && strings.EqualFold(s[:5], store.Inbox) &&
		(len(s) == 5 || s[5] == store.Separator || s[5] == '*' || s[5] == '%') {
		return store.Inbox + s[5:]
	}
	return s
}

var useAttrs = []struct {
	use  store.SpecialUse
	attr imap.MailboxAttr
}{
	{store.UseAll, imap.MailboxAttrAll},
	{store.UseArchive, imap.MailboxAttrArchive},
	{store.UseDrafts, imap.MailboxAttrDrafts},
	{store.UseFlagged, imap.MailboxAttrFlagged},
	{store.UseJunk, imap.MailboxAttrJunk},
	{store.UseSent, imap.MailboxAttrSent},
	{store.UseTrash, imap.MailboxAttrTrash},
}

func useAttr(u store.SpecialUse) (imap.MailboxAttr, bool) {
	for _, x := range useAttrs {
		if x.use == u {
			return x.attr, true
		}
	}
	return "", false
}
