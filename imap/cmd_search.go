package imap

import (
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/letterbox-mail/letterbox/store"
)

// SEARCH and UID SEARCH (RFC 3501 §6.4.4, RFC 9051 §6.4.4) with ESEARCH
// (RFC 4731), SEARCHRES (RFC 5182), WITHIN (RFC 5032) and CONTEXT=SEARCH
// (RFC 5267).

// criteria is a decoded search program: every field must match (AND).
type criteria struct {
	seqSets     []imap.NumSet // sequence sets; "$" is imap.SearchRes()
	uidSets     []imap.NumSet
	since       time.Time // INTERNALDATE, days
	before      time.Time
	sentSince   time.Time // Date header, days
	sentBefore  time.Time
	savedSince  time.Time // RFC 8514 save date, days
	savedBefore time.Time
	older       int64 // WITHIN: seconds, 0 = unset
	younger     int64
	header      []imap.SearchCriteriaHeaderField // FROM, TO... as header "From"...
	body        []string
	text        []string
	flag        []imap.Flag // \Recent included
	notFlag     []imap.Flag
	larger      int64
	smaller     int64 // 0 = unset
	not         []criteria
	or          [][2]criteria
	modSeq      *imap.SearchCriteriaModSeq // RFC 7162 §3.1.5
}

// searchArgs is a decoded SEARCH.
type searchArgs struct {
	ret      imap.SearchOptions
	esearch  bool // RETURN given: answer ESEARCH (RFC 4731)
	charset  string
	criteria criteria
	partial  *partialRange // CONTEXT=SEARCH PARTIAL (RFC 5267 §4.4)
	update   bool          // RETURN (UPDATE)
	context  bool          // RETURN (CONTEXT)
	modSeq   uint64        // the result's MODSEQ (RFC 7162 §3.1.6), 0 if none
}

// partialRange is PARTIAL first:last; negative counts from the end.
type partialRange struct{ first, last int64 }

// maxSearchDepth bounds nesting of parentheses, NOT and OR.
const maxSearchDepth = 32

func parseSearch(p *parser, uid bool) searchArgs {
	var a searchArgs
	p.sp()
	if p.takeFold("RETURN ") {
		parseReturnOpts(p, &a)
		p.sp()
	}
	if p.takeFold("CHARSET ") {
		a.charset = p.astring()
		p.sp()
	}
	a.criteria = parseKeys(p, uid, 0)
	p.end()
	return a
}

// parseReturnOpts reads the list after RETURN (RFC 4731 §3.1, RFC 5267
// §4), for SEARCH and SORT.
func parseReturnOpts(p *parser, a *searchArgs) {
	a.esearch = true
	p.list(true, func() {
		switch w := p.word(); w {
		case "MIN":
			a.ret.ReturnMin = true
		case "MAX":
			a.ret.ReturnMax = true
		case "ALL":
			a.ret.ReturnAll = true
		case "COUNT":
			a.ret.ReturnCount = true
		case "SAVE":
			a.ret.ReturnSave = true
		case "CONTEXT":
			a.context = true
		case "UPDATE":
			a.update = true
		case "PARTIAL":
			p.sp()
			a.partial = parsePartialRange(p)
		default:
			p.fail("unknown RETURN option %s", w)
		}
	})
	if !a.ret.ReturnMin && !a.ret.ReturnMax && !a.ret.ReturnCount && !a.ret.ReturnSave && a.partial == nil {
		a.ret.ReturnAll = true // RFC 4731 §3.1: RETURN () is ALL
	}
	if a.partial != nil && a.ret.ReturnAll {
		p.fail("PARTIAL and ALL together")
	}
}

