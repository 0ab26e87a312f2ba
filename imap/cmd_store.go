package imap

import (
	"strings"

	"github.com/emersion/go-imap/v2"

	"github.com/letterbox-mail/letterbox/store"
)

// Commands that change messages of the selected mailbox: STORE, EXPUNGE,
// COPY and MOVE. Changes go through the store with the session's
// *selected as their origin; the store's feed queues them for every
// session, this one included, and the poll after the command sends them.

// storeArgs is a decoded STORE.
type storeArgs struct {
	set   imap.NumSet
	flags imap.StoreFlags
	// UNCHANGEDSINCE (RFC 7162 §3.1.3).
	unchangedSince uint64
	unchanged      bool
}

func parseStore(p *parser, uid bool) storeArgs {
	var a storeArgs
	p.sp()
	a.set = p.numSet(uid)
	p.sp()
	if p.peek() == '(' {
		// RFC 4466 store-modifiers: UNCHANGEDSINCE (RFC 7162).
		p.list(false, func() {
			if w := p.word(); w != "UNCHANGEDSINCE" || a.unchanged {
				p.fail("unknown or repeated STORE modifier %s", w)
			}
			p.sp()
			a.unchangedSince, a.unchanged = p.number64(maxModSeq), true
		})
		p.sp()
	}
	switch {
	case p.maybe('+'):
		a.flags.Op = imap.StoreFlagsAdd
	case p.maybe('-'):
		a.flags.Op = imap.StoreFlagsDel
	default:
		a.flags.Op = imap.StoreFlagsSet
	}
	switch w := p.word(); w {
	case "FLAGS":
	case "FLAGS.SILENT":
		a.flags.Silent = true
	default:
		p.fail("expected FLAGS or FLAGS.SILENT, not %s", w)
	}
	p.sp()
	if p.peek() == '(' {
		a.flags.Flags = p.flagList()
	} else {
		for {
			a.flags.Flags = append(a.flags.Flags, p.flag())
			if !p.maybeSP() {
				break
			}
		}
	}
	p.end()
	return a
}

// cmdStore is STORE and UID STORE (RFC 3501 §6.4.6), with UNCHANGEDSINCE
// (RFC 7162 §3.1.3). Without .SILENT the FLAGS of every message of the
// set are sent, changed or not; with it, only those another session
// changed as well (RFC 3501 §6.4.6 note), so the client's idea of the
// flags is right either way. Once CONDSTORE is enabled these carry UID
// and MODSEQ, and even .SILENT reports the MODSEQ of what it changed.
func (s *session) cmdStore(cmd *command) error {
	a := parseStore(cmd.p, cmd.uid)
	sel := s.sel
	if a.unchanged {
		s.enableCondstore()
	}
	if sel.readOnly {
		return errReadOnly
	}
	f, kws, err := storeFlags(a.flags.Flags)
	if err != nil {
		return err
	}
	op := store.FlagsReplace
	switch a.flags.Op {
	case imap.StoreFlagsAdd:
		op = store.FlagsAdd
	case imap.StoreFlagsDel:
		op = store.FlagsRemove
	}
	targets := s.resolve(a.set)
	if len(targets) == 0 {
		return nil
	}
	var changed []store.Message
	var failed []uint32
	if a.unchanged {
		changed, failed, err = sel.mbox.SetFlagsUnchangedSince(s.ctx, uidsOf(targets), op, f, kws, a.unchangedSince, sel)
	} else {
		changed, err = sel.mbox.SetFlags(s.ctx, uidsOf(targets), op, f, kws, sel)
	}
	if err != nil {
		return err
	}
	mine := make(map[uint32]bool, len(changed))
	for _, m := range changed {
		mine[m.UID] = true
	}
	type result struct {
		msg    store.Message
		others bool
	}
	results := make([]result, len(targets))
	present := make([]bool, len(targets))
	var at uint64
	err = sel.mbox.Read(s.ctx, func(v *store.View) {
		at = sel.q.position()
		others := sel.q.changedByOthers(sel, sel.shownAt)
		for i, t := range targets {
			if j := v.Seq(t.uid) - 1; j >= 0 {
				results[i] = result{msg: v.At(j), others: others[t.uid]}
				present[i] = true
			}
		}
	})
	if err != nil {
		return err
	}
	for i, t := range targets {
		if !present[i] {
			continue
		}
		r := results[i]
		sel.shownAt[t.uid] = at
		if a.flags.Silent && !r.others {
			if s.condstore && mine[t.uid] {
				s.writeModSeqFetch(t.seq, t.uid, r.msg.ModSeq)
			}
			continue
		}
		s.writeFlagsFetch(t.seq, t.uid, cmd.uid, r.msg)
	}
	if len(failed) > 0 {
		cmd.okCode = s.modifiedCode(cmd.uid, failed)
	}
	return nil
}

