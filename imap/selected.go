package imap

import (
	"sort"

	"github.com/emersion/go-imap/v2"

	"github.com/letterbox-mail/letterbox/store"
)

// selected is the selected mailbox of a session (RFC 3501 §3.3).
type selected struct {
	mbox        *store.Mailbox
	name        string
	readOnly    bool
	uidValidity uint32
	cancelWatch func()
	q           *updateQueue

	// The client's view: uids[i] is sequence number i+1. It changes only
	// as updates are sent (updates.go).
	uids []uint32
	// recent holds the messages this session claimed \Recent for.
	recent      map[uint32]bool
	recentShown int
	// keywords are the keywords announced to the client (FLAGS).
	keywords []string
	// shownAt is, per message, the queue position its flags were last
	// shown at in a FETCH or STORE response.
	shownAt map[uint32]uint64
	// highestModSeq is the HIGHESTMODSEQ the client was told of (RFC
	// 7162): every change up to it has been sent (condstore.go).
	highestModSeq uint64
	gone          bool
	// claimPending: messages came during IDLE, \Recent not yet claimed.
	claimPending bool
	// live are the searches kept alive (CONTEXT=SEARCH UPDATE).
	live []*liveSearch
}

// cmdSelect is SELECT and EXAMINE (RFC 3501 §6.3.1, §6.3.2; RFC 9051
// §6.3.2) with the CONDSTORE and QRESYNC parameters (RFC 7162 §3.1.8,
// §3.2.5). The session subscribes to the mailbox's feed and answers from
// the view the feed starts from: the answer and the updates that follow
// fit exactly.
func (s *session) cmdSelect(cmd *command) error {
	p := cmd.p
	p.sp()
	name, err := s.mailbox(p)
	var params selectParams
	if p.maybeSP() {
		params = parseSelectParams(p) // RFC 4466 select-params
	}
	p.end()
	qr := params.qresync
	if qr != nil && !s.qresync {
		return bad("", "QRESYNC needs ENABLE QRESYNC first") // RFC 7162 §3.2.3
	}
	if s.sel != nil {
		s.unselect()
		s.state = stateAuth
		// RFC 9051 §6.3.2 (and RFC 7162 §3.2.11): the old one is closed.
		s.c.out.writeString("* OK [CLOSED] Previous mailbox is now closed\r\n")
	}
	if err != nil {
		return err
	}
	if params.condstore || qr != nil {
		s.condstore = true // the answer has HIGHESTMODSEQ
	}
	readOnly := cmd.name == "EXAMINE"
	mbox, err := s.user.Open(s.ctx, name)
	if err != nil {
		return err
	}
	sel := &selected{
		mbox:     mbox,
		name:     name,
		readOnly: readOnly,
		q:        newUpdateQueue(orDefault(s.srv.MaxPendingUpdates, DefaultMaxPendingUpdates)),
		recent:   make(map[uint32]bool),
		shownAt:  make(map[uint32]uint64),
	}
	var (
		exists, recent, firstUnseen int
		uidNext                     uint32
		canCreate                   bool
		changed                     []resyncMsg
	)
	sel.cancelWatch, err = mbox.Subscribe(s.ctx, sel.q.push, func(v *store.View) {
		sel.uidValidity = v.UIDValidity()
		sel.highestModSeq = v.HighestModSeq()
		sel.keywords = append([]string(nil), v.Keywords()...)
		exists = v.Len()
		sel.uids = v.AppendUIDs(make([]uint32, 0, exists))
		firstUnseen = v.FirstUnseen()
		if readOnly {
			recent = v.RecentCount()
		}
		uidNext = v.UIDNext()
		canCreate = v.CanCreateKeywords()
		if qr != nil && qr.uidValidity == sel.uidValidity {
			changed = qr.changedSince(v)
		}
	})
	if err != nil {
		mbox.Close()
		return err
	}
	if !readOnly {
		// Claimed after subscribing: a message that comes meanwhile is
		// claimed here and counted when its EXISTS is sent.
		uids, err := mbox.ClaimRecent(s.ctx)
		if err != nil {
			sel.release()
			return err
		}
		for _, u := range uids {
			sel.recent[u] = true
		}
		recent = sel.recentCount()
	}
	var vanished uidRanges
	if qr != nil && qr.uidValidity == sel.uidValidity {
		if vanished, err = s.resyncVanished(sel, qr, uidNext); err != nil {
			sel.release()
			return err
		}
	}
	sel.recentShown = recent
	s.sel, s.state, s.searchRes = sel, stateSelected, nil
	sel.q.setWake(s.selectedWake())

	o := &s.c.out
	o.writeString("* " + itoa(exists) + " EXISTS\r\n")
	if !s.rev2 {
		o.writeString("* " + itoa(recent) + " RECENT\r\n")
		if firstUnseen > 0 {
			o.writeString("* OK [UNSEEN " + itoa(firstUnseen) + "] First unseen message\r\n")
		}
	}
	o.writeString("* OK [UIDVALIDITY " + itoa(int(sel.uidValidity)) + "] UIDs valid\r\n")
	o.writeString("* OK [UIDNEXT " + itoa(int(uidNext)) + "] Predicted next UID\r\n")
	if s.condstore {
		s.writeHighestModSeq() // RFC 7162 §3.1.2.1
	}
	o.writeString("* FLAGS ")
	writeFlags(o, mailboxFlags(sel.keywords))
	o.crlf()
	o.writeString("* OK [PERMANENTFLAGS ")
	if readOnly {
		o.writeString("()")
	} else {
		perm := mailboxFlags(sel.keywords)
		if canCreate {
			perm = append(perm, imap.FlagWildcard)
		}
		writeFlags(o, perm)
	}
	o.writeString("] Permanent flags\r\n")
	if s.rev2 {
		// RFC 9051 §6.3.2: a LIST response with the mailbox name.
		o.writeString(`* LIST () "/" `)
		s.writeName(name)
		o.crlf()
	}
	s.writeResync(vanished, changed)
	if readOnly {
		cmd.okCode = "READ-ONLY"
	} else {
		cmd.okCode = "READ-WRITE"
	}
	cmd.okText = cmd.name + " completed"
	cmd.noPoll = true
	return nil
}