// parsePartialRange reads "n:m" with n, m nonzero and the same sign.
func parsePartialRange(p *parser) *partialRange {
	num := func() int64 {
		neg := p.maybe('-')
		n := int64(p.nzNumber())
		if neg {
			return -n
		}
		return n
	}
	r := &partialRange{first: num()}
	p.expect(':')
	r.last = num()
	if (r.first < 0) != (r.last < 0) {
		p.fail("PARTIAL range mixes signs")
	}
	if r.first > r.last && r.first > 0 || r.first < r.last && r.first < 0 {
		r.first, r.last = r.last, r.first
	}
	return r
}

// parseKeys reads search keys separated by spaces up to the end of the
// program or a closing parenthesis.
func parseKeys(p *parser, uid bool, depth int) criteria {
	var c criteria
	for {
		parseKey(p, &c, uid, depth)
		if p.peek() != ' ' {
			return c
		}
		p.sp()
	}
}

func parseKey(p *parser, c *criteria, uid bool, depth int) {
	if depth > maxSearchDepth {
		p.fail("search program nested too deeply")
	}
	switch ch := p.peek(); {
	case ch == '(':
		p.pos++
		sub := parseKeys(p, uid, depth+1)
		p.expect(')')
		c.and(sub)
		return
	case ch >= '1' && ch <= '9' || ch == '*' || ch == '$':
		c.seqSets = append(c.seqSets, p.numSet(false))
		return
	}
	str := func() string { p.sp(); return p.astring() }
	date := func() time.Time { p.sp(); return p.date() }
	switch w := p.word(); w {
	case "ALL":
	case "ANSWERED":
		c.flag = append(c.flag, imap.FlagAnswered)
	case "UNANSWERED":
		c.notFlag = append(c.notFlag, imap.FlagAnswered)
	case "DELETED":
		c.flag = append(c.flag, imap.FlagDeleted)
	case "UNDELETED":
		c.notFlag = append(c.notFlag, imap.FlagDeleted)
	case "DRAFT":
		c.flag = append(c.flag, imap.FlagDraft)
	case "UNDRAFT":
		c.notFlag = append(c.notFlag, imap.FlagDraft)
	case "FLAGGED":
		c.flag = append(c.flag, imap.FlagFlagged)
	case "UNFLAGGED":
		c.notFlag = append(c.notFlag, imap.FlagFlagged)
	case "SEEN":
		c.flag = append(c.flag, imap.FlagSeen)
	case "UNSEEN":
		c.notFlag = append(c.notFlag, imap.FlagSeen)
	case "RECENT":
		c.flag = append(c.flag, flagRecent)
	case "OLD":
		c.notFlag = append(c.notFlag, flagRecent)
	case "NEW":
		c.flag = append(c.flag, flagRecent)
		c.notFlag = append(c.notFlag, imap.FlagSeen)
	case "KEYWORD":
		p.sp()
		c.flag = append(c.flag, imap.Flag(p.atom()))
	case "UNKEYWORD":
		p.sp()
		c.notFlag = append(c.notFlag, imap.Flag(p.atom()))
	case "FROM", "TO", "CC", "BCC", "SUBJECT":
		key := w[:1] + strings.ToLower(w[1:])
		c.header = append(c.header, imap.SearchCriteriaHeaderField{Key: key, Value: str()})
	case "HEADER":
		k := str()
		c.header = append(c.header, imap.SearchCriteriaHeaderField{Key: k, Value: str()})
	case "BODY":
		c.body = append(c.body, str())
	case "TEXT":
		c.text = append(c.text, str())
	case "BEFORE":
		c.before = laterOf(c.before, date(), false)
	case "SINCE":
		c.since = laterOf(c.since, date(), true)
	case "ON":
		d := date()
		c.since = laterOf(c.since, d, true)
		c.before = laterOf(c.before, d.AddDate(0, 0, 1), false)
	case "SENTBEFORE":
		c.sentBefore = laterOf(c.sentBefore, date(), false)
	case "SENTSINCE":
		c.sentSince = laterOf(c.sentSince, date(), true)
	case "SENTON":
		d := date()
		c.sentSince = laterOf(c.sentSince, d, true)
		c.sentBefore = laterOf(c.sentBefore, d.AddDate(0, 0, 1), false)
	case "SAVEDBEFORE":
		c.savedBefore = laterOf(c.savedBefore, date(), false)
	case "SAVEDSINCE":
		c.savedSince = laterOf(c.savedSince, date(), true)
	case "SAVEDON":
		d := date()
		c.savedSince = laterOf(c.savedSince, d, true)
		c.savedBefore = laterOf(c.savedBefore, d.AddDate(0, 0, 1), false)
	case "SAVEDATESUPPORTED":
		// RFC 8514 §4: every mailbox here keeps save dates, so this
		// matches every message.
	case "LARGER":
		p.sp()
		c.larger = max(c.larger, int64(p.number64(1<<63-1)))
	case "SMALLER":
		p.sp()
		n := int64(p.number64(1<<63 - 1))
		if c.smaller == 0 || n < c.smaller {
			c.smaller = n
		}
	case "OLDER", "YOUNGER":
		p.sp()
		n := int64(p.nzNumber())
		if w == "OLDER" {
			c.older = max(c.older, n)
		} else if c.younger == 0 || n < c.younger {
			c.younger = n
		}
	case "UID":
		p.sp()
		c.uidSets = append(c.uidSets, p.numSet(true))
	case "MODSEQ":
		parseSearchModSeq(p, c)
	case "NOT":
		p.sp()
		var sub criteria
		parseKey(p, &sub, uid, depth+1)
		c.not = append(c.not, sub)
	case "OR":
		p.sp()
		var a, b criteria
		parseKey(p, &a, uid, depth+1)
		p.sp()
		parseKey(p, &b, uid, depth+1)
		c.or = append(c.or, [2]criteria{a, b})
	default:
		p.fail("unknown search key %s", w)
	}
}

