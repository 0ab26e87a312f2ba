package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strconv"
)

// Scanning: comparing a listing of the folder with the index and logging
// the difference. Listing and measuring happen without the dotlock; the
// comparison is made again under it only if the log moved meanwhile (then
// the listing may predate changes the log now holds). What is missing from
// a listing is taken as expunged only if the listing was complete and the
// file is really gone; otherwise it waits for the next scan.

// listDiff is how a listing differs from the index.
type listDiff struct {
	fresh   []found // files the index does not have
	renamed []moved // messages whose file name changed (flags, or new/ → cur/)
	missing []int   // index positions absent from a full listing
	// needFull: a file the index has in new/ is gone from new/: moved to
	// cur/ or removed, only a listing of cur/ can tell.
	needFull bool
}

type moved struct {
	i int
	f found
}

func (d *listDiff) empty() bool {
	return len(d.fresh) == 0 && len(d.renamed) == 0 && len(d.missing) == 0 && !d.needFull
}

// diff compares a listing with the index. It consumes files.
func (b *box) diff(files map[string]found, full bool) *listDiff {
	d := &listDiff{}
	if !full && len(files) == 0 && !b.hasInNew() {
		return d
	}
	for i := range b.msgs {
		e := &b.msgs[i]
		base := e.base()
		f, ok := files[base]
		if !ok {
			if full {
				d.missing = append(d.missing, i)
			} else if e.inNew {
				d.needFull = true
			}
			continue
		}
		delete(files, base)
		if f.name != e.name || f.inNew != e.inNew {
			d.renamed = append(d.renamed, moved{i: i, f: f})
		}
	}
	for _, f := range files {
		d.fresh = append(d.fresh, f)
	}
	return d
}

func (b *box) hasInNew() bool {
	for i := len(b.msgs) - 1; i >= 0; i-- {
		if b.msgs[i].inNew {
			return true
		}
	}
	return false
}

// scan lists the folder and logs what changed. b.mu is held.
func (b *box) scan(ctx context.Context, full bool) error {
	for attempt := 0; ; attempt++ {
		var t *txn
		if attempt >= 2 {
			// The log keeps moving under us: list under the lock.
			var err error
			if t, err = b.begin(ctx, nil); err != nil {
				return err
			}
		}
		logOff, logID := b.logOff, b.logID
		files, st, complete, err := b.readFolder(full)
		if err != nil {
			if t != nil {
				t.lock.release()
			}
			if isNotExist(err) {
				b.vanish()
				return ErrNotFound
			}
			return wrapErr("list "+b.name, err)
		}
		d := b.diff(files, full)
		if d.needFull && !full {
			if t != nil {
				t.lock.release()
			}
			full = true
			attempt--
			continue
		}
		if d.empty() || (!complete && len(d.fresh) == 0 && len(d.renamed) == 0) {
			if t != nil {
				t.lock.release()
			}
			if complete {
				if full {
					b.seen.cur = st.cur
				}
				b.seen.new = st.new
			}
			return nil
		}
		var sizes map[string]measured
		if t == nil {
			sizes = b.measure(d.fresh, true)
			if t, err = b.begin(ctx, nil); err != nil {
				return err
			}
			if b.logOff != logOff || b.logID != logID {
				t.lock.release()
				continue
			}
		}
		err = t.logDiff(d, st, complete, full, sizes)
		if cerr := t.commit(); err == nil {
			err = cerr
		}
		t.lock.release()
		if errors.Is(err, errUIDValidityChanged) {
			return b.reload(ctx, nil)
		}
		return err
	}
}

