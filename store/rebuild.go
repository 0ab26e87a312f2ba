package store

import (
	"context"
	"path/filepath"
	"sort"
	"strconv"
)

// rebuild builds the index from dovecot-uidlist and a listing of the
// folder, numbers what the uidlist does not list, and writes a new log.
// It is what a folder Letterbox never opened costs once, and what a lost
// or damaged log costs: every message gets one new MODSEQ above all
// earlier ones (clients resync flags, nothing is downloaded again), and
// expunges from before are forgotten. b.mu is held; lock may be held.
func (b *box) rebuild(ctx context.Context, held *dotlock) error {
	// The folder is listed under the lock: a listing taken without it can
	// miss what another process adds meanwhile, and with coarse file-system
	// clocks the directory's stamp need not show it. Reading files to learn
	// their sizes is slow on a big Postfix-fed folder, so that is done
	// without the lock, and the listing taken again after. Dates are left
	// for later: one stat per message would double the cost of opening a
	// big folder.
	sizes := map[string]measured{}
	lock := held
	var files map[string]found
	var st stamps
	var ul *uidlist
	nb := b.fresh()
	for attempt := 0; ; attempt++ {
		var err error
		if lock == nil {
			lock, err = b.lockFolder(ctx)
			if err != nil {
				return err
			}
			// Someone may have written a log while we waited.
			if head, ok, err := b.readUidlistHead(); err == nil && ok {
				if lb, err := b.readLog(head.uidValidity); err == nil {
					lock.release()
					b.adoptIndex(lb)
					return nil
				}
			}
		}
		files, st, _, err = b.readFolder(true)
		if err == nil {
			ul, err = nb.readUidlistAll()
		}
		if err != nil {
			if lock != held {
				lock.release()
			}
			if isNotExist(err) {
				b.vanish()
				return ErrNotFound
			}
			return wrapErr("list "+b.name, err)
		}
		unsized := unsizedFiles(files, ul, sizes)
		if len(unsized) == 0 || lock == held || attempt >= 2 {
			for k, v := range b.measure(unsized, false) {
				sizes[k] = v
			}
			break
		}
		lock.release()
		lock = nil
		for k, v := range b.measure(unsized, false) {
			sizes[k] = v
		}
	}
	if lock != held {
		defer lock.release()
	}

	nb.seen = stamps{cur: st.cur, new: st.new}
	t := &txn{b: nb, ctx: ctx, lock: lock, ref: nb.seen}
	if ul == nil {
		v, err := b.s.allocUIDValidity(b.root)
		if err != nil {
			return err
		}
		nb.uidValidity, nb.nextUID, nb.guid = v, 1, newGUID()
	} else {
		nb.adoptHeader(ul)
		nb.seen.uidlist = nb.stampOf(fileUidlist)
		t.ref.uidlist = nb.seen.uidlist
	}
	if data, err := readFileIfExists(filepath.Join(b.path, keywordsName)); err == nil {
		nb.keywords = parseKeywords(data)
	}

	// Files the uidlist numbers, in UID order; lines without a file are
	// for messages long gone, or for files we may see later.
	var lines []uidEntry
	if ul != nil {
		lines = ul.entries
	}
	nb.msgs = make([]entry, 0, len(files)+16)
	for _, ue := range lines {
		f, ok := files[ue.base]
		if !ok {
			nb.orphans = append(nb.orphans, ue)
			continue
		}
		delete(files, ue.base)
		e := entry{uid: ue.uid, ext: ue.ext, size: -1}
		e.setName(f.logName())
		if w, ok := extField(ue.ext, 'W'); ok {
			if n, err := strconv.ParseInt(w, 10, 64); err == nil {
				e.size = n
			}
		}
		if e.size < 0 {
			if n, ok := baseSize(ue.base, 'W'); ok {
				e.size = n
			} else if m, ok := sizes[ue.base]; ok {
				e.size = m.size
			}
		}
		nb.msgs = append(nb.msgs, e)
	}
	// Orphans below the last numbered file are dead lines.
	last := nb.lastUID()
	live := nb.orphans[:0]
	for _, o := range nb.orphans {
		if o.uid > last {
			live = append(live, o)
		}
	}
	nb.orphans = live

	// A file in new/ is recent; so is anything numbered now.
	firstRecent := uint32(0)
	for i := range nb.msgs {
		if nb.msgs[i].inNew && (firstRecent == 0 || nb.msgs[i].uid < firstRecent) {
			firstRecent = nb.msgs[i].uid
		}
	}
	if len(files) > 0 {
		fresh := make([]found, 0, len(files))
		for _, f := range files {
			fresh = append(fresh, f)
		}
		sort.Slice(fresh, func(i, j int) bool { return arrivalLess(fresh[i].name, fresh[j].name) })
		if firstRecent == 0 {
			firstRecent = nb.nextUID
		}
		if ul == nil {
			// No uidlist: write one with everything, then number.
			if err := nb.rewriteUidlist(t, nil); err != nil {
				return err
			}
		}
		if err := t.number(fresh, sizes); err != nil {
			return err
		}
	} else if ul == nil {
		if err := nb.rewriteUidlist(t, nil); err != nil {
			return err
		}
	}
	// Files the uidlist numbered that are still in new/ move to cur/.
	for i := range nb.msgs {
		e := &nb.msgs[i]
		if e.inNew {
			if n, ok := t.toCur(found{name: e.name, inNew: true}); ok {
				e.setName(n)
			}
		}
	}
	if firstRecent == 0 {
		firstRecent = nb.nextUID
	}
	if b.loaded && b.uidValidity == nb.uidValidity {
		firstRecent = b.firstRecent
	}

	// The ops number collected are the fresh files: apply them as a
	// whole, every message with the new MODSEQ.
	base := b.nextModSeq()
	if nb.highestModSeq >= base {
		base = nb.highestModSeq + 1
	}
	c := t.c
	c.modseq = base
	c.nextUID = nb.nextUID
	c.firstRecent = firstRecent
	c.before, c.after = nb.seen, t.after()
	if err := nb.apply(&c, nil); err != nil {
		return err
	}
	for i := range nb.msgs {
		nb.msgs[i].modseq = base
	}
	nb.highestModSeq, nb.horizon = base, base
	nb.loaded = true
	if err := nb.writeLog(); err != nil {
		nb.logless(err)
	}
	b.adoptIndex(nb)
	return nil
}

// unsizedFiles lists the files whose size neither their name, their
// uidlist line nor an earlier measuring gives.
func unsizedFiles(files map[string]found, ul *uidlist, known map[string]measured) []found {
	var lineW map[string]bool
	var out []found
	for base, f := range files {
		if _, ok := baseSize(base, 'W'); ok {
			continue
		}
		if _, ok := known[base]; ok {
			continue
		}
		if lineW == nil && ul != nil {
			lineW = make(map[string]bool)
			for _, e := range ul.entries {
				if _, ok := extField(e.ext, 'W'); ok {
					lineW[e.base] = true
				}
			}
		}
		if !lineW[base] {
			out = append(out, f)
		}
	}
	return out
}