// laterOf combines two bounds of the same kind: for SINCE the later,
// for BEFORE the earlier one holds.
func laterOf(old, d time.Time, since bool) time.Time {
	switch {
	case old.IsZero():
		return d
	case since && d.After(old), !since && d.Before(old):
		return d
	}
	return old
}

// and merges sub into c (a parenthesized list is an AND).
func (c *criteria) and(sub criteria) {
	c.seqSets = append(c.seqSets, sub.seqSets...)
	c.uidSets = append(c.uidSets, sub.uidSets...)
	if !sub.since.IsZero() {
		c.since = laterOf(c.since, sub.since, true)
	}
	if !sub.before.IsZero() {
		c.before = laterOf(c.before, sub.before, false)
	}
	if !sub.sentSince.IsZero() {
		c.sentSince = laterOf(c.sentSince, sub.sentSince, true)
	}
	if !sub.sentBefore.IsZero() {
		c.sentBefore = laterOf(c.sentBefore, sub.sentBefore, false)
	}
	if !sub.savedSince.IsZero() {
		c.savedSince = laterOf(c.savedSince, sub.savedSince, true)
	}
	if !sub.savedBefore.IsZero() {
		c.savedBefore = laterOf(c.savedBefore, sub.savedBefore, false)
	}
	c.older = max(c.older, sub.older)
	if sub.younger > 0 && (c.younger == 0 || sub.younger < c.younger) {
		c.younger = sub.younger
	}
	c.header = append(c.header, sub.header...)
	c.body = append(c.body, sub.body...)
	c.text = append(c.text, sub.text...)
	c.flag = append(c.flag, sub.flag...)
	c.notFlag = append(c.notFlag, sub.notFlag...)
	c.larger = max(c.larger, sub.larger)
	if sub.smaller > 0 && (c.smaller == 0 || sub.smaller < c.smaller) {
		c.smaller = sub.smaller
	}
	c.not = append(c.not, sub.not...)
	c.or = append(c.or, sub.or...)
	if sub.modSeq != nil && (c.modSeq == nil || sub.modSeq.ModSeq > c.modSeq.ModSeq) {
		c.modSeq = sub.modSeq
	}
}