// logDiff turns a listing's difference into ops, numbering new files and
// moving files from new/ to cur/. The dotlock is held.
func (t *txn) logDiff(d *listDiff, st stamps, complete, full bool, sizes map[string]measured) error {
	b := t.b
	if complete {
		if full {
			t.ref.cur = st.cur
		}
		t.ref.new = st.new
	}
	var kw uint32
	for _, m := range d.renamed {
		_, info := splitName(m.f.name)
		_, k := parseInfo(info)
		kw |= k
	}
	for _, f := range d.fresh {
		_, info := splitName(f.name)
		_, k := parseInfo(info)
		kw |= k
	}
	if err := t.learnKeywords(kw); err != nil {
		return err
	}
	// Expunged: gone from a complete listing, and really gone. Highest
	// first, as the feed announces them.
	if complete {
		for j := len(d.missing) - 1; j >= 0; j-- {
			e := &b.msgs[d.missing[j]]
			if _, err := os.Lstat(b.filePath(e)); err == nil {
				continue // the listing missed it
			}
			t.c.ops = append(t.c.ops, logOp{kind: opExpunge, uid: e.uid})
		}
	}
	for _, m := range d.renamed {
		name := m.f.logName()
		if m.f.inNew {
			if n, ok := t.toCur(m.f); ok {
				name = n
			}
		}
		t.c.ops = append(t.c.ops, logOp{kind: opFlags, uid: b.msgs[m.i].uid, name: name})
	}
	// Indexed files still in new/ (a move that failed before) go to cur/.
	for i := range b.msgs {
		e := &b.msgs[i]
		if e.inNew && !t.hasOp(e.uid) {
			if n, ok := t.toCur(found{name: e.name, inNew: true}); ok {
				t.c.ops = append(t.c.ops, logOp{kind: opFlags, uid: e.uid, name: n})
			}
		}
	}
	if len(d.fresh) > 0 {
		return t.number(d.fresh, sizes)
	}
	return nil
}

func (t *txn) hasOp(uid uint32) bool {
	for _, op := range t.c.ops {
		if op.uid == uid {
			return true
		}
	}
	return false
}

// toCur moves a file from new/ to cur/ (the Maildir rule: a file a reader
// has seen lives in cur/), keeping its base and flags. It returns the new
// name; false if the file could not be moved (it stays in new/).
func (t *txn) toCur(f found) (string, bool) {
	base, info := splitName(f.name)
	fl, kw := parseInfo(info)
	name := curName(base, fl, kw)
	from, to := filepath.Join(t.b.path, "new", f.name), filepath.Join(t.b.path, "cur", name)
	if err := t.rename(from, to); err != nil {
		if !isNotExist(err) {
			t.b.s.log.Warn("store: cannot move message to cur/", "mailbox", t.b.name, "err", err)
		}
		return "", false
	}
	return name, true
}

// readUidlistTail takes in the lines added to dovecot-uidlist since the
// index last read it. The dotlock is held.
func (t *txn) readUidlistTail() error {
	b := t.b
	entries, hdr, err := b.readUidlistNew()
	if err != nil {
		return err
	}
	if hdr != nil && b.uidValidity != 0 && hdr.uidValidity != b.uidValidity {
		return errUIDValidityChanged
	}
	b.learnUidlist(entries, hdr)
	return nil
}

