package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/bits"
	"os"
	"path/filepath"
)

// SetFlags changes the flags and keywords of the messages with the given
// UIDs (missing UIDs are skipped) by renaming their files, and returns the
// messages whose flags it changed, with their new flags. Every other
// watcher of the mailbox gets a FlagsChanged for each.
func (m *Mailbox) SetFlags(ctx context.Context, uids []uint32, op FlagOp, flags Flag, keywords []string, origin any) ([]Message, error) {
	b := m.b
	if err := b.refresh(ctx); err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.gone {
		return nil, ErrNotFound
	}
	kw, err := b.keywordBits(keywords, false)
	if err != nil {
		return nil, err
	}
	if op != FlagsRemove && bits.OnesCount32(kw) < len(keywords) {
		// A new keyword name is written to dovecot-keywords, which
		// needs the folder's lock; known ones do not.
		lock, err := acquireDotlock(ctx, filepath.Join(b.path, uidlistName+".lock"), b.s.opts.LockTimeout, b.s.opts.FileMode)
		if err != nil {
			return nil, err
		}
		kw, err = b.keywordBits(keywords, true)
		lock.release()
		if err != nil {
			return nil, err
		}
	}
	fresh := b.dirsFresh()
	var out []Message
	var lost bool
	for _, uid := range uids {
		if err := ctx.Err(); err != nil {
			break
		}
		i := b.find(uid)
		if i < 0 {
			continue
		}
		e := &b.msgs[i]
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
		from, to := b.filePath(e), filepath.Join(b.path, "cur", name)
		b.expect(from, to)
		if err := os.Rename(from, to); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				// Renamed or removed by another process: the
				// next sync sorts it out.
				lost = true
				continue
			}
			return out, fmt.Errorf("store: set flags: %w", err)
		}
		changed := nf != e.flags || nkw != e.kw
		e.name, e.inNew, e.flags, e.kw = name, false, nf, nkw
		if !changed {
			continue
		}
		msg := Message{UID: e.uid, Flags: nf, Keywords: b.keywordNames(nkw), Size: e.size, Recent: e.recent}
		out = append(out, msg)
		b.emit(Change{Kind: FlagsChanged, UID: uid, Seq: i + 1, Flags: nf, Keywords: msg.Keywords, Origin: origin})
	}
	if lost {
		b.dirty.Store(true)
	} else if fresh {
		b.restamp()
	}
	return out, nil
}

// Expunge removes messages for good and returns the UIDs it removed. If a
// file cannot be removed it stops there and returns what it removed so
// far together with the error.
func (m *Mailbox) Expunge(ctx context.Context, opts ExpungeOptions) ([]uint32, error) {
	b := m.b
	if err := b.refresh(ctx); err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.gone {
		return nil, ErrNotFound
	}
	var want map[uint32]bool
	if opts.UIDs != nil {
		want = make(map[uint32]bool, len(opts.UIDs))
		for _, u := range opts.UIDs {
			want[u] = true
		}
	}
	fresh := b.dirsFresh()
	var idx []int
	var failed error
	for i := range b.msgs {
		e := &b.msgs[i]
		if want != nil && !want[e.uid] {
			continue
		}
		if opts.OnlyDeleted && e.flags&FlagDeleted == 0 {
			continue
		}
		p := b.filePath(e)
		b.expect(p)
		err := os.Remove(p)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			failed = fmt.Errorf("store: expunge UID %d: %w", e.uid, err)
			break
		}
		if err != nil {
			// Not where we thought: renamed by someone else. The
			// next sync finds it again, or finds it gone.
			b.dirty.Store(true)
			continue
		}
		idx = append(idx, i)
	}
	if len(idx) == 0 {
		return nil, failed
	}
	if err := syncDir(filepath.Join(b.path, "cur")); err != nil {
		b.s.log.Warn("store: fsync cur/", "mailbox", b.name, "err", err)
	}
	uids := make([]uint32, len(idx))
	for j := len(idx) - 1; j >= 0; j-- {
		i := idx[j]
		uids[j] = b.msgs[i].uid
		b.emit(Change{Kind: Expunged, UID: b.msgs[i].uid, Seq: i + 1, Origin: opts.Origin})
	}
	b.msgs = removeIndexes(b.msgs, idx)
	if fresh {
		b.restamp()
	}
	return uids, failed
}