// cmdSearch runs SEARCH or UID SEARCH over the client's view: messages
// expunged but not yet reported are left out, as are messages it has not
// been told of.
func (s *session) cmdSearch(cmd *command) error {
	a := parseSearch(cmd.p, cmd.uid)
	switch strings.ToUpper(a.charset) {
	case "", "UTF-8", "US-ASCII":
	default:
		return no("BADCHARSET", "Only UTF-8 and US-ASCII searches are supported")
	}
	if a.criteria.usesModSeq() {
		s.enableCondstore()
	}
	if a.ret.ReturnSave {
		s.searchRes = nil // RFC 5182 §2.1: a failed SEARCH leaves "$" empty
	}
	found, modSeqs, err := s.searchModSeq(&a.criteria)
	if err != nil {
		return err
	}
	a.modSeq = a.resultModSeq(found, modSeqs)
	if a.update {
		if err := s.startUpdate(cmd, &a, found); err != nil {
			return err
		}
	}
	if a.ret.ReturnSave {
		s.searchRes = savedResult(&a, found)
	}
	s.writeSearch(cmd, &a, found)
	return nil
}

// search returns the messages of the view that match, in order.
func (s *session) search(c *criteria) ([]target, error) {
	found, _, err := s.searchModSeq(c)
	return found, err
}

// searchChunk is how many messages search copies out of the store at a
// time: few enough that the copies are reused, not garbage the size of
// the mailbox, many enough that taking the store's read lock is rare.
const searchChunk = 8192

// searchModSeq is search that also returns the MODSEQ each message had
// when it matched.
func (s *session) searchModSeq(c *criteria) ([]target, []uint64, error) {
	sel := s.sel
	sc := &searchCtx{s: s, sel: sel, now: time.Now(), saved: make(map[uint32]bool), hdr: need{fields: headerKeys(c)}.withLower()}
	if n := len(sel.uids); n > 0 {
		sc.lastSeq, sc.lastUID = uint32(n), sel.uids[n-1]
	}
	for _, u := range s.searchRes {
		sc.saved[u] = true
	}
	var found []target
	var modSeqs []uint64
	sm := new(searchMsg) // one for all: match keeps nothing of it
	msgs := make([]store.Message, 0, min(searchChunk, len(sel.uids)))
	view := make([]target, 0, cap(msgs))
	for lo := 0; lo < len(sel.uids); lo += searchChunk {
		hi := min(lo+searchChunk, len(sel.uids))
		msgs, view = msgs[:0], view[:0]
		// Matching happens outside the lock (it may read files); the
		// messages of this chunk are copied out under it. The session's
		// UIDs and the store's are both in UID order: one walk, not a
		// lookup per message.
		err := sel.mbox.Read(s.ctx, func(v *store.View) {
			n := v.Len()
			j := v.SearchUID(sel.uids[lo])
			for i := lo; i < hi; i++ {
				uid := sel.uids[i]
				for j < n && v.UID(j) < uid {
					j++
				}
				if j < n && v.UID(j) == uid {
					msgs = append(msgs, v.At(j))
					view = append(view, target{seq: i + 1, uid: uid})
				}
			}
		})
		if err != nil {
			return nil, nil, err
		}
		for i, t := range view {
			*sm = searchMsg{t: t, msg: msgs[i], src: s.source(sel, t.uid)}
			ok, err := sc.match(sm, c)
			if err != nil {
				return nil, nil, err
			}
			if ok {
				found = append(found, t)
				modSeqs = append(modSeqs, msgs[i].ModSeq)
			}
		}
	}
	return found, modSeqs, nil
}

