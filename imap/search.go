package imap

import (
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/letterbox-mail/letterbox/store"
)

type searchCtx struct {
	s       *session
	sel     *selected
	hdr     need // the header fields the program looks at, lower-cased once
	now     time.Time
	lastSeq uint32
	lastUID uint32
	saved   map[uint32]bool
}

// searchMsg is one message being matched; its header and text are read
// only if a key needs them, and once.
type searchMsg struct {
	t       target
	msg     store.Message
	src     msgSource
	header  []headerField
	hdrText string // all header fields decoded, lower case
	body    string // decoded text parts, lower case
	loadedH bool
	loadedB bool
	sent    time.Time
	gotSent bool
	date    time.Time
	gotDate bool
}

func (sc *searchCtx) match(m *searchMsg, c *criteria) (bool, error) {
	msg := m.msg
	for _, set := range c.seqSets {
		if imap.IsSearchRes(set) {
			if !sc.saved[msg.UID] {
				return false, nil
			}
		} else if !inSet(set, uint32(m.t.seq), sc.lastSeq) {
			return false, nil
		}
	}
	for _, set := range c.uidSets {
		if imap.IsSearchRes(set) {
			if !sc.saved[msg.UID] {
				return false, nil
			}
		} else if !inSet(set, msg.UID, sc.lastUID) {
			return false, nil
		}
	}
	for _, f := range c.flag {
		if !sc.hasFlag(msg, f) {
			return false, nil
		}
	}
	for _, f := range c.notFlag {
		if sc.hasFlag(msg, f) {
			return false, nil
		}
	}
	if c.modSeq != nil && msg.ModSeq < c.modSeq.ModSeq {
		return false, nil // RFC 7162 §3.1.5
	}
	if c.larger > 0 && msg.Size <= c.larger {
		return false, nil
	}
	if c.smaller > 0 && msg.Size >= c.smaller {
		return false, nil
	}
	if !c.since.IsZero() || !c.before.IsZero() || c.older > 0 || c.younger > 0 {
		d, ok := sc.internalDate(m)
		if !ok {
			return false, nil
		}
		if !dayInRange(d, c.since, c.before) {
			return false, nil
		}
		// RFC 5032: OLDER and YOUNGER compare the internal date with now.
		age := sc.now.Sub(d)
		if c.older > 0 && age < time.Duration(c.older)*time.Second {
			return false, nil
		}
		if c.younger > 0 && age > time.Duration(c.younger)*time.Second {
			return false, nil
		}
	}
	if !c.savedSince.IsZero() || !c.savedBefore.IsZero() {
		d, err := saveDate(m.src.mbox, m.msg.UID)
		if err != nil || !dayInRange(d, c.savedSince, c.savedBefore) {
			return false, nil
		}
	}
	if !c.sentSince.IsZero() || !c.sentBefore.IsZero() {
		d, err := sc.sentDate(m)
		if err != nil {
			return false, err
		}
		if !dayInRange(d, c.sentSince, c.sentBefore) {
			return false, nil
		}
	}
	for _, h := range c.header {
		ok, err := sc.headerMatch(m, h.Key, h.Value)
		if err != nil || !ok {
			return false, err
		}
	}
	for _, b := range c.body {
		if err := sc.loadBody(m); err != nil {
			return false, err
		}
		if !strings.Contains(m.body, fold(b)) {
			return false, nil
		}
	}
	for _, txt := range c.text {
		if err := sc.loadBody(m); err != nil {
			return false, err
		}
		needle := fold(txt)
		if !strings.Contains(m.hdrText, needle) && !strings.Contains(m.body, needle) {
			return false, nil
		}
	}
	for i := range c.not {
		ok, err := sc.match(m, &c.not[i])
		if err != nil || ok {
			return false, err
		}
	}
	for i := range c.or {
		a, err := sc.match(m, &c.or[i][0])
		if err != nil {
			return false, err
		}
		if !a {
			b, err := sc.match(m, &c.or[i][1])
			if err != nil || !b {
				return false, err
			}
		}
	}
	return true, nil
}

