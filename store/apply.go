package store

import (
	"slices"
	"strings"
)

// Applying the log to the index. Every process runs exactly this code on
// exactly the same records in the same order, the writer included, which
// is why they agree on sequence numbers, flags and MODSEQs.

// apply applies one commit and emits its changes: keywords first, then
// expunges (highest sequence number first, so each number is right when
// it is announced), flag changes, and appends at the end. b.mu is held for
// writing. errDiverged means the record does not fit the index (the index
// missed something); nothing has been emitted then.
func (b *box) apply(c *commit, origin any) error {
	var exp, flg, app []int
	for i, op := range c.ops {
		switch op.kind {
		case opExpunge:
			exp = append(exp, i)
		case opFlags:
			flg = append(flg, i)
		case opAppend:
			app = append(app, i)
		}
	}
	// Check before changing anything, so a bad record leaves the index
	// as it was for the reload.
	last := b.lastUID()
	for _, i := range exp {
		if b.find(c.ops[i].uid) < 0 {
			return errDiverged
		}
	}
	for _, i := range flg {
		if b.find(c.ops[i].uid) < 0 {
			return errDiverged
		}
	}
	for _, i := range app {
		if c.ops[i].uid <= last {
			return errDiverged
		}
		last = c.ops[i].uid
	}

	if b.applyKeywords(c) {
		b.rebuildKeywordCache()
		b.emit(Change{Kind: KeywordsChanged, Origin: origin})
	}

	if len(exp) > 0 {
		idx := make([]int, 0, len(exp))
		uids := make([]uint32, 0, len(exp))
		for _, i := range exp {
			idx = append(idx, b.find(c.ops[i].uid))
			uids = append(uids, c.ops[i].uid)
		}
		slices.Sort(idx)
		idx = slices.Compact(idx)
		for j := len(idx) - 1; j >= 0; j-- {
			e := &b.msgs[idx[j]]
			b.emit(Change{Kind: Expunged, UID: e.uid, Seq: idx[j] + 1, ModSeq: c.modseq, Origin: origin})
		}
		b.msgs = removeAt(b.msgs, idx)
		b.noteExpunged(uids, c.modseq)
	}

	for _, i := range flg {
		op := &c.ops[i]
		j := b.find(op.uid)
		e := &b.msgs[j]
		of, okw := e.flags, e.kw
		e.setName(op.name)
		if e.flags == of && e.kw == okw {
			continue // moved from new/ to cur/, or letters reordered
		}
		e.modseq = c.modseq
		b.emit(Change{Kind: FlagsChanged, UID: e.uid, Seq: j + 1, Flags: e.flags, Keywords: b.keywordNames(e.kw), ModSeq: c.modseq, Origin: origin})
	}

	for _, i := range app {
		op := &c.ops[i]
		e := entry{uid: op.uid, size: op.size, mtime: op.date, ext: op.ext, modseq: c.modseq, saved: c.time}
		e.setName(op.name)
		b.keywordNames(e.kw)
		b.msgs = append(b.msgs, e)
		b.emit(Change{Kind: Appended, UID: e.uid, Seq: len(b.msgs), ModSeq: c.modseq, Origin: origin})
	}

	b.applyScalars(c, last)
	return nil
}

// applyKeywords adds the keywords a commit defines and reports whether
// there were any new ones.
func (b *box) applyKeywords(c *commit) bool {
	added := false
	for _, op := range c.ops {
		if op.kind != opKeyword {
			continue
		}
		for len(b.keywords) <= int(op.slot) {
			b.keywords = append(b.keywords, "")
		}
		if b.keywords[op.slot] == "" {
			b.keywords[op.slot] = op.name
			added = true
		}
	}
	return added
}

// applyScalars moves the folder's counters and stamps as a commit says;
// last is its highest UID after the commit.
func (b *box) applyScalars(c *commit, last uint32) {
	if c.nextUID > b.nextUID {
		b.nextUID = c.nextUID
	}
	if last >= b.nextUID {
		b.nextUID = last + 1
	}
	if c.firstRecent > b.firstRecent {
		b.firstRecent = c.firstRecent
	}
	if c.modseq > b.highestModSeq {
		b.highestModSeq = c.modseq
	}
	// Stamps chain: a process that saw the folder as the writer did
	// before the commit sees it as the writer did after, without reading
	// the directories.
	if b.seen.cur == c.before.cur {
		b.seen.cur = c.after.cur
	}
	if b.seen.new == c.before.new {
		b.seen.new = c.after.new
	}
	if b.seen.uidlist == c.before.uidlist {
		b.seen.uidlist = c.after.uidlist
	}
}

// noteExpunged remembers expunged UIDs with their MODSEQ, as runs.
func (b *box) noteExpunged(uids []uint32, modseq uint64) {
	sortUIDs(uids)
	for _, u := range uids {
		if n := len(b.expunged); n > 0 {
			r := &b.expunged[n-1]
			if r.modseq == modseq && r.last+1 == u {
				r.last = u
				continue
			}
		}
		b.expunged = append(b.expunged, expRange{first: u, last: u, modseq: modseq})
	}
}

