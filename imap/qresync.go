package imap

import (
	"sort"
	"strings"

	"github.com/emersion/go-imap/v2"

	"github.com/letterbox-mail/letterbox/store"
)

// QRESYNC (RFC 7162 §3.2): SELECT/EXAMINE (QRESYNC (...)), UID FETCH
// (VANISHED) and the VANISHED (EARLIER) response, from the store's
// expunge log. The log keeps expunged UIDs for a while
// (store.Options.ExpungeRetention) and forgets them when it is rebuilt;
// past that, every UID the client asks about that is not in the mailbox
// is reported, which §3.2.5.1 allows (a client ignores UIDs it does not
// know, and a UID once expunged never comes back).

// selectParams are the select-params of SELECT and EXAMINE (RFC 4466).
type selectParams struct {
	condstore bool
	qresync   *qresyncParams
}

// qresyncParams is "QRESYNC (uidvalidity modseq [known-uids
// [seq-match-data]])" (RFC 7162 §3.2.5).
type qresyncParams struct {
	uidValidity uint32
	modSeq      uint64
	known       uidRanges // nil: not given
	// seq-match-data: known-sequence-set and known-uid-set, ascending.
	matchSeqs, matchUIDs uidRanges
}

func parseSelectParams(p *parser) selectParams {
	var sp selectParams
	p.list(false, func() {
		switch w := p.word(); w {
		case "CONDSTORE":
			if sp.condstore {
				p.fail("CONDSTORE twice")
			}
			sp.condstore = true
		case "QRESYNC":
			if sp.qresync != nil {
				p.fail("QRESYNC twice")
			}
			p.sp()
			sp.qresync = parseQresync(p)
		default:
			p.fail("unknown SELECT parameter %s", w)
		}
	})
	return sp
}

func parseQresync(p *parser) *qresyncParams {
	q := &qresyncParams{}
	p.expect('(')
	q.uidValidity = p.nzNumber()
	p.sp()
	// A mod-sequence-value is at least 1 (§7); 0, which a client with
	// nothing cached might send, asks for everything.
	q.modSeq = p.number64(maxModSeq)
	if p.maybeSP() {
		if p.peek() != '(' {
			q.known = p.uidRanges(false).normalize()
			if p.maybeSP() && p.peek() != '(' {
				p.fail("expected seq-match-data")
			}
		}
		if p.peek() == '(' {
			p.pos++
			q.matchSeqs = p.uidRanges(true)
			p.sp()
			q.matchUIDs = p.uidRanges(true)
			p.expect(')')
			if q.matchSeqs.count() != q.matchUIDs.count() {
				p.fail("seq-match-data: not as many sequence numbers as UIDs")
			}
		}
	}
	p.expect(')')
	return q
}

// uidRanges are inclusive ranges of UIDs (or sequence numbers).
type uidRanges [][2]uint32

// uidRanges reads a sequence-set without "*" (RFC 7162 known-uids,
// known-sequence-set, known-uid-set). ascending requires each number
// above the one before, as seq-match-data must be.
func (p *parser) uidRanges(ascending bool) uidRanges {
	var out uidRanges
	for {
		a := p.nzNumber()
		b := a
		if p.maybe(':') {
			b = p.nzNumber()
		}
		if a > b {
			if ascending {
				p.fail("seq-match-data must be ascending")
			}
			a, b = b, a
		}
		if ascending && len(out) > 0 && a <= out[len(out)-1][1] {
			p.fail("seq-match-data must be ascending")
		}
		out = append(out, [2]uint32{a, b})
		if !p.maybe(',') {
			return out
		}
	}
}

// normalize sorts and merges the ranges.
func (r uidRanges) normalize() uidRanges {
	sort.Slice(r, func(i, j int) bool { return r[i][0] < r[j][0] })
	out := r[:0]
	for _, x := range r {
		if n := len(out); n > 0 && uint64(x[0]) <= uint64(out[n-1][1])+1 {
			out[n-1][1] = max(out[n-1][1], x[1])
			continue
		}
		out = append(out, x)
	}
	return out
}

func (r uidRanges) count() uint64 {
	var n uint64
	for _, x := range r {
		n += uint64(x[1]-x[0]) + 1
	}
	return n
}