// writeFlagsFetch writes "* n FETCH ([UID u ]FLAGS (...)[ MODSEQ (m)])":
// UID and MODSEQ are always there once CONDSTORE is enabled (RFC 7162
// §3.2.4).
func (s *session) writeFlagsFetch(seq int, uid uint32, withUID bool, m store.Message) {
	s.announce(m.Keywords)
	o := &s.c.out
	o.writeString("* " + itoa(seq) + " FETCH (")
	if withUID || s.condstore {
		o.writeString("UID " + itoa(int(uid)) + " ")
	}
	o.writeString("FLAGS ")
	writeFlags(o, s.sel.flagsOf(s, m.Flags, m.Keywords, uid))
	if s.condstore {
		o.sp()
		s.writeModSeqItem(m.ModSeq)
	}
	o.writeString(")\r\n")
}

// changedByOthers returns the messages with a flag change queued that
// another origin made and the client has not been shown.
func (q *updateQueue) changedByOthers(origin any, shownAt map[uint32]uint64) map[uint32]bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	var out map[uint32]bool
	for _, e := range q.entries {
		if e.ch.Kind == store.FlagsChanged && e.ch.Origin != origin && e.pos > shownAt[e.ch.UID] {
			if out == nil {
				out = make(map[uint32]bool)
			}
			out[e.ch.UID] = true
		}
	}
	return out
}

// cmdExpunge is EXPUNGE and UID EXPUNGE (RFC 4315).
func (s *session) cmdExpunge(cmd *command) error {
	p := cmd.p
	var set imap.NumSet
	if cmd.uid {
		p.sp()
		set = p.numSet(true)
	}
	p.end()
	sel := s.sel
	if sel.readOnly {
		return errReadOnly
	}
	opts := store.ExpungeOptions{OnlyDeleted: true, Origin: sel}
	if set != nil {
		targets := s.resolve(set)
		if len(targets) == 0 {
			return nil
		}
		opts.UIDs = uidsOf(targets)
	}
	removed, err := sel.mbox.Expunge(s.ctx, opts)
	if err != nil {
		return err
	}
	// The updates go out now, so that the tagged OK can carry the
	// HIGHESTMODSEQ they bring the client to (RFC 7162 §3.2.7, §3.2.9).
	if err := s.poll(true, false, false); err != nil {
		return err
	}
	cmd.noPoll = true
	cmd.okCode = s.highestModSeqCode(len(removed) > 0)
	return nil
}

// openDest opens the target of COPY, MOVE or APPEND; a missing one is
// NO [TRYCREATE] (RFC 3501 §6.4.7).
func (s *session) openDest(name string) (*store.Mailbox, error) {
	m, err := s.user.Open(s.ctx, name)
	if err != nil {
		return nil, &tryCreateError{err}
	}
	return m, nil
}

func (s *session) uidValidity(m *store.Mailbox) (uint32, error) {
	var v uint32
	err := m.Read(s.ctx, func(view *store.View) { v = view.UIDValidity() })
	return v, err
}

// uidSetString is a UID list in sequence-set form ("1:3,7").
func uidSetString(uids []uint32) string {
	var set imap.UIDSet
	for _, u := range uids {
		set.AddNum(imap.UID(u))
	}
	return set.String()
}

// cmdCopy is COPY and MOVE (RFC 6851), with their UID forms and COPYUID
// (RFC 4315).
func (s *session) cmdCopy(cmd *command) error {
	p := cmd.p
	p.sp()
	set := p.numSet(cmd.uid)
	p.sp()
	dest, err := s.mailbox(p)
	p.end()
	if err != nil {
		return err
	}
	move := strings.HasSuffix(cmd.name, "MOVE")
	sel := s.sel
	if move && sel.readOnly {
		return errReadOnly
	}
	dst, err := s.openDest(dest)
	if err != nil {
		return err
	}
	defer dst.Close()
	targets := s.resolve(set)
	if len(targets) == 0 {
		return nil
	}
	if !move {
		if err := s.checkQuota(uidsOf(targets)); err != nil {
			return err
		}
	}
	var src, dstUIDs []uint32
	if move {
		src, dstUIDs, err = sel.mbox.Move(s.ctx, uidsOf(targets), dst, sel)
	} else {
		src, dstUIDs, err = sel.mbox.Copy(s.ctx, uidsOf(targets), dst)
	}
	if err != nil {
		return err
	}
	if len(src) == 0 {
		return nil
	}
	v, err := s.uidValidity(dst)
	if err != nil {
		return err
	}
	code := "COPYUID " + itoa(int(v)) + " " + uidSetString(src) + " " + uidSetString(dstUIDs)
	if move {
		// RFC 6851 §4.3: COPYUID in an untagged OK before the EXPUNGEs
		// (VANISHED with QRESYNC, then HIGHESTMODSEQ in the tagged OK,
		// §3.3, as EXPUNGE has it).
		s.c.out.writeString("* OK [" + code + "] Moved\r\n")
		if err := s.poll(true, false, false); err != nil {
			return err
		}
		cmd.noPoll = true
		cmd.okCode = s.highestModSeqCode(true)
		return nil
	}
	cmd.okCode = code
	return nil
}