// removeAt removes the elements at the given ascending indexes.
func removeAt[T any](s []T, idx []int) []T {
	out := s[:idx[0]]
	k := 0
	for i := idx[0]; i < len(s); i++ {
		if k < len(idx) && idx[k] == i {
			k++
			continue
		}
		out = append(out, s[i])
	}
	clear(s[len(out):]) // let go of what the removed ones point to
	return out
}

// adoptIndex replaces the index with nb (a log read afresh or rebuilt from
// disk), announcing the difference as changes. A message nb has with a UID
// below one already announced cannot be announced (UIDs only grow): that
// only happens if this process's index was wrong, and its sessions are
// then told the mailbox is invalid.
func (b *box) adoptIndex(nb *box) {
	if !b.loaded || b.gone {
		b.take(nb)
		return
	}
	if nb.uidValidity != b.uidValidity {
		b.s.log.Warn("store: UIDVALIDITY changed on disk, reloading", "mailbox", b.name)
		b.emit(Change{Kind: Invalidated})
		b.take(nb)
		return
	}
	old := b.msgs
	lastOld := b.lastUID()
	var gone []int
	j := 0
	for i := range old {
		for j < len(nb.msgs) && nb.msgs[j].uid < old[i].uid {
			j++
		}
		if j >= len(nb.msgs) || nb.msgs[j].uid != old[i].uid {
			gone = append(gone, i)
		}
	}
	for _, e := range nb.msgs {
		if e.uid <= lastOld && b.find(e.uid) < 0 {
			b.s.log.Error("store: index missed a message below the last UID, reloading", "mailbox", b.name, "uid", e.uid)
			b.emit(Change{Kind: Invalidated})
			b.take(nb)
			return
		}
	}
	kwAdded := false
	for i, k := range nb.keywords {
		if k != "" && (i >= len(b.keywords) || !strings.EqualFold(b.keywords[i], k)) {
			kwAdded = true
		}
	}
	b.keywords = nb.keywords
	b.rebuildKeywordCache()
	if kwAdded {
		b.emit(Change{Kind: KeywordsChanged})
	}
	for k := len(gone) - 1; k >= 0; k-- {
		e := &old[gone[k]]
		b.emit(Change{Kind: Expunged, UID: e.uid, Seq: gone[k] + 1, ModSeq: nb.highestModSeq})
	}
	if len(gone) > 0 {
		b.msgs = removeAt(b.msgs, gone)
	}
	for i := range nb.msgs {
		e := &nb.msgs[i]
		if i < len(b.msgs) {
			o := &b.msgs[i]
			if o.flags != e.flags || o.kw != e.kw {
				b.msgs[i] = *e
				b.emit(Change{Kind: FlagsChanged, UID: e.uid, Seq: i + 1, Flags: e.flags, Keywords: b.keywordNames(e.kw), ModSeq: e.modseq})
			}
			continue
		}
		b.msgs = append(b.msgs, *e)
		b.emit(Change{Kind: Appended, UID: e.uid, Seq: i + 1, ModSeq: e.modseq})
	}
	b.take(nb)
}

// take copies nb's state into b, keeping b's identity and watchers.
func (b *box) take(nb *box) {
	b.msgs = nb.msgs
	b.uidValidity, b.nextUID, b.firstRecent = nb.uidValidity, nb.nextUID, nb.firstRecent
	b.highestModSeq, b.guid, b.hdrExtra = nb.highestModSeq, nb.guid, nb.hdrExtra
	b.keywords = nb.keywords
	b.expunged, b.horizon = nb.expunged, nb.horizon
	b.logID, b.logIno, b.logOff, b.logStat, b.logSnap, b.logBad = nb.logID, nb.logIno, nb.logOff, nb.logStat, nb.logSnap, nb.logBad
	b.noLogSince, b.logVerified = nb.noLogSince, nb.logVerified
	b.seen = nb.seen
	if nb.uidlistIno != 0 {
		b.orphans, b.uidlistIno, b.uidlistOff, b.uidlistLines, b.uidlistHead = nb.orphans, nb.uidlistIno, nb.uidlistOff, nb.uidlistLines, nb.uidlistHead
	}
	b.loaded, b.loadedOnce = true, true
	b.rebuildKeywordCache()
}

// invalidateIndex throws the index away after it proved wrong; the next
// sync loads the log afresh. Sessions are told to drop the mailbox.
func (b *box) invalidateIndex() {
	b.emit(Change{Kind: Invalidated})
	b.lazy.drop()
	b.msgs, b.lazy = nil, nil
	b.loaded = false
	b.logIno = 0
}

// vanish marks the folder deleted.
func (b *box) vanish() {
	if b.gone {
		return
	}
	b.gone = true
	b.lazy.drop()
	b.msgs, b.lazy = nil, nil
	b.emit(Change{Kind: Invalidated})
}