// has reports whether u is in normalized ranges.
func (r uidRanges) has(u uint32) bool {
	i := sort.Search(len(r), func(i int) bool { return r[i][1] >= u })
	return i < len(r) && r[i][0] <= u
}

func (r uidRanges) String() string {
	var b strings.Builder
	for i, x := range r {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(itoa(int(x[0])))
		if x[1] != x[0] {
			b.WriteString(":" + itoa(int(x[1])))
		}
	}
	return b.String()
}

// rangesOf turns ascending UIDs into ranges.
func rangesOf(uids []uint32) uidRanges {
	var out uidRanges
	for _, u := range uids {
		if n := len(out); n > 0 && out[n-1][1]+1 == u {
			out[n-1][1] = u
			continue
		}
		out = append(out, [2]uint32{u, u})
	}
	return out
}

// uidSetRanges turns a UID set of a command into normalized ranges, "*"
// standing for star; "$" is the saved search result (RFC 5182).
func (s *session) uidSetRanges(set imap.NumSet, star uint32) uidRanges {
	if imap.IsSearchRes(set) {
		u := append([]uint32(nil), s.searchRes...)
		sort.Slice(u, func(i, j int) bool { return u[i] < u[j] })
		return rangesOf(dedupUIDs(u))
	}
	var out uidRanges
	us, _ := set.(imap.UIDSet)
	for _, r := range us {
		lo, hi := uint32(r.Start), uint32(r.Stop)
		if lo == 0 {
			lo = star
		}
		if hi == 0 {
			hi = star
		}
		if lo > hi {
			lo, hi = hi, lo
		}
		if lo == 0 {
			lo = 1
		}
		if hi > 0 {
			out = append(out, [2]uint32{lo, hi})
		}
	}
	return out.normalize()
}

// missing returns the UIDs of want above floor and below uidNext that are
// not in present (ascending): what a client is told vanished when the
// log cannot say exactly.
func missing(want uidRanges, floor, uidNext uint32, present []uint32) uidRanges {
	var out uidRanges
	if uidNext <= 1 {
		return nil
	}
	for _, r := range want {
		lo, hi := max(r[0], floor+1), min(r[1], uidNext-1)
		if floor == ^uint32(0) || lo > hi {
			continue
		}
		i := sort.Search(len(present), func(i int) bool { return present[i] >= lo })
		cur := lo
		for ; i < len(present) && present[i] <= hi; i++ {
			if present[i] > cur {
				out = append(out, [2]uint32{cur, present[i] - 1})
			}
			cur = present[i] + 1
		}
		if cur <= hi && cur >= lo {
			out = append(out, [2]uint32{cur, hi})
		}
	}
	return out
}

// matchFloor is the highest UID of the seq-match-data whose sequence
// number in present is the one the client gave (RFC 7162 §3.2.5.2): the
// client then knows exactly the messages up to it, and only UIDs above
// it can have vanished. 0 if none matches.
func (q *qresyncParams) matchFloor(present []uint32) uint32 {
	var floor uint32
	ui, uo := 0, uint32(0) // cursor in matchUIDs: range, offset
	for _, sr := range q.matchSeqs {
		for seq := uint64(sr[0]); seq <= uint64(sr[1]); seq++ {
			if seq > uint64(len(present)) {
				return floor
			}
			uid := q.matchUIDs[ui][0] + uo
			if q.matchUIDs[ui][0]+uo == q.matchUIDs[ui][1] {
				ui, uo = ui+1, 0
			} else {
				uo++
			}
			if present[seq-1] == uid {
				floor = uid
			}
		}
	}
	return floor
}

// resyncMsg is a message changed since the client's MODSEQ.
type resyncMsg struct {
	seq int
	msg store.Message
}

// changedSince returns the messages of the view the client knows (all if
// it named none) with a MODSEQ above its own.
func (q *qresyncParams) changedSince(v *store.View) []resyncMsg {
	var out []resyncMsg
	for i, n := 0, v.Len(); i < n; i++ {
		m := v.At(i)
		if m.ModSeq > q.modSeq && (q.known == nil || q.known.has(m.UID)) {
			out = append(out, resyncMsg{seq: i + 1, msg: m})
		}
	}
	return out
}