// saveDate is a message's save date (RFC 8514): when it came into this
// mailbox. Messages the store found already there when it built the
// folder's log have none; their internal date stands in, as the closest
// thing known (the RFC's NIL is for mailboxes that keep no save dates).
func saveDate(mbox *store.Mailbox, uid uint32) (time.Time, error) {
	if d, ok := mbox.SaveDate(uid); ok {
		return d, nil
	}
	return mbox.InternalDate(uid)
}

func (sc *searchCtx) internalDate(m *searchMsg) (time.Time, bool) {
	if !m.gotDate {
		d, err := m.src.mbox.InternalDate(m.msg.UID)
		if err != nil {
			return time.Time{}, false
		}
		m.date, m.gotDate = d, true
	}
	return m.date, true
}

// inSet reports whether n is in a sequence or UID set, "*" being last:
// "n:*" with n beyond the last still holds the last (RFC 3501 §9).
func inSet(set imap.NumSet, n, last uint32) bool {
	var ranges [][2]uint32
	switch set := set.(type) {
	case imap.SeqSet:
		for _, r := range set {
			ranges = append(ranges, [2]uint32{r.Start, r.Stop})
		}
	case imap.UIDSet:
		for _, r := range set {
			ranges = append(ranges, [2]uint32{uint32(r.Start), uint32(r.Stop)})
		}
	}
	for _, r := range ranges {
		lo, hi := r[0], r[1]
		if lo == 0 {
			lo = last
		}
		if hi == 0 {
			hi = last
		}
		if lo > hi {
			lo, hi = hi, lo
		}
		if n >= lo && n <= hi && n != 0 {
			return true
		}
	}
	return false
}

func (sc *searchCtx) hasFlag(m store.Message, f imap.Flag) bool {
	if strings.EqualFold(string(f), string(flagRecent)) {
		return sc.sel.recent[m.UID] || (sc.sel.readOnly && m.Recent)
	}
	if sf, ok := systemFlag(f); ok {
		return m.Flags.Has(sf)
	}
	return slices.ContainsFunc(m.Keywords, func(k string) bool { return strings.EqualFold(k, string(f)) })
}

// dayInRange compares the day of t as it is written (its own zone, time
// disregarded, RFC 3501 §6.4.4) with SINCE (inclusive) and BEFORE.
func dayInRange(t, since, before time.Time) bool {
	day := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	if !since.IsZero() && day.Before(dayOf(since)) {
		return false
	}
	if !before.IsZero() && !day.Before(dayOf(before)) {
		return false
	}
	return true
}

func dayOf(t time.Time) time.Time {
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}

// sentDate is the Date header; a message without one counts with its
// internal date.
func (sc *searchCtx) sentDate(m *searchMsg) (time.Time, error) {
	if !m.gotSent {
		m.gotSent = true
		info, err := sc.s.load(m.src, m.msg.Size, need{envelope: true})
		if err != nil {
			return time.Time{}, nil
		}
		var ok bool
		if m.sent, ok = sentDate(info.env.date); !ok {
			m.sent, _ = sc.internalDate(m)
		}
	}
	return m.sent, nil
}

// loadHeader reads the message's header fields that the search program
// names (sc.hdr): from the cache, which keeps the usual ones.
func (sc *searchCtx) loadHeader(m *searchMsg) error {
	if m.loadedH {
		return nil
	}
	m.loadedH = true
	info, err := sc.s.load(m.src, m.msg.Size, sc.hdr)
	if err != nil {
		return nil // gone: matches nothing
	}
	if info.head != nil {
		m.header = info.head.allFields()
	} else {
		m.header = allFields(info.header)
	}
	return nil
}

// headerText is a whole header as TEXT searches it: every field, values
// decoded.
func headerText(raw []byte) string {
	var b strings.Builder
	for _, f := range allFields(raw) {
		b.WriteString(f.name)
		b.WriteString(": ")
		b.WriteString(decodeHeader(f.value))
		b.WriteString("\n")
	}
	return fold(b.String())
}

// headerKeys returns the header fields a search program looks at, to be
// read at once.
func headerKeys(c *criteria) []string {
	var names []string
	var walk func(c *criteria)
	walk = func(c *criteria) {
		for _, h := range c.header {
			if !slices.ContainsFunc(names, func(n string) bool { return strings.EqualFold(n, h.Key) }) {
				names = append(names, h.Key)
			}
		}
		for i := range c.not {
			walk(&c.not[i])
		}
		for i := range c.or {
			walk(&c.or[i][0])
			walk(&c.or[i][1])
		}
	}
	walk(c)
	return names
}

