package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"time"
)

// Numbering: reading and writing dovecot-uidlist, and giving UIDs to files
// found on disk, under the dotlock.

// readUidlist reads the uidlist if it changed since it was last read; nil
// with no error means it did not change (or does not exist and never did).
func (b *box) readUidlist() (*uidlist, error) {
	p := filepath.Join(b.path, uidlistName)
	id, err := statID(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("store: stat uidlist of %s: %w", b.name, err)
	}
	if id == b.uidlistID {
		return nil, nil
	}
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("store: read uidlist of %s: %w", b.name, err)
	}
	ul, bad, err := parseUidlist(data)
	if err != nil {
		// A broken uidlist is rebuilt, like Dovecot does; UIDs change
		// and clients resync, but no mail is lost.
		b.s.log.Error("store: unreadable dovecot-uidlist, rebuilding", "mailbox", b.name, "path", p, "err", err)
		return nil, nil
	}
	if bad > 0 {
		b.s.log.Warn("store: skipped malformed dovecot-uidlist lines", "mailbox", b.name, "path", p, "lines", bad)
	}
	b.uidlistID = id
	return ul, nil
}

// assign gives UIDs to files found on disk that the index does not know,
// moves new/ files to cur/, and writes the uidlist. It holds the dotlock, so
// no other process numbers messages meanwhile.
func (b *box) assign(ctx context.Context, unknown map[string]found, held *dotlock) error {
	if held == nil {
		lock, err := acquireDotlock(ctx, filepath.Join(b.path, uidlistName+".lock"), b.s.opts.LockTimeout, b.s.opts.FileMode)
		if err != nil {
			return err
		}
		defer lock.release()
	}

	ul, err := b.readUidlist()
	if err != nil {
		return err
	}
	if ul != nil {
		if b.uidValidity != 0 && ul.uidValidity != b.uidValidity {
			b.invalidate()
			return errRestart
		}
		b.adoptHeader(ul)
	}
	if b.uidValidity == 0 {
		v, err := b.s.allocUIDValidity(b.root)
		if err != nil {
			return err
		}
		b.uidValidity, b.nextUID, b.guid = v, 1, newGUID()
	}

	// Files another process (or an earlier run) already numbered.
	// If the directory was read under the lock, lines whose files are
	// not there are for messages that are gone.
	fresh := b.adopt(ul, unknown, held != nil)
	// The rest are new: number them in arrival order, which is the
	// order of the times their names start with.
	rest := make([]string, 0, len(unknown))
	for base := range unknown {
		rest = append(rest, base)
	}
	sort.Slice(rest, func(i, j int) bool {
		ti, ri := baseTime(rest[i])
		tj, rj := baseTime(rest[j])
		if ti != tj {
			return ti < tj
		}
		return ri < rj
	})
	for _, base := range rest {
		e := b.newEntry(b.nextUID, unknown[base], "")
		b.nextUID++
		e.recent = true
		fresh = append(fresh, e)
	}
	sort.Slice(fresh, func(i, j int) bool { return fresh[i].uid < fresh[j].uid })

	// Measure what has no size anywhere; this opens the file once. One
	// that cannot be read now is tried again at the next sync.
	for i := range fresh {
		if fresh[i].size < 0 {
			b.measureEntry(&fresh[i])
		}
	}

	// new/ → cur/: the message is now known to a reader (Maildir spec).
	n0 := len(b.msgs)
	b.msgs = append(b.msgs, fresh...)
	if n0 > 0 && len(fresh) > 0 && b.msgs[n0-1].uid > fresh[0].uid {
		b.s.log.Warn("store: uidlist gave an old UID to a new file", "mailbox", b.name)
		sort.Slice(b.msgs, func(i, j int) bool { return b.msgs[i].uid < b.msgs[j].uid })
	}
	for i := range b.msgs {
		e := &b.msgs[i]
		if !e.inNew {
			continue
		}
		name := curName(e.base(), e.flags, e.kw)
		from, to := filepath.Join(b.path, "new", e.name), filepath.Join(b.path, "cur", name)
		b.expect(from, to)
		if err := os.Rename(from, to); err == nil {
			e.name, e.inNew = name, false
		} else if !errors.Is(err, fs.ErrNotExist) {
			b.s.log.Warn("store: cannot move message to cur/", "mailbox", b.name, "err", err)
		}
	}
	if len(b.msgs) > 0 && b.msgs[len(b.msgs)-1].uid >= b.nextUID {
		b.nextUID = b.msgs[len(b.msgs)-1].uid + 1
	}
	if err := b.writeUidlist(); err != nil {
		return err
	}
	if b.loaded {
		for _, e := range fresh {
			b.emit(Change{Kind: Appended, UID: e.uid, Seq: b.find(e.uid) + 1})
		}
	}
	return nil
}

