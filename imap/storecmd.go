package imap

import (
	"errors"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/letterbox-mail/letterbox/store"
)

// Commands that change messages: STORE, EXPUNGE, COPY, MOVE, APPEND.
// Changes go through the store with this session's *selected as their
// origin; the store's feed then queues them for every other session, and
// imapserver's poll after the command sends this session's EXPUNGEs.

var errReadOnly = newError(imap.StatusResponseTypeNo, "", "Mailbox is read-only (opened with EXAMINE)")

// Store is STORE and UID STORE (RFC 3501 §6.4.6).
func (s *session) Store(w *imapserver.FetchWriter, numSet imap.NumSet, flags *imap.StoreFlags, _ *imap.StoreOptions) error {
	sel, err := s.needSelected()
	if err != nil {
		return err
	}
	if sel.readOnly {
		return errReadOnly
	}
	f, kws, err := storeFlags(flags.Flags)
	if err != nil {
		return err
	}
	op := store.FlagsReplace
	switch flags.Op {
	case imap.StoreFlagsAdd:
		op = store.FlagsAdd
	case imap.StoreFlagsDel:
		op = store.FlagsRemove
	}
	targets, err := s.targets(sel, numSet)
	if err != nil {
		return s.fail("store", err)
	}
	if len(targets) == 0 {
		return nil
	}
	if _, err := sel.mbox.SetFlags(s.ctx, uidsOf(targets), op, f, kws, sel); err != nil {
		return s.fail("store", err)
	}
	if flags.Silent {
		return nil
	}
	// The FLAGS of every message of the set, changed or not.
	present := make([]bool, len(targets))
	err = sel.mbox.Read(s.ctx, func(v *store.View) {
		for i := range targets {
			if j := v.Seq(targets[i].msg.UID) - 1; j >= 0 {
				targets[i].msg = v.At(j)
				present[i] = true
			}
		}
	})
	if err != nil {
		return s.fail("store", err)
	}
	isUID := s.wc.command() == "UID STORE"
	for i, t := range targets {
		if !present[i] {
			continue
		}
		rw := w.CreateMessage(t.seq)
		if isUID {
			rw.WriteUID(imap.UID(t.msg.UID))
		}
		rw.WriteFlags(sel.flagsOf(t.msg))
		if err := rw.Close(); err != nil {
			return err
		}
	}
	return nil
}

// Expunge is EXPUNGE, UID EXPUNGE (RFC 4315) and the expunge of CLOSE.
// A mailbox opened with EXAMINE is not expunged: EXPUNGE is refused,
// CLOSE just closes (RFC 3501 §6.4.2).
func (s *session) Expunge(_ *imapserver.ExpungeWriter, uids *imap.UIDSet) error {
	sel, err := s.needSelected()
	if err != nil {
		return err
	}
	if sel.readOnly {
		if s.wc.command() == "CLOSE" {
			return nil
		}
		return errReadOnly
	}
	opts := store.ExpungeOptions{OnlyDeleted: true, Origin: sel}
	if uids != nil {
		targets, err := s.targets(sel, *uids)
		if err != nil {
			return s.fail("expunge", err)
		}
		if len(targets) == 0 {
			return nil
		}
		opts.UIDs = uidsOf(targets)
	}
	_, err = sel.mbox.Expunge(s.ctx, opts)
	return s.fail("expunge", err)
}

// openDest opens the target of COPY, MOVE or APPEND; a missing one is
// NO [TRYCREATE] (RFC 3501 §6.4.7).
func (s *session) openDest(name string) (*store.Mailbox, error) {
	m, err := s.user.Open(s.ctx, store.CanonicalName(name))
	if errors.Is(err, store.ErrNotFound) {
		return nil, newError(imap.StatusResponseTypeNo, imap.ResponseCodeTryCreate, "No such mailbox")
	}
	if err != nil {
		return nil, s.fail("open", err)
	}
	return m, nil
}

