package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// pending is a message file written to a folder's tmp/, waiting to be moved
// into cur/ and numbered.
type pending struct {
	tmpPath  string
	base     string // with ,S= and ,W=
	flags    Flag
	keywords []string
	size     int64 // CRLF size
	mtime    int64
}

// sizeWriter counts the physical and the CRLF size of what passes through.
type sizeWriter struct {
	w    io.Writer
	phys int64
	crlf crlfCounter
}

func (s *sizeWriter) Write(p []byte) (int, error) {
	n, err := s.w.Write(p)
	s.phys += int64(n)
	s.crlf.Write(p[:n])
	return n, err
}

// writeTmp writes a message into dir/tmp: the first half of Maildir's
// delivery. The file is fsynced and has its mtime set to date before it is
// renamed anywhere, so a crash leaves either nothing visible or the whole
// message.
func (s *Store) writeTmp(dir string, r io.Reader, maxSize, exact int64, date time.Time) (pending, error) {
	var base, tmp string
	var f *os.File
	for attempt := 0; ; attempt++ {
		base = s.ids.next()
		tmp = filepath.Join(dir, "tmp", base)
		var err error
		f, err = openFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, s.opts.FileMode)
		if err == nil {
			break
		}
		if !errors.Is(err, fs.ErrExist) || attempt >= 3 {
			return pending{}, wrapErr("write message", err)
		}
	}
	fail := func(err error) (pending, error) {
		f.Close()
		os.Remove(tmp)
		return pending{}, err
	}
	sw := &sizeWriter{w: f}
	src := r
	if maxSize > 0 {
		src = io.LimitReader(r, maxSize+1)
	}
	if _, err := io.Copy(sw, src); err != nil {
		return fail(wrapErr("write message", err))
	}
	if maxSize > 0 && sw.phys > maxSize {
		return fail(ErrTooBig)
	}
	if exact > 0 && sw.phys != exact {
		return fail(fmt.Errorf("store: message ended after %d of %d bytes: %w", sw.phys, exact, io.ErrUnexpectedEOF))
	}
	if err := f.Sync(); err != nil {
		return fail(wrapErr("write message", err))
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return pending{}, wrapErr("write message", err)
	}
	if date.IsZero() {
		date = s.opts.Now()
	}
	if err := os.Chtimes(tmp, date, date); err != nil {
		os.Remove(tmp)
		return pending{}, wrapErr("write message", err)
	}
	return pending{
		tmpPath: tmp,
		base:    withSizes(base, sw.phys, sw.crlf.n),
		size:    sw.crlf.n,
		mtime:   date.UnixNano(),
	}, nil
}

// Append stores a message in the mailbox and returns its UID.
func (m *Mailbox) Append(ctx context.Context, r io.Reader, opts AppendOptions) (uint32, error) {
	st, err := m.Stage(r, opts)
	if err != nil {
		return 0, err
	}
	uids, err := m.AppendStaged(ctx, []*Staged{st}, opts.Origin)
	if err != nil {
		return 0, err
	}
	return uids[0], nil
}

// Staged is a message written to the folder's tmp/ (safely on disk, not
// yet in the folder), waiting for AppendStaged or Discard.
type Staged struct {
	p pending
}

// Stage writes a message to the folder's tmp/: the first half of Append,
// for messages that arrive one by one but must go in together (IMAP
// MULTIAPPEND). opts.Origin is not used here.
func (m *Mailbox) Stage(r io.Reader, opts AppendOptions) (*Staged, error) {
	p, err := m.b.s.writeTmp(m.b.path, r, opts.MaxSize, opts.Size, opts.Date)
	if err != nil {
		return nil, err
	}
	p.flags, p.keywords = opts.Flags, opts.Keywords
	return &Staged{p: p}, nil
}

// Discard removes a staged message.
func (s *Staged) Discard() { os.Remove(s.p.tmpPath) }

// AppendStaged puts staged messages into the mailbox as one change: they
// get consecutive UIDs and one MODSEQ, and every session sees them arrive
// together, or none of them if it fails. The staged files are used up
// either way.
func (m *Mailbox) AppendStaged(ctx context.Context, staged []*Staged, origin any) ([]uint32, error) {
	ps := make([]pending, len(staged))
	for i, st := range staged {
		ps[i] = st.p
	}
	return m.b.commitFiles(ctx, ps, origin)
}

// commitFiles numbers pending files and moves them from tmp/ into cur/, as
// one transaction: the uidlist lines first (fsynced: a UID given to a
// client must survive a crash), then the renames, then the log. On error
// nothing is left in tmp/.
func (b *box) commitFiles(ctx context.Context, ps []pending, origin any) ([]uint32, error) {
	// No refresh first: new UIDs depend only on the log and the uidlist,
	// which the transaction reads under the lock.
	var uids []uint32
	defer removePending(ps) // whatever was not moved into cur/
	err := b.transact(ctx, origin, func(t *txn) error {
		kws := make([]uint32, len(ps))
		for i, p := range ps {
			kw, err := t.keywordBits(p.keywords, true)
			if err != nil {
				return err
			}
			kws[i] = kw
		}
		if err := t.learnUidlistChanges(); err != nil {
			return err
		}
		if len(b.orphans) > 0 {
			// Someone numbered files we have not seen (Dovecot, or a
			// process that could not write the log): take them in
			// first, or ours would go below theirs.
			if err := t.resync(); err != nil {
				return err
			}
		}
		lines := make([]uidEntry, len(ps))
		for i, p := range ps {
			lines[i] = uidEntry{uid: b.nextUID + uint32(i), base: p.base}
		}
		if err := t.appendUidlist(lines); err != nil {
			return err
		}
		// The lines are written: these UIDs are used, whatever happens.
		b.nextUID += uint32(len(ps))
		t.c.nextUID = b.nextUID
		var moved []string
		for i, p := range ps {
			name := curName(p.base, p.flags, kws[i])
			dst := filepath.Join(b.path, "cur", name)
			if err := t.rename(p.tmpPath, dst); err != nil {
				// All or nothing: take back out what went in. Their
				// uidlist lines stay, for files that never appear.
				for _, d := range moved {
					t.remove(d)
				}
				uids = nil
				t.c.ops = slices.DeleteFunc(t.c.ops, func(op logOp) bool { return op.kind == opAppend })
				return wrapErr("append", err)
			}
			moved = append(moved, dst)
			uids = append(uids, lines[i].uid)
			t.c.ops = append(t.c.ops, logOp{kind: opAppend, uid: lines[i].uid, size: p.size, date: p.mtime, name: name})
		}
		if err := syncDir(filepath.Join(b.path, "cur")); err != nil {
			b.s.log.Warn("store: fsync cur/", "mailbox", b.name, "err", err)
		}
		return nil
	})
	return uids, err
}

