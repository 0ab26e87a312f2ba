package store

import (
	"context"
	"fmt"
	"path/filepath"
)

// SetFlags changes the flags and keywords of the messages with the given
// UIDs (missing UIDs are skipped) by renaming their files, and returns the
// messages whose flags it changed, with their new flags and MODSEQ. Every
// other watcher of the mailbox, in this process and in others, gets a
// FlagsChanged for each.
func (m *Mailbox) SetFlags(ctx context.Context, uids []uint32, op FlagOp, flags Flag, keywords []string, origin any) ([]Message, error) {
	return m.setFlagsIf(ctx, uids, op, flags, keywords, origin, nil)
}

// SetFlagsUnchangedSince is SetFlags for RFC 7162 UNCHANGEDSINCE: messages
// whose MODSEQ is above unchangedSince are left alone and returned in
// failed, checked under the same lock as the change.
func (m *Mailbox) SetFlagsUnchangedSince(ctx context.Context, uids []uint32, op FlagOp, flags Flag, keywords []string, unchangedSince uint64, origin any) (changed []Message, failed []uint32, err error) {
	changed, err = m.setFlagsIf(ctx, uids, op, flags, keywords, origin, func(e *entry) bool {
		if e.modseq > unchangedSince {
			failed = append(failed, e.uid)
			return false
		}
		return true
	})
	return changed, failed, err
}

func (m *Mailbox) setFlagsIf(ctx context.Context, uids []uint32, op FlagOp, flags Flag, keywords []string, origin any, cond func(*entry) bool) ([]Message, error) {
	b := m.b
	if err := b.refresh(ctx); err != nil {
		return nil, err
	}
	var out []Message
	err := b.transact(ctx, origin, func(t *txn) error {
		kw, err := t.keywordBits(keywords, op != FlagsRemove)
		if err != nil {
			return err
		}
		// report adds the messages the commit being made changed. A
		// resync commits what is done so far, so it is registered for
		// that commit too, not only for the last.
		report := func() {
			for _, op := range t.c.ops {
				if op.kind != opFlags {
					continue
				}
				if i := b.find(op.uid); i >= 0 && b.msgs[i].modseq == t.c.modseq {
					e := &b.msgs[i]
					out = append(out, Message{UID: e.uid, Flags: e.flags, Keywords: b.keywordNames(e.kw), Size: e.size, Recent: e.uid >= b.firstRecent, ModSeq: e.modseq})
				}
			}
		}
		if h := b.s.hooks.beforeFlags; h != nil {
			h()
		}
		todo := uids
		for attempt := 0; len(todo) > 0 && attempt < 2; attempt++ {
			var lost []uint32
			for _, uid := range todo {
				if err := ctx.Err(); err != nil {
					return err
				}
				i := b.find(uid)
				if i < 0 {
					continue
				}
				e := &b.msgs[i]
				if cond != nil && attempt == 0 && !cond(e) {
					continue
				}
				nf, nkw := e.flags, e.kw
				switch op {
				case FlagsReplace:
					nf, nkw = flags, kw
				case FlagsAdd:
					nf, nkw = nf|flags, nkw|kw
				case FlagsRemove:
					nf, nkw = nf&^flags, nkw&^kw
				}
				if nf == e.flags && nkw == e.kw && !e.inNew {
					continue
				}
				name := curName(e.base(), nf, nkw)
				if err := t.rename(b.filePath(e), filepath.Join(b.path, "cur", name)); err != nil {
					if isNotExist(err) {
						// Renamed or removed by someone outside the
						// log: find it, then try again.
						lost = append(lost, uid)
						continue
					}
					return wrapErr("set flags", err)
				}
				t.c.ops = append(t.c.ops, logOp{kind: opFlags, uid: uid, name: name})
			}
			todo = lost
			if len(lost) > 0 && attempt == 0 {
				t.onApplied(report)
				if err := t.resync(); err != nil {
					return err
				}
			}
		}
		t.onApplied(report)
		return nil
	})
	return out, err
}

// Expunge removes messages for good and returns the UIDs it removed. If a
// file cannot be removed it stops there and returns what it removed so
// far together with the error.
func (m *Mailbox) Expunge(ctx context.Context, opts ExpungeOptions) ([]uint32, error) {
	b := m.b
	if err := b.refresh(ctx); err != nil {
		return nil, err
	}
	var want map[uint32]bool
	if opts.UIDs != nil {
		want = make(map[uint32]bool, len(opts.UIDs))
		for _, u := range opts.UIDs {
			want[u] = true
		}
	}
	var removed []uint32
	var failed error
	err := b.transact(ctx, opts.Origin, func(t *txn) error {
		for attempt := 0; attempt < 2; attempt++ {
			lost := false
			for i := len(b.msgs) - 1; i >= 0; i-- {
				e := &b.msgs[i]
				if want != nil && !want[e.uid] {
					continue
				}
				if opts.OnlyDeleted && e.flags&FlagDeleted == 0 {
					continue
				}
				if err := t.remove(b.filePath(e)); err != nil {
					if isNotExist(err) {
						lost = true
						continue
					}
					failed = wrapErr(fmt.Sprintf("expunge UID %d", e.uid), err)
					break
				}
				t.c.ops = append(t.c.ops, logOp{kind: opExpunge, uid: e.uid})
				removed = append(removed, e.uid)
			}
			if !lost || failed != nil || attempt > 0 {
				break
			}
			// A file renamed by someone outside the log: find it.
			if err := t.resync(); err != nil {
				return err
			}
		}
		if len(removed) > 0 {
			if err := syncDir(filepath.Join(b.path, "cur")); err != nil {
				b.s.log.Warn("store: fsync cur/", "mailbox", b.name, "err", err)
			}
		}
		t.onApplied(t.maybeRewriteUidlist)
		return nil
	})
	sortUIDs(removed)
	if err == nil {
		err = failed
	}
	return removed, err
}