func (s *session) uidValidity(m *store.Mailbox) (uint32, error) {
	var v uint32
	err := m.Read(s.ctx, func(view *store.View) { v = view.UIDValidity() })
	return v, err
}

func uidSet(uids []uint32) imap.UIDSet {
	var set imap.UIDSet
	for _, u := range uids {
		set.AddNum(imap.UID(u))
	}
	return set
}

// Copy is COPY and UID COPY, with COPYUID (RFC 4315).
func (s *session) Copy(numSet imap.NumSet, dest string) (*imap.CopyData, error) {
	sel, err := s.needSelected()
	if err != nil {
		return nil, err
	}
	dst, err := s.openDest(dest)
	if err != nil {
		return nil, err
	}
	defer dst.Close()
	targets, err := s.targets(sel, numSet)
	if err != nil {
		return nil, s.fail("copy", err)
	}
	if len(targets) == 0 {
		return nil, nil
	}
	src, dstUIDs, err := sel.mbox.Copy(s.ctx, uidsOf(targets), dst)
	if err != nil {
		return nil, s.fail("copy", err)
	}
	if len(src) == 0 {
		return nil, nil
	}
	v, err := s.uidValidity(dst)
	if err != nil {
		return nil, s.fail("copy", err)
	}
	return &imap.CopyData{UIDValidity: v, SourceUIDs: uidSet(src), DestUIDs: uidSet(dstUIDs)}, nil
}

// Move is MOVE and UID MOVE (RFC 6851): "* OK [COPYUID ...]", then the
// EXPUNGEs, which imapserver's poll after the command sends.
func (s *session) Move(w *imapserver.MoveWriter, numSet imap.NumSet, dest string) error {
	sel, err := s.needSelected()
	if err != nil {
		return err
	}
	if sel.readOnly {
		return errReadOnly
	}
	dst, err := s.openDest(dest)
	if err != nil {
		return err
	}
	defer dst.Close()
	targets, err := s.targets(sel, numSet)
	if err != nil {
		return s.fail("move", err)
	}
	if len(targets) == 0 {
		return nil
	}
	src, dstUIDs, err := sel.mbox.Move(s.ctx, uidsOf(targets), dst, sel)
	if err != nil {
		return s.fail("move", err)
	}
	if len(src) == 0 {
		return nil
	}
	v, err := s.uidValidity(dst)
	if err != nil {
		return s.fail("move", err)
	}
	return w.WriteCopyData(&imap.CopyData{UIDValidity: v, SourceUIDs: uidSet(src), DestUIDs: uidSet(dstUIDs)})
}

// Append is APPEND with flags, date, APPENDUID (RFC 4315) and APPENDLIMIT
// (RFC 7889). The message streams from the literal into the folder's tmp/.
func (s *session) Append(mailbox string, r imap.LiteralReader, opts *imap.AppendOptions) (*imap.AppendData, error) {
	if err := s.needUser(); err != nil {
		return nil, err
	}
	f, kws, err := storeFlags(opts.Flags)
	if err != nil {
		return nil, err
	}
	if r.Size() == 0 {
		return nil, newError(imap.StatusResponseTypeNo, "", "Cannot save an empty message")
	}
	name := store.CanonicalName(mailbox)
	var origin any
	var mbox *store.Mailbox
	if sel := s.selectedAs(name); sel != nil {
		mbox, origin = sel.mbox, sel
	} else {
		m, err := s.openDest(name)
		if err != nil {
			return nil, err
		}
		defer m.Close()
		mbox = m
	}
	uid, err := mbox.Append(s.ctx, r, store.AppendOptions{
		Flags: f, Keywords: kws, Date: opts.Time, MaxSize: s.srv.appendLimit(), Size: r.Size(), Origin: origin,
	})
	if err != nil {
		return nil, s.fail("append", err)
	}
	v, err := s.uidValidity(mbox)
	if err != nil {
		return nil, s.fail("append", err)
	}
	return &imap.AppendData{UID: imap.UID(uid), UIDValidity: v}, nil
}