// savedResult is what SAVE keeps: with MIN or MAX but neither ALL nor
// COUNT, only those (RFC 5182 §2.4).
func savedResult(a *searchArgs, found []target) []uint32 {
	var saved []uint32
	if (a.ret.ReturnMin || a.ret.ReturnMax) && !a.ret.ReturnAll && !a.ret.ReturnCount {
		if len(found) > 0 {
			if a.ret.ReturnMin {
				saved = append(saved, found[0].uid)
			}
			if a.ret.ReturnMax && (!a.ret.ReturnMin || len(found) > 1) {
				saved = append(saved, found[len(found)-1].uid)
			}
		}
		return saved
	}
	for _, t := range found {
		saved = append(saved, t.uid)
	}
	return saved
}

// writeSearch writes "* SEARCH" or "* ESEARCH".
func (s *session) writeSearch(cmd *command, a *searchArgs, found []target) {
	o := &s.c.out
	num := func(t target) uint32 {
		if cmd.uid {
			return t.uid
		}
		return uint32(t.seq)
	}
	if !a.esearch && !s.rev2 {
		o.writeString("* SEARCH")
		for _, t := range found {
			o.sp()
			o.num(uint64(num(t)))
		}
		if a.modSeq > 0 {
			o.writeString(" (MODSEQ " + utoa(a.modSeq) + ")")
		}
		o.crlf()
		return
	}
	if !a.esearch {
		a.ret.ReturnAll = true // IMAP4rev2: SEARCH answers ESEARCH ALL
	}
	if a.ret.ReturnSave && !a.ret.ReturnMin && !a.ret.ReturnMax && !a.ret.ReturnCount && !a.ret.ReturnAll && a.partial == nil {
		return // RFC 5182 §2.4: SAVE alone answers nothing
	}
	o.writeString(`* ESEARCH (TAG `)
	o.str(cmd.tag)
	o.byte1(')')
	if cmd.uid {
		o.writeString(" UID")
	}
	nums := make([]uint32, len(found))
	for i, t := range found {
		nums[i] = num(t)
	}
	if a.ret.ReturnAll && len(nums) > 0 {
		o.writeString(" ALL " + numSetString(nums))
	}
	if a.ret.ReturnMin && len(nums) > 0 {
		o.writeString(" MIN " + itoa(int(nums[0])))
	}
	if a.ret.ReturnMax && len(nums) > 0 {
		o.writeString(" MAX " + itoa(int(nums[len(nums)-1])))
	}
	if a.ret.ReturnCount {
		o.writeString(" COUNT " + itoa(len(nums)))
	}
	if a.partial != nil {
		o.writeString(" PARTIAL (" + a.partial.String() + " ")
		if part := a.partial.cut(nums); len(part) > 0 {
			o.writeString(numSetString(part))
		} else {
			o.nilAtom()
		}
		o.byte1(')')
	}
	if a.modSeq > 0 {
		o.writeString(" MODSEQ " + utoa(a.modSeq))
	}
	o.crlf()
}

// numSetString writes ascending numbers in sequence-set form.
func numSetString(nums []uint32) string {
	var b strings.Builder
	for i := 0; i < len(nums); {
		j := i
		for j+1 < len(nums) && nums[j+1] == nums[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(itoa(int(nums[i])))
		if j > i {
			b.WriteString(":" + itoa(int(nums[j])))
		}
		i = j + 1
	}
	return b.String()
}

func (r *partialRange) String() string {
	return itoa64(r.first) + ":" + itoa64(r.last)
}

// cut returns the part of the results the range names (1-based, negative
// from the end, RFC 5267 §4.4).
func (r *partialRange) cut(nums []uint32) []uint32 {
	n := int64(len(nums))
	lo, hi := r.first, r.last
	if lo < 0 {
		lo, hi = n+hi+1, n+lo+1
	}
	lo = max(lo, 1)
	hi = min(hi, n)
	if lo > hi {
		return nil
	}
	return nums[lo-1 : hi]
}
