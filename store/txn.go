package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// A transaction is how every change reaches a folder: under b.mu and the
// folder's dotlock, catch up with the change log (so the index is what
// every other process last wrote), make the change on disk, write one
// commit record with a new MODSEQ, and apply that record to the index the
// same way every other process will when it reads it. The order is what
// keeps processes in agreement: nobody writes the log without holding the
// lock, and nobody writes without having read everything before.

type txn struct {
	b      *box
	ctx    context.Context
	lock   *dotlock
	origin any
	c      commit

	// ref are the stamps the index will match once the commit is applied,
	// before this transaction's own changes; moved records, per directory,
	// whether the transaction renamed files in it and whether the directory
	// was as ref says just before it did.
	ref     stamps
	touched [3]bool // cur, new, uidlist
	clean   [3]bool

	// applied run after the commit is applied, with b.mu and the lock
	// still held, to read what it did (MODSEQs).
	applied []func()
}

// onApplied runs fn once the commit has been applied.
func (t *txn) onApplied(fn func()) { t.applied = append(t.applied, fn) }

// flush commits what the transaction has done so far and starts a new
// commit under the same lock.
func (t *txn) flush() error {
	err := t.commit()
	t.c = commit{firstRecent: t.b.firstRecent}
	t.ref = t.b.seen
	t.touched, t.clean = [3]bool{}, [3]bool{}
	return err
}

// resync commits what is done, then lists the folder under the lock and
// logs what changed outside the log: for a file that was not where the
// index said.
func (t *txn) resync() error {
	if err := t.flush(); err != nil {
		return err
	}
	b := t.b
	files, st, complete, err := b.readFolder(true)
	if err != nil {
		return wrapErr("list "+b.name, err)
	}
	d := b.diff(files, true)
	if !d.empty() {
		if err := t.logDiff(d, st, complete, true, nil); err != nil {
			return err
		}
		if err := t.flush(); err != nil {
			return err
		}
	}
	if complete {
		// Lines left without a file are for messages gone or never
		// stored (a writer that died between line and rename): dead.
		b.orphans = nil
	}
	return nil
}

const (
	dirCur = iota
	dirNew
	fileUidlist
)

// transact runs fn as one transaction. fn adds ops to t.c and does the
// matching file system work; if it returns an error, what it did on disk
// is still committed (files moved are moved), so fn should fail before
// touching anything when it can.
func (b *box) transact(ctx context.Context, origin any, fn func(t *txn) error) error {
	b.lock()
	defer b.mu.Unlock()
	t, err := b.begin(ctx, origin)
	if err != nil {
		return err
	}
	defer t.lock.release()
	ferr := fn(t)
	if err := t.commit(); err != nil && ferr == nil {
		ferr = err
	}
	return ferr
}

// begin takes the lock and catches up. b.mu is held.
func (b *box) begin(ctx context.Context, origin any) (*txn, error) {
	if b.gone {
		return nil, ErrNotFound
	}
	lock, err := b.lockFolder(ctx)
	if err != nil {
		return nil, err
	}
	t := &txn{b: b, ctx: ctx, lock: lock, origin: origin}
	if err := b.catchUp(ctx, lock); err != nil {
		lock.release()
		return nil, err
	}
	t.c.firstRecent = b.firstRecent
	t.ref = b.seen
	return t, nil
}

// touch is called before the transaction first changes directory (or the
// uidlist) d: if d is still as the index believes, the stamp taken after
// the change can be trusted by everyone; if not, somebody outside the log
// changed it and the stamp is left for a rescan to settle.
func (t *txn) touch(d int) {
	if t.touched[d] {
		return
	}
	t.touched[d] = true
	t.clean[d] = t.b.stampOf(d) == t.refOf(d)
}

func (t *txn) refOf(d int) uint64 {
	switch d {
	case dirCur:
		return t.ref.cur
	case dirNew:
		return t.ref.new
	}
	return t.ref.uidlist
}

// after works out the stamps the commit leaves behind.
func (t *txn) after() stamps {
	a := t.ref
	set := func(d int, v *uint64) {
		if !t.touched[d] {
			return
		}
		if t.clean[d] {
			*v = t.b.stampOf(d)
		} else {
			*v = t.b.seenOf(d) // unchanged: the next look reads the disk
		}
	}
	set(dirCur, &a.cur)
	set(dirNew, &a.new)
	set(fileUidlist, &a.uidlist)
	return a
}