// adopt takes the numbers a uidlist gives to files found on disk: from ul
// if it was just read, else from the orphans of the last read. Lines that
// match no file and no indexed message become the new orphans: files we
// may see later, or lines for files long gone (Dovecot leaves those until
// it next rewrites the file). Matched files are removed from files.
func (b *box) adopt(ul *uidlist, files map[string]found, complete bool) []entry {
	lines := b.orphans
	if ul != nil {
		lines = ul.entries
	}
	var out []entry
	var orphans []uidEntry
	for _, ue := range lines {
		if f, ok := files[ue.base]; ok {
			delete(files, ue.base)
			out = append(out, b.newEntry(ue.uid, f, ue.ext))
			continue
		}
		if b.find(ue.uid) < 0 && !complete {
			orphans = append(orphans, ue)
		}
	}
	b.orphans = orphans
	return out
}

// newEntry builds an index entry for a file on disk. A size of -1 means it
// must be measured.
func (b *box) newEntry(uid uint32, f found, ext string) entry {
	_, info := splitName(f.name)
	fl, kw := parseInfo(info)
	e := entry{name: f.name, ext: ext, uid: uid, flags: fl, kw: kw, inNew: f.inNew, size: -1}
	if w, ok := extField(ext, 'W'); ok {
		if n, err := strconv.ParseInt(w, 10, 64); err == nil {
			e.size = n
		}
	}
	if e.size < 0 {
		if n, ok := baseSize(e.base(), 'W'); ok {
			e.size = n
		}
	}
	if f.inNew {
		e.recent = true
	}
	b.keywordNames(kw)
	return e
}

// adoptHeader takes UIDVALIDITY and the next UID from a uidlist read from
// disk. Dovecot does not always rewrite N when it appends lines, so the
// next UID is the larger of N and the last UID + 1.
func (b *box) adoptHeader(ul *uidlist) {
	b.uidValidity = ul.uidValidity
	b.guid = ul.guid
	b.hdrExtra = ul.hdrExtra
	next := ul.nextUID
	if n := len(ul.entries); n > 0 && ul.entries[n-1].uid >= next {
		next = ul.entries[n-1].uid + 1
	}
	if next > b.nextUID {
		b.nextUID = next
	}
}

// invalidate drops the index after the folder's UIDVALIDITY changed under us
// (the uidlist was rebuilt by someone else): every UID sessions hold is void.
func (b *box) invalidate() {
	b.s.log.Warn("store: UIDVALIDITY changed on disk, reloading", "mailbox", b.name)
	b.emit(Change{Kind: Invalidated})
	b.msgs = b.msgs[:0]
	b.uidValidity, b.nextUID = 0, 0
	b.uidlistID = fileID{}
	b.loaded = false
}

// vanish marks the folder deleted.
func (b *box) vanish() {
	if b.gone {
		return
	}
	b.gone = true
	b.msgs = nil
	b.emit(Change{Kind: Invalidated})
}

// writeUidlist writes the index as the uidlist, with the orphan lines: a
// file another process numbered may not be in our readdir yet, and its
// number must not be lost. The dotlock is held.
func (b *box) writeUidlist() error {
	out := &uidlist{uidValidity: b.uidValidity, nextUID: b.nextUID, guid: b.guid, hdrExtra: b.hdrExtra}
	out.entries = make([]uidEntry, 0, len(b.msgs))
	for i := range b.msgs {
		e := &b.msgs[i]
		out.entries = append(out.entries, uidEntry{uid: e.uid, ext: e.ext, base: e.base()})
	}
	if len(b.orphans) > 0 {
		out.entries = append(out.entries, b.orphans...)
		slices.SortFunc(out.entries, func(a, b uidEntry) int { return cmp.Compare(a.uid, b.uid) })
	}
	p := filepath.Join(b.path, uidlistName)
	if err := writeFileAtomic(p, out.marshal(), b.s.opts.FileMode); err != nil {
		return err
	}
	id, err := statID(p)
	if err == nil {
		b.uidlistID = id
	}
	return nil
}

// measure returns the CRLF size of a file: its size plus one for every LF
// without a CR before it.
func measure(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var c crlfCounter
	if _, err := io.Copy(&c, f); err != nil {
		return 0, err
	}
	return c.n, nil
}

// crlfCounter counts what a byte stream is with bare LFs made CRLF.
type crlfCounter struct {
	n      int64
	prevCR bool
}

func (c *crlfCounter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	for _, ch := range p {
		if ch == '\n' && !c.prevCR {
			c.n++
		}
		c.prevCR = ch == '\r'
	}
	return len(p), nil
}

// cleanTmp removes tmp/ files older than 36 hours, left by crashed writers
// (the Maildir spec's rule).
func (b *box) cleanTmp() {
	dir := filepath.Join(b.path, "tmp")
	cutoff := time.Now().Add(-36 * time.Hour)
	_ = readNames(dir, func(n string) {
		p := filepath.Join(dir, n)
		if fi, err := os.Lstat(p); err == nil && fi.ModTime().Before(cutoff) {
			_ = os.Remove(p)
		}
	})
}
