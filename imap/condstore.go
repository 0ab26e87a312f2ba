package imap

import (
	"sort"
	"strconv"
	"strings"

	"github.com/emersion/go-imap/v2"

	"github.com/letterbox-mail/letterbox/store"
)

// CONDSTORE and QRESYNC (RFC 7162) on the store's MODSEQs and expunge log.
//
// CONDSTORE is enabled by the first CONDSTORE-enabling command (§3.1:
// ENABLE CONDSTORE or QRESYNC, SELECT/EXAMINE (CONDSTORE), STATUS
// (HIGHESTMODSEQ), FETCH MODSEQ or CHANGEDSINCE, SEARCH MODSEQ, STORE
// UNCHANGEDSINCE). From then on every FETCH response caused by STORE, by
// a fetch that set \Seen or by another session carries UID and MODSEQ
// (§3.2.4), and SELECT reports HIGHESTMODSEQ.
//
// A session's HIGHESTMODSEQ (selected.highestModSeq) is what it has been
// told: the state of the mailbox when it was selected, then moved on as
// the update queue is sent (updates.go), never past a change that has
// not been sent. Every HIGHESTMODSEQ the session reports is that value,
// so a client that saves it and resynchronizes from it misses nothing.

// condstoreCaps are the capabilities of this file, after login.
const condstoreCaps = "CONDSTORE QRESYNC"

// maxModSeq is the largest mod-sequence-value (RFC 7162 §7: 63 bits).
const maxModSeq = 1<<63 - 1

func utoa(n uint64) string { return strconv.FormatUint(n, 10) }

// enableCondstore runs at every CONDSTORE-enabling command. The first
// one with a mailbox selected reports that mailbox's HIGHESTMODSEQ (RFC
// 7162 §3.1).
func (s *session) enableCondstore() {
	if s.condstore {
		return
	}
	s.condstore = true
	if s.sel != nil {
		s.writeHighestModSeq()
	}
}

// writeHighestModSeq writes "* OK [HIGHESTMODSEQ n]" with what the
// session was told.
func (s *session) writeHighestModSeq() {
	s.c.out.writeString("* OK [HIGHESTMODSEQ " + utoa(s.sel.highestModSeq) + "] Highest\r\n")
}

// highestModSeqCode is the HIGHESTMODSEQ response code for the tagged OK
// of EXPUNGE, UID EXPUNGE and MOVE once QRESYNC is enabled and something
// was expunged (RFC 7162 §3.2.7, §3.2.9; RFC 6851 §3.3). The updates
// were sent first, so it covers the expunge.
func (s *session) highestModSeqCode(expunged bool) string {
	if !s.qresync || !expunged || s.sel == nil {
		return ""
	}
	return "HIGHESTMODSEQ " + utoa(s.sel.highestModSeq)
}

// writeModSeqFetch writes "* n FETCH (UID u MODSEQ (m))": what a STORE
// .SILENT says of a message it changed once CONDSTORE is enabled (RFC
// 7162 §3.1.3).
func (s *session) writeModSeqFetch(seq int, uid uint32, modSeq uint64) {
	s.modSeqShown = true
	s.c.out.writeString("* " + itoa(seq) + " FETCH (UID " + itoa(int(uid)) + " MODSEQ (" + utoa(modSeq) + "))\r\n")
}

// writeModSeqItem writes the FETCH item "MODSEQ (m)".
func (s *session) writeModSeqItem(modSeq uint64) {
	s.modSeqShown = true
	s.c.out.writeString("MODSEQ (" + utoa(modSeq) + ")")
}

// modifiedCode is the MODIFIED response code of a STORE (UNCHANGEDSINCE)
// whose messages failed the test: sequence numbers for STORE, UIDs for
// UID STORE (RFC 7162 §3.1.3).
func (s *session) modifiedCode(uid bool, failed []uint32) string {
	nums := make([]uint32, 0, len(failed))
	for _, u := range failed {
		if !uid {
			seq := s.sel.seqOf(u)
			if seq == 0 {
				continue
			}
			u = uint32(seq)
		}
		nums = append(nums, u)
	}
	if len(nums) == 0 {
		return ""
	}
	sort.Slice(nums, func(i, j int) bool { return nums[i] < nums[j] })
	return "MODIFIED " + numSetString(nums)
}

// fetchModifiers checks the RFC 7162 FETCH modifiers (§3.1.4.1
// CHANGEDSINCE, §3.2.6 VANISHED) against the command and the session.
func (s *session) fetchModifiers(cmd *command, a *fetchArgs) error {
	if a.vanished {
		switch {
		case !cmd.uid:
			return bad("", "VANISHED needs UID FETCH")
		case !s.qresync:
			return bad("", "VANISHED needs ENABLE QRESYNC")
		case !a.hasChangedSince:
			return bad("", "VANISHED needs CHANGEDSINCE")
		}
	}
	if a.hasChangedSince || a.opts.ModSeq {
		s.enableCondstore()
	}
	return nil
}

