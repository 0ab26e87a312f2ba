package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
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
func (s *Store) writeTmp(dir string, r io.Reader, maxSize int64, date time.Time) (pending, error) {
	var base, tmp string
	var f *os.File
	for attempt := 0; ; attempt++ {
		base = s.ids.next()
		tmp = filepath.Join(dir, "tmp", base)
		var err error
		f, err = os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, s.opts.FileMode)
		if err == nil {
			break
		}
		if !errors.Is(err, fs.ErrExist) || attempt >= 3 {
			return pending{}, fmt.Errorf("store: write message: %w", err)
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
		return fail(fmt.Errorf("store: write message: %w", err))
	}
	if maxSize > 0 && sw.phys > maxSize {
		return fail(ErrTooBig)
	}
	if err := f.Sync(); err != nil {
		return fail(fmt.Errorf("store: write message: %w", err))
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return pending{}, fmt.Errorf("store: write message: %w", err)
	}
	if date.IsZero() {
		date = s.opts.Now()
	}
	if err := os.Chtimes(tmp, date, date); err != nil {
		os.Remove(tmp)
		return pending{}, fmt.Errorf("store: write message: %w", err)
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
	p, err := m.b.s.writeTmp(m.b.path, r, opts.MaxSize, opts.Date)
	if err != nil {
		return 0, err
	}
	p.flags, p.keywords = opts.Flags, opts.Keywords
	uids, err := m.b.commit(ctx, []pending{p}, opts.Origin)
	if err != nil {
		return 0, err
	}
	return uids[0], nil
}

// commit moves pending files from tmp/ into cur/ and numbers them, under
// the dotlock. On error the tmp files are removed.
func (b *box) commit(ctx context.Context, ps []pending, origin any) ([]uint32, error) {
	cleanup := func() {
		for _, p := range ps {
			os.Remove(p.tmpPath)
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	lock, err := b.lockCurrent(ctx)
	if err != nil {
		cleanup()
		return nil, err
	}
	defer lock.release()

	fresh := b.dirsFresh()
	var kws []uint32
	for _, p := range ps {
		kw, err := b.keywordBits(p.keywords, true)
		if err != nil {
			cleanup()
			return nil, err
		}
		kws = append(kws, kw)
	}
	uids := make([]uint32, 0, len(ps))
	n0 := len(b.msgs)
	for i, p := range ps {
		name := curName(p.base, p.flags, kws[i])
		dst := filepath.Join(b.path, "cur", name)
		b.expect(dst)
		if err := os.Rename(p.tmpPath, dst); err != nil {
			for _, q := range ps[i:] {
				os.Remove(q.tmpPath)
			}
			if len(uids) == 0 {
				return nil, fmt.Errorf("store: append: %w", err)
			}
			b.s.log.Error("store: append: rename into cur/", "mailbox", b.name, "err", err)
			break
		}
		uid := b.nextUID
		b.nextUID++
		b.keywordNames(kws[i])
		b.msgs = append(b.msgs, entry{
			name: name, uid: uid, flags: p.flags, kw: kws[i],
			size: p.size, mtime: p.mtime, recent: true,
		})
		uids = append(uids, uid)
	}
	if err := syncDir(filepath.Join(b.path, "cur")); err != nil {
		b.s.log.Warn("store: fsync cur/", "mailbox", b.name, "err", err)
	}
	if err := b.writeUidlist(); err != nil {
		// Disk full, most likely. The caller is told the append
		// failed, so take the files back out: a message the client
		// will send again must not also appear later.
		for i := n0; i < len(b.msgs); i++ {
			p := filepath.Join(b.path, "cur", b.msgs[i].name)
			b.expect(p)
			os.Remove(p)
		}
		b.msgs = b.msgs[:n0]
		b.nextUID -= uint32(len(uids))
		return nil, err
	}
	for i := n0; i < len(b.msgs); i++ {
		b.emit(Change{Kind: Appended, UID: b.msgs[i].uid, Seq: i + 1, Origin: origin})
	}
	if fresh {
		b.restamp()
	}
	return uids, nil
}

// lockCurrent takes the dotlock with the index in step with the uidlist: if
// another process numbered messages since we last looked, sync under the
// lock first, so that new UIDs are handed out above theirs. b.mu is held.
func (b *box) lockCurrent(ctx context.Context) (*dotlock, error) {
	if b.gone {
		return nil, ErrNotFound
	}
	p := filepath.Join(b.path, uidlistName)
	lock, err := acquireDotlock(ctx, p+".lock", b.s.opts.LockTimeout, b.s.opts.FileMode)
	if err != nil {
		return nil, err
	}
	if id, err := statID(p); err != nil || id != b.uidlistID || !b.loaded {
		if err := b.syncHeld(ctx, lock); err != nil {
			lock.release()
			return nil, err
		}
	}
	return lock, nil
}

// dirsFresh reports whether cur/ and new/ are as the last sync saw them,
// so that after a change of our own the new mtimes can be taken as seen.
func (b *box) dirsFresh() bool {
	c, err1 := statID(filepath.Join(b.path, "cur"))
	n, err2 := statID(filepath.Join(b.path, "new"))
	return err1 == nil && err2 == nil && c == b.curID && n == b.newID
}

// restamp records the directories' current mtimes after our own change.
func (b *box) restamp() {
	if c, err := statID(filepath.Join(b.path, "cur")); err == nil {
		b.curID = c
	}
	if n, err := statID(filepath.Join(b.path, "new")); err == nil {
		b.newID = n
	}
}

// keywordBits maps keyword names to the folder's letters, adding names the
// folder does not have yet when create is set (and ignoring them when not:
// removing a keyword nobody has is a no-op). b.mu and the dotlock are held.
func (b *box) keywordBits(names []string, create bool) (uint32, error) {
	var bits uint32
	reloaded := false
	added := false
	for _, k := range names {
		i := keywordIndex(b.keywords, k)
		if i < 0 && create && !reloaded {
			// Another process may have added it meanwhile.
			if err := b.reloadKeywords(); err != nil {
				return 0, err
			}
			reloaded = true
			i = keywordIndex(b.keywords, k)
		}
		if i < 0 {
			if !create {
				continue
			}
			if !validKeyword(k) {
				return 0, fmt.Errorf("%w: keyword %q", ErrInvalidName, k)
			}
			if i = b.freeKeywordSlot(); i < 0 {
				return 0, ErrTooManyKeywords
			}
			b.keywords[i] = k
			added = true
		}
		bits |= 1 << i
	}
	if added {
		if err := writeFileAtomic(filepath.Join(b.path, keywordsName), marshalKeywords(b.keywords), b.s.opts.FileMode); err != nil {
			return 0, err
		}
		b.rebuildKeywordCache()
		b.emit(Change{Kind: KeywordsChanged})
	}
	return bits, nil
}

// freeKeywordSlot returns an unnamed slot of the keyword table, growing it
// up to maxKeywords, or -1 when all 26 letters are taken.
func (b *box) freeKeywordSlot() int {
	for j, x := range b.keywords {
		if x == "" {
			return j
		}
	}
	if len(b.keywords) >= maxKeywords {
		return -1
	}
	b.keywords = append(b.keywords, "")
	return len(b.keywords) - 1
}

// reloadKeywords re-reads dovecot-keywords, keeping names we know in their
// slots (a slot, once named, is never renamed).
func (b *box) reloadKeywords() error {
	data, err := readFileIfExists(filepath.Join(b.path, keywordsName))
	if err != nil {
		return fmt.Errorf("store: read keywords of %s: %w", b.name, err)
	}
	disk := parseKeywords(data)
	for i, k := range disk {
		if k == "" {
			continue
		}
		for len(b.keywords) <= i {
			b.keywords = append(b.keywords, "")
		}
		if b.keywords[i] == "" {
			b.keywords[i] = k
		}
	}
	b.rebuildKeywordCache()
	return nil
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
	p, err := u.store.writeTmp(path, r, 0, time.Time{})
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