// number gives UIDs to files found on disk: the UID a uidlist line already
// gives them (Dovecot or an earlier run numbered them), else the next one,
// in arrival order, with a line added to the uidlist.
func (t *txn) number(fresh []found, sizes map[string]measured) error {
	b := t.b
	if err := t.readUidlistTail(); err != nil {
		return err
	}

	type item struct {
		f    found
		line uidEntry
		has  bool
	}
	items := make([]item, 0, len(fresh))
	for _, f := range fresh {
		base, _ := splitName(f.name)
		line, has := b.takeOrphan(base)
		items = append(items, item{f: f, line: line, has: has})
	}
	sort.Slice(items, func(i, j int) bool {
		a, c := items[i], items[j]
		if a.has != c.has {
			return a.has
		}
		if a.has {
			return a.line.uid < c.line.uid
		}
		return arrivalLess(a.f.name, c.f.name)
	})
	last := b.lastUID()
	var lines []uidEntry
	type numbered struct {
		f    found
		uid  uint32
		ext  string
		size int64
		date int64
	}
	var out []numbered
	for _, it := range items {
		f := it.f
		base, _ := splitName(f.name)
		m, ok := sizes[base]
		if !ok {
			m = b.measure([]found{f}, true)[base]
		}
		ext := it.line.ext
		if w, ok := extField(ext, 'W'); ok && m.size < 0 {
			if n, err := strconv.ParseInt(w, 10, 64); err == nil {
				m.size = n
			}
		}
		var uid uint32
		switch {
		case it.has && it.line.uid > last:
			uid = it.line.uid
		case it.has:
			// Numbered below what clients were already shown: it can
			// only come in as a new message, under a new base name so
			// that the old line does not name it too.
			nf, err := t.rebase(f)
			if err != nil {
				continue
			}
			f, ext = nf, ""
			fallthrough
		default:
			uid = b.nextUID
			if m.size >= 0 {
				if _, sized := baseSize(base, 'W'); !sized {
					ext = setExtField(ext, 'W', strconv.FormatInt(m.size, 10))
				}
			}
			nb, _ := splitName(f.name)
			lines = append(lines, uidEntry{uid: uid, ext: ext, base: nb})
		}
		if uid >= b.nextUID {
			b.nextUID = uid + 1
		}
		last = uid
		out = append(out, numbered{f: f, uid: uid, ext: ext, size: m.size, date: m.date})
	}
	// The lines first: a crash after them leaves files whose numbers are
	// on record, picked up again with the same UIDs.
	if err := t.appendUidlist(lines); err != nil {
		return err
	}
	for _, n := range out {
		name := n.f.logName()
		if n.f.inNew {
			if c, ok := t.toCur(n.f); ok {
				name = c
			}
		}
		t.c.ops = append(t.c.ops, logOp{kind: opAppend, uid: n.uid, size: n.size, date: n.date, name: name, ext: n.ext})
	}
	t.c.nextUID = b.nextUID
	return nil
}

// rebase renames a file to a new base name (same flags and sizes).
func (t *txn) rebase(f found) (found, error) {
	b := t.b
	base, info := splitName(f.name)
	nb := b.s.ids.next()
	if s, ok := baseSize(base, 'S'); ok {
		if w, ok := baseSize(base, 'W'); ok {
			nb = withSizes(nb, s, w)
		}
	}
	fl, kw := parseInfo(info)
	name := curName(nb, fl, kw)
	from := filepath.Join(b.path, subdir(f.inNew), f.name)
	if err := t.rename(from, filepath.Join(b.path, "cur", name)); err != nil {
		return found{}, err
	}
	b.s.log.Warn("store: file numbered below the last UID got a new name and UID", "mailbox", b.name, "old", base, "new", nb)
	return found{name: name}, nil
}

// arrivalLess orders file names by the time they start with, then by the
// rest: the order messages arrived in.
func arrivalLess(a, c string) bool {
	ta, ra := baseTime(a)
	tc, rc := baseTime(c)
	if ta != tc {
		return ta < tc
	}
	return ra < rc
}

// learnKeywords makes sure every keyword letter in kw has a name, reading
// dovecot-keywords for letters another program defined and logging the
// names, so other processes learn them from the log.
func (t *txn) learnKeywords(kw uint32) error {
	b := t.b
	unknown := false
	for i := 0; i < maxKeywords; i++ {
		if kw&(1<<i) != 0 && (i >= len(b.keywords) || b.keywords[i] == "") {
			unknown = true
		}
	}
	if !unknown {
		return nil
	}
	data, err := readFileIfExists(filepath.Join(b.path, keywordsName))
	if err != nil {
		return wrapErr("read keywords of "+b.name, err)
	}
	for i, k := range parseKeywords(data) {
		if k != "" && (i >= len(b.keywords) || b.keywords[i] == "") && !t.hasKeywordOp(i) {
			t.c.ops = append(t.c.ops, logOp{kind: opKeyword, slot: uint8(i), name: k})
		}
	}
	return nil
}

func (t *txn) hasKeywordOp(slot int) bool {
	for _, op := range t.c.ops {
		if op.kind == opKeyword && int(op.slot) == slot {
			return true
		}
	}
	return false
}