// resyncVanished is the VANISHED (EARLIER) of a SELECT (QRESYNC): the
// UIDs the client may know that were expunged since its MODSEQ. The view
// the session starts from (sel.uids) holds what is expunged after it:
// those come as updates.
func (s *session) resyncVanished(sel *selected, q *qresyncParams, uidNext uint32) (uidRanges, error) {
	exp, complete, err := sel.mbox.Expunged(s.ctx, q.modSeq)
	if err != nil {
		return nil, err
	}
	if complete {
		var out []uint32
		for _, u := range exp {
			if u < uidNext && (q.known == nil || q.known.has(u)) && sel.seqOf(u) == 0 {
				out = append(out, u)
			}
		}
		return rangesOf(out), nil
	}
	want := q.known
	if want == nil {
		want = uidRanges{{1, max(uidNext, 2) - 1}}
	}
	var floor uint32
	if q.matchSeqs != nil {
		floor = q.matchFloor(sel.uids)
	}
	return missing(want, floor, uidNext, sel.uids), nil
}

// writeResync writes what SELECT (QRESYNC) adds (RFC 7162 §3.2.5.1):
// VANISHED (EARLIER), then a FETCH with UID, FLAGS and MODSEQ of each
// message changed.
func (s *session) writeResync(vanished uidRanges, changed []resyncMsg) {
	o := &s.c.out
	if len(vanished) > 0 {
		o.writeString("* VANISHED (EARLIER) " + vanished.String() + "\r\n")
	}
	for _, c := range changed {
		o.writeString("* ")
		o.num(uint64(c.seq))
		o.writeString(" FETCH (UID ")
		o.num(uint64(c.msg.UID))
		o.writeString(" FLAGS ")
		writeFlags(o, s.sel.flagsOf(s, c.msg.Flags, c.msg.Keywords, c.msg.UID))
		o.writeString(" MODSEQ (" + utoa(c.msg.ModSeq) + "))\r\n")
	}
}

// writeFetchVanished writes the VANISHED (EARLIER) of UID FETCH (VANISHED)
// (RFC 7162 §3.2.6): the UIDs of the set expunged with a MODSEQ above
// since. "*" reaches the highest UID ever given, so that expunged last
// messages are reported. UIDs the session still has in its view are
// left to the VANISHED that follows the command.
func (s *session) writeFetchVanished(set imap.NumSet, since uint64) error {
	sel := s.sel
	exp, complete, err := sel.mbox.Expunged(s.ctx, since)
	if err != nil {
		return err
	}
	var current []uint32
	var uidNext uint32
	err = sel.mbox.Read(s.ctx, func(v *store.View) {
		uidNext = v.UIDNext()
		if !complete {
			current = make([]uint32, v.Len())
			for i := range current {
				current[i] = v.UID(i)
			}
		}
	})
	if err != nil {
		return err
	}
	want := s.uidSetRanges(set, max(uidNext, 2)-1)
	var out uidRanges
	if complete {
		var uids []uint32
		for _, u := range exp {
			if u < uidNext && want.has(u) && sel.seqOf(u) == 0 {
				uids = append(uids, u)
			}
		}
		out = rangesOf(uids)
	} else {
		out = missing(want, 0, uidNext, mergeUIDs(sel.uids, current))
	}
	if len(out) > 0 {
		s.c.out.writeString("* VANISHED (EARLIER) " + out.String() + "\r\n")
	}
	return nil
}

// mergeUIDs merges two ascending UID lists.
func mergeUIDs(a, b []uint32) []uint32 {
	out := make([]uint32, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case j == len(b) || i < len(a) && a[i] < b[j]:
			out = append(out, a[i])
			i++
		case i == len(a) || b[j] < a[i]:
			out = append(out, b[j])
			j++
		default:
			out = append(out, a[i])
			i, j = i+1, j+1
		}
	}
	return out
}

// flushVanished sends the expunges collected while sending updates as one
// "* VANISHED uid-set" (RFC 7162 §3.2.10.2), runs of UIDs collapsed.
func (s *session) flushVanished(uids *[]uint32) {
	if len(*uids) == 0 {
		return
	}
	u := *uids
	sort.Slice(u, func(i, j int) bool { return u[i] < u[j] })
	s.c.out.writeString("* VANISHED " + rangesOf(u).String() + "\r\n")
	*uids = u[:0]
}