// learnUidlistChanges reads lines another program (Dovecot) added to the
// uidlist since the index last matched it, so new UIDs go above theirs.
// The dotlock is held.
func (t *txn) learnUidlistChanges() error {
	b := t.b
	stamp := b.stampOf(fileUidlist)
	if stamp != 0 && stamp == b.seen.uidlist && b.uidlistIno != 0 {
		return nil
	}
	if err := t.readUidlistTail(); err != nil {
		return err
	}
	// The index now knows the file as it was: our own lines can be
	// vouched for.
	t.ref.uidlist = stamp
	return nil
}

func removePending(ps []pending) {
	for _, p := range ps {
		os.Remove(p.tmpPath)
	}
}

// keywordBits maps keyword names to the folder's letters within a
// transaction, adding names the folder does not have yet when create is
// set (and ignoring them when not: removing a keyword nobody has is a
// no-op). New names are written to dovecot-keywords at once and go into
// the log with the commit.
func (t *txn) keywordBits(names []string, create bool) (uint32, error) {
	if len(names) == 0 {
		return 0, nil
	}
	b := t.b
	table := t.keywordTable()
	var bits uint32
	reloaded, added := false, false
	for _, k := range names {
		i := keywordIndex(table, k)
		if i < 0 && create && !reloaded {
			// Another program may have added it meanwhile.
			data, err := readFileIfExists(filepath.Join(b.path, keywordsName))
			if err != nil {
				return 0, wrapErr("read keywords of "+b.name, err)
			}
			for j, name := range parseKeywords(data) {
				for len(table) <= j {
					table = append(table, "")
				}
				if name != "" && table[j] == "" {
					table[j] = name
					t.c.ops = append(t.c.ops, logOp{kind: opKeyword, slot: uint8(j), name: name})
				}
			}
			reloaded = true
			i = keywordIndex(table, k)
		}
		if i < 0 {
			if !create {
				continue
			}
			if !validKeyword(k) {
				return 0, fmt.Errorf("%w: keyword %q", ErrInvalidName, k)
			}
			if i = freeKeywordSlot(&table); i < 0 {
				return 0, ErrTooManyKeywords
			}
			table[i] = k
			added = true
			t.c.ops = append(t.c.ops, logOp{kind: opKeyword, slot: uint8(i), name: k})
		}
		bits |= 1 << i
	}
	if added {
		if err := writeFileAtomic(filepath.Join(b.path, keywordsName), marshalKeywords(table), b.s.opts.FileMode); err != nil {
			return 0, noSpace(err)
		}
	}
	return bits, nil
}

// keywordTable is the folder's keyword table with the names this
// transaction has defined so far.
func (t *txn) keywordTable() []string {
	table := append([]string(nil), t.b.keywords...)
	for _, op := range t.c.ops {
		if op.kind != opKeyword {
			continue
		}
		for len(table) <= int(op.slot) {
			table = append(table, "")
		}
		if table[op.slot] == "" {
			table[op.slot] = op.name
		}
	}
	return table
}

// freeKeywordSlot returns an unnamed slot of the keyword table, growing it
// up to maxKeywords, or -1 when all 26 letters are taken.
func freeKeywordSlot(table *[]string) int {
	for j, x := range *table {
		if x == "" {
			return j
		}
	}
	if len(*table) >= maxKeywords {
		return -1
	}
	*table = append(*table, "")
	return len(*table) - 1
}

// Deliver writes a message into a folder's new/ the way an MDA does (tmp,
// fsync, rename), without loading the folder's index: the server numbers it
// when a session next looks. mailbox "" is INBOX.
func (u *User) Deliver(ctx context.Context, mailbox string, r io.Reader) error {
	if mailbox == "" {
		mailbox = Inbox
	}
	path, err := u.folderPath(mailbox)
	if err != nil {
		return err
	}
	if fi, err := os.Stat(filepath.Join(path, "new")); err != nil || !fi.IsDir() {
		return ErrNotFound
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	p, err := u.store.writeTmp(path, r, 0, 0, time.Time{})
	if err != nil {
		return err
	}
	if err := os.Rename(p.tmpPath, filepath.Join(path, "new", p.base)); err != nil {
		os.Remove(p.tmpPath)
		return fmt.Errorf("store: deliver: %w", err)
	}
	if err := syncDir(filepath.Join(path, "new")); err != nil {
		return err
	}
	u.store.notify(path)
	return nil
}