// headerMatch is HEADER (and FROM, TO, CC, BCC, SUBJECT): a substring of
// the decoded value; an empty string matches any message with the field.
func (sc *searchCtx) headerMatch(m *searchMsg, key, value string) (bool, error) {
	if err := sc.loadHeader(m); err != nil {
		return false, err
	}
	key = strings.ToLower(key)
	needle := fold(value)
	for _, f := range m.header {
		if f.name != key {
			continue
		}
		if needle == "" || strings.Contains(fold(decodeHeader(f.value)), needle) {
			return true, nil
		}
		if addressFields[key] && strings.Contains(fold(addressText(f.value)), needle) {
			return true, nil
		}
	}
	return false, nil
}

// addressFields hold address lists: they are also searched in their
// parsed form, so FROM user@domain.org finds
// "<user (comment)@ (comment) domain.org>" (comments and white space are
// not part of the address, RFC 5322 §3.4.1), as Dovecot does.
var addressFields = map[string]bool{
	"from": true, "to": true, "cc": true, "bcc": true, "sender": true, "reply-to": true,
}

// addressText is an address list as "name <local@domain>, ...", names
// decoded.
func addressText(v string) string {
	var b strings.Builder
	for _, a := range addressList(v) {
		if a.groupEnd {
			continue
		}
		if b.Len() > 0 {
			b.WriteString(", ")
		}
		if a.name != "" {
			b.WriteString(decodeHeader(a.name))
			b.WriteByte(' ')
		}
		b.WriteString("<" + a.mailbox)
		if a.host != "" {
			b.WriteString("@" + a.host)
		}
		b.WriteByte('>')
	}
	return b.String()
}

// loadBody reads the message, once, and decodes its header and its text
// parts.
func (sc *searchCtx) loadBody(m *searchMsg) error {
	if m.loadedB {
		return nil
	}
	m.loadedB = true
	info, raw, err := sc.s.whole(m.src)
	if err != nil {
		return sc.loadHeader(m) // gone: the body matches nothing
	}
	hdr := raw[:min(info.root.bodyOff, int64(len(raw)))]
	m.hdrText = headerText(hdr)
	if !m.loadedH {
		m.loadedH = true
		m.header = allFields(hdr)
	}
	var b strings.Builder
	bodyText(&b, raw, info.root, true)
	m.body = fold(b.String())
	return nil
}

// bodyText collects the decoded text of a message's body: text parts, and
// the headers and text of messages inside it.
func bodyText(b *strings.Builder, raw []byte, p *mimePart, top bool) {
	switch {
	case p.isMultipart():
		for _, c := range p.children {
			bodyText(b, raw, c, false)
		}
	case p.msg != nil:
		inner := p.msg
		if inner.bodyOff <= int64(len(raw)) && inner.hdrOff <= inner.bodyOff {
			for _, f := range allFields(raw[inner.hdrOff:inner.bodyOff]) {
				b.WriteString(decodeHeader(f.value))
				b.WriteString("\n")
			}
		}
		bodyText(b, raw, inner, false)
	case p.typ == "text" || (top && p.typ == "multipart"):
		end := min(p.end, int64(len(raw)))
		if p.bodyOff > end {
			return
		}
		data := raw[p.bodyOff:end]
		cte := strings.ToLower(strings.TrimSpace(stripComments(p.header("content-transfer-encoding"))))
		if cte == "base64" || cte == "quoted-printable" {
			data = decodeCTE(cte, data)
		}
		b.WriteString(toUTF8(p.param("charset"), data))
		b.WriteString("\n")
	}
}

// allFields parses every field of a raw header, walked as HEADER.FIELDS
// walks it (walkFields).
func allFields(raw []byte) []headerField {
	var out []headerField
	walkFields(raw, func(name, field []byte) bool {
		if len(name) > 0 {
			out = append(out, headerField{name: lowerName(string(name)), value: fieldValue(field)})
		}
		return true
	})
	return out
}

// fold is the case folding text keys are compared under.
func fold(s string) string { return strings.ToLower(s) }