// commit writes the record and applies it. With nothing to say it writes
// nothing.
func (t *txn) commit() error {
	b := t.b
	c := &t.c
	c.after = t.after()
	c.before = b.seen
	if len(c.ops) == 0 && c.firstRecent == b.firstRecent && c.after == c.before {
		t.runApplied()
		return nil
	}
	visible := false
	for _, op := range c.ops {
		switch op.kind {
		case opAppend, opExpunge:
			visible = true
		case opFlags:
			if i := b.find(op.uid); i >= 0 {
				_, info := splitName(op.name)
				if fl, kw := parseInfo(info); fl != b.msgs[i].flags || kw != b.msgs[i].kw {
					visible = true
				}
			}
		}
	}
	if visible {
		c.modseq = b.nextModSeq()
	}
	if c.nextUID < b.nextUID {
		c.nextUID = b.nextUID
	}
	c.time = time.Now().UnixNano()
	rec := c.marshal()
	werr := b.appendLog(rec)
	if err := b.apply(c, t.origin); err != nil {
		b.s.log.Error("store: own commit does not apply", "mailbox", b.name, "err", err)
		b.invalidateIndex()
		return nil
	}
	t.runApplied()
	switch {
	case werr == nil:
		b.maybeCompact(t.lock)
	case errors.Is(werr, errLogGone):
		// Deleted since we caught up under this lock: the index is the
		// whole story, so a snapshot of it is a correct new log.
		if err := b.writeLog(); err != nil {
			b.logless(err)
		}
	default:
		// The changes are on disk but the log cannot say so (a full
		// disk, most likely). A log that misses a change must not be
		// followed: take it away, so that every process reads the
		// directories instead, and write a new one from this index
		// (removing the old one may have made room).
		b.s.log.Error("store: cannot write letterbox-log, replacing it", "mailbox", b.name, "err", werr)
		os.Remove(b.logPath())
		if err := b.writeLog(); err != nil {
			b.logless(err)
		}
	}
	return nil
}

// logless puts the folder in the mode it is in while its log cannot be
// written: the index is kept in step with the directories by listing them
// (as before the log existed), and the log is written again as soon as
// there is room (see reload).
func (b *box) logless(err error) {
	b.s.log.Error("store: no letterbox-log for now, reading the folder instead", "mailbox", b.name, "err", err)
	b.logIno, b.logID, b.logOff, b.logStat, b.logVerified = 0, 0, 0, fileID{}, false
	b.noLogSince = time.Now()
}

func (t *txn) runApplied() {
	fns := t.applied
	t.applied = nil
	for _, fn := range fns {
		fn()
	}
}

// nextModSeq allocates a MODSEQ: above the last one and never below the
// current time in microseconds. The time floor is what makes MODSEQs
// survive the loss of the log's tail (a crash of the machine) or of the
// whole log: a rebuilt log starts at the current time, above every value
// handed out before, so HIGHESTMODSEQ never goes back and clients simply
// see everything as changed (RFC 7162 §3.1.2.1, no UIDVALIDITY change).
func (b *box) nextModSeq() uint64 {
	m := b.highestModSeq + 1
	if now := uint64(time.Now().UnixMicro()); now > m {
		m = now
	}
	return m
}

// stampOf stats one of the folder's directories or its uidlist now.
func (b *box) stampOf(d int) uint64 {
	var p string
	switch d {
	case dirCur:
		p = filepath.Join(b.path, "cur")
	case dirNew:
		p = filepath.Join(b.path, "new")
	default:
		p = filepath.Join(b.path, uidlistName)
	}
	id, err := statID(p)
	if err != nil {
		return 0
	}
	return id.hash()
}

func (b *box) seenOf(d int) uint64 {
	switch d {
	case dirCur:
		return b.seen.cur
	case dirNew:
		return b.seen.new
	}
	return b.seen.uidlist
}

// hash folds a stat into a stamp; 0 means unknown and never matches.
func (id fileID) hash() uint64 {
	if !id.ok {
		return 0
	}
	h := uint64(14695981039346656037)
	for _, v := range [4]uint64{uint64(id.mtime), uint64(id.ctime), uint64(id.size), id.ino} {
		for i := 0; i < 8; i++ {
			h ^= v & 0xff
			h *= 1099511628211
			v >>= 8
		}
	}
	if h == 0 {
		h = 1
	}
	return h
}

// rename moves a message file within the folder as part of t, noting the
// directories it changes (and expecting the inotify events).
func (t *txn) rename(from, to string) error {
	t.touch(t.dirOf(from))
	t.touch(t.dirOf(to))
	t.b.expect(from, to)
	return os.Rename(from, to)
}

// remove deletes a message file as part of t.
func (t *txn) remove(p string) error {
	t.touch(t.dirOf(p))
	t.b.expect(p)
	return os.Remove(p)
}

func (t *txn) dirOf(p string) int {
	if filepath.Base(filepath.Dir(p)) == "new" {
		return dirNew
	}
	return dirCur
}

// wrapErr wraps a file system error for callers, marking a full disk.
func wrapErr(what string, err error) error {
	if err == nil {
		return nil
	}
	return noSpace(fmt.Errorf("store: %s: %w", what, err))
}

// isNotExist is errors.Is(err, fs.ErrNotExist), also for ENOTDIR (a folder
// renamed away under a path).
func isNotExist(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}