// changed reports whether a message passes CHANGEDSINCE.
func (a *fetchArgs) changed(m store.Message) bool {
	return !a.hasChangedSince || m.ModSeq > a.changedSince
}

// showsModSeq reports whether every response of the fetch has MODSEQ.
func (a *fetchArgs) showsModSeq() bool {
	for _, it := range a.items {
		if it.kind == itemModSeq {
			return true
		}
	}
	return false
}

// unshownFlags returns the messages with a flag change queued that the
// client has not been shown; with a nil shownAt, every message with a flag
// change queued. A FETCH that shows a message's MODSEQ shows its FLAGS too
// if it is one of them: the client is never told a MODSEQ with flags older
// than it, and the queued change, older than what the response shows, is
// then skipped (so MODSEQs only grow per message).
func (q *updateQueue) unshownFlags(shownAt map[uint32]uint64) map[uint32]bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	var out map[uint32]bool
	for _, e := range q.entries {
		if e.ch.Kind == store.FlagsChanged && e.pos > shownAt[e.ch.UID] {
			if out == nil {
				out = make(map[uint32]bool)
			}
			out[e.ch.UID] = true
		}
	}
	return out
}

// closingModSeq is the HIGHESTMODSEQ for the tagged OK of a CLOSE that
// expunged (RFC 7162 §3.2.8). CLOSE sends no updates, so it is the MODSEQ
// up to which the queue holds nothing the client was not told: its own
// expunges and flag changes it was shown count as told, anything else
// stops the walk.
func (s *session) closingModSeq() uint64 {
	sel := s.sel
	h := sel.highestModSeq
	entries, _ := sel.q.take()
	for _, e := range entries {
		switch {
		case e.ch.Kind == store.Expunged && e.ch.Origin == sel:
		case e.ch.Kind == store.FlagsChanged && e.pos <= sel.shownAt[e.ch.UID]:
		case e.ch.Kind == store.KeywordsChanged:
		default:
			return h
		}
		h = max(h, e.ch.ModSeq)
	}
	return h
}

// usesModSeq reports whether a search program has a MODSEQ key anywhere.
func (c *criteria) usesModSeq() bool {
	if c.modSeq != nil {
		return true
	}
	for i := range c.not {
		if c.not[i].usesModSeq() {
			return true
		}
	}
	for i := range c.or {
		if c.or[i][0].usesModSeq() || c.or[i][1].usesModSeq() {
			return true
		}
	}
	return false
}

// resultModSeq is the MODSEQ a SEARCH with a MODSEQ key answers with: the
// highest MODSEQ of the messages it returns (RFC 7162 §3.1.6; for ESEARCH
// §3.1.10: those of MIN and MAX, or all of them for ALL, COUNT and
// PARTIAL). 0 means none: nothing is returned.
func (a *searchArgs) resultModSeq(found []target, modSeqs []uint64) uint64 {
	if !a.criteria.usesModSeq() || len(found) == 0 {
		return 0
	}
	var top uint64
	all := !a.esearch || a.ret.ReturnAll || a.ret.ReturnCount
	if a.partial != nil && !all {
		idx := make([]uint32, len(modSeqs))
		for i := range idx {
			idx[i] = uint32(i)
		}
		for _, i := range a.partial.cut(idx) {
			top = max(top, modSeqs[i])
		}
	}
	for i, m := range modSeqs {
		if all || a.ret.ReturnMin && i == 0 || a.ret.ReturnMax && i == len(modSeqs)-1 {
			top = max(top, m)
		}
	}
	return top
}

// parseSearchModSeq reads the arguments of the MODSEQ search key (RFC 7162
// §3.1.5): [entry-name SP entry-type-req SP] mod-sequence-valzer. We keep
// one MODSEQ per message, which every flag's entry shares.
func parseSearchModSeq(p *parser, c *criteria) {
	p.sp()
	var name, typ string
	if ch := p.peek(); ch == '"' || ch == '{' {
		name = p.str(int64(p.c.srv.maxLine()))
		if !strings.HasPrefix(strings.ToLower(name), "/flags/") {
			p.fail("MODSEQ entry name must be /flags/<flag>")
		}
		p.sp()
		typ = strings.ToLower(p.atom())
		if typ != "priv" && typ != "shared" && typ != "all" {
			p.fail("MODSEQ entry type must be priv, shared or all")
		}
		p.sp()
	}
	n := p.number64(maxModSeq)
	if c.modSeq == nil || n > c.modSeq.ModSeq {
		c.modSeq = &imap.SearchCriteriaModSeq{ModSeq: n, MetadataName: name, MetadataType: imap.SearchCriteriaMetadataType(typ)}
	}
}