// release lets go of the mailbox.
func (sel *selected) release() {
	sel.cancelWatch()
	sel.mbox.Close()
}

// unselect closes the selected mailbox, if any.
func (s *session) unselect() {
	if s.sel == nil {
		return
	}
	s.sel.release()
	s.sel, s.searchRes = nil, nil
	if s.state == stateSelected {
		s.state = stateAuth
	}
}

// cmdClose is CLOSE (RFC 3501 §6.4.2: expunges silently, not in a
// mailbox opened with EXAMINE; with QRESYNC the tagged OK has the
// HIGHESTMODSEQ, RFC 7162 §3.2.8) and UNSELECT (RFC 3691).
func (s *session) cmdClose(cmd *command) error {
	cmd.p.end()
	sel := s.sel
	if cmd.name == "CLOSE" && !sel.readOnly {
		removed, err := sel.mbox.Expunge(s.ctx, store.ExpungeOptions{OnlyDeleted: true, Origin: sel})
		if err != nil {
			return err
		}
		if s.qresync && len(removed) > 0 {
			cmd.okCode = "HIGHESTMODSEQ " + utoa(s.closingModSeq())
		}
	}
	s.unselect()
	cmd.noPoll = true
	return nil
}

// target is a message a command applies to, as the client numbers it.
type target struct {
	seq int
	uid uint32
}

// resolve turns a sequence set or UID set into the messages of the
// client's view, in sequence order without duplicates (RFC 3501 §6.4.8,
// §9 seq-range). "*" is the last message the client knows; "n:*" with n
// beyond it still includes it. "$" is the saved search result (RFC 5182).
func (s *session) resolve(set imap.NumSet) []target {
	sel := s.sel
	n := len(sel.uids)
	var out []target
	if imap.IsSearchRes(set) {
		for _, uid := range s.searchRes {
			if seq := sel.seqOf(uid); seq > 0 {
				out = append(out, target{seq, uid})
			}
		}
		return sortTargets(out)
	}
	if n == 0 {
		return nil
	}
	switch set := set.(type) {
	case imap.SeqSet:
		for _, r := range set {
			lo, hi := int(r.Start), int(r.Stop)
			if lo == 0 {
				lo = n
			}
			if hi == 0 {
				hi = n
			}
			if lo > hi {
				lo, hi = hi, lo
			}
			if lo > n {
				continue
			}
			hi = min(hi, n)
			for q := lo; q <= hi; q++ {
				out = append(out, target{q, sel.uids[q-1]})
			}
		}
	case imap.UIDSet:
		maxUID := sel.uids[n-1]
		for _, r := range set {
			lo, hi := uint32(r.Start), uint32(r.Stop)
			if lo == 0 {
				lo = maxUID
			}
			if hi == 0 {
				hi = maxUID
			}
			if lo > hi {
				lo, hi = hi, lo
			}
			i := sort.Search(n, func(i int) bool { return sel.uids[i] >= lo })
			for ; i < n && sel.uids[i] <= hi; i++ {
				out = append(out, target{i + 1, sel.uids[i]})
			}
		}
	}
	return sortTargets(out)
}

func sortTargets(ts []target) []target {
	if sort.SliceIsSorted(ts, func(i, j int) bool { return ts[i].seq < ts[j].seq }) {
		return dedupTargets(ts)
	}
	sort.Slice(ts, func(i, j int) bool { return ts[i].seq < ts[j].seq })
	return dedupTargets(ts)
}

func dedupTargets(ts []target) []target {
	out := ts[:0]
	for i, t := range ts {
		if i > 0 && t.seq == ts[i-1].seq {
			continue
		}
		out = append(out, t)
	}
	return out
}

func uidsOf(ts []target) []uint32 {
	out := make([]uint32, len(ts))
	for i, t := range ts {
		out[i] = t.uid
	}
	return out
}

// flagsOf is a message's FLAGS for this session: \Recent is per session
// (and gone in IMAP4rev2).
//
// The slice is the session's scratch space, valid until the next call:
// written out at once, one per message, it need not be garbage.
func (sel *selected) flagsOf(s *session, f store.Flag, kws []string, uid uint32) []imap.Flag {
	fl := appendFlags(s.flagBuf[:0], f, kws)
	if sel.recent[uid] && !s.rev2 {
		fl = append(fl, flagRecent)
	}
	s.flagBuf = fl
	return fl
}
