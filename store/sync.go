package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// Syncing brings the index up to date: first with the change log (what
// other Letterbox processes did), then with the disk, for what was done
// outside the log (an MDA renaming into new/, Dovecot, an admin's mv).
// The disk is read only when the stamps of cur/ or new/ differ from the
// ones the index matches; what a listing shows that the index lacks is
// numbered and written to the log under the lock, so the other processes
// learn it from the log, not from listings of their own.

// logRetry is how often a folder whose log could not be written tries to
// write one again.
const logRetry = 5 * time.Second

// racyWindow: a directory changed this recently may change again within
// the same tick of a coarse file-system clock without its stamp moving.
const racyWindow = 2 * time.Second

// refresh syncs if the log or the disk may have changed.
func (b *box) refresh(ctx context.Context) error {
	if b.needsSync() {
		b.mu.Lock()
		defer b.mu.Unlock()
		return b.sync(ctx)
	}
	b.mu.RLock()
	gone := b.gone
	b.mu.RUnlock()
	if gone {
		return ErrNotFound
	}
	return nil
}

// needsSync is the cheap check before every read: three stats.
func (b *box) needsSync() bool {
	if b.dirtyCur.Load() || b.dirtyNew.Load() || b.dirtyLog.Load() {
		return true
	}
	b.mu.RLock()
	loaded, logStat, seen := b.loaded, b.logStat, b.seen
	b.mu.RUnlock()
	if !loaded {
		return true
	}
	if id, err := statID(b.logPath()); err != nil || id != logStat {
		return true
	}
	cur, new, err := b.dirStats()
	if err != nil {
		return true
	}
	return cur.hash() != seen.cur || new.hash() != seen.new || b.racy(cur, new)
}

func (b *box) dirStats() (cur, new fileID, err error) {
	if cur, err = statID(filepath.Join(b.path, "cur")); err != nil {
		return
	}
	new, err = statID(filepath.Join(b.path, "new"))
	return
}

// racy reports a directory whose stamp cannot be trusted yet: new/ (cheap
// to read) whenever it changed within racyWindow, cur/ only where no
// inotify watch reports this host's changes.
func (b *box) racy(cur, new fileID) bool {
	recent := b.s.opts.Now().Add(-racyWindow).UnixNano()
	if new.mtime > recent {
		return true
	}
	return !b.watched.Load() && cur.mtime > recent
}

// sync brings the index in line with the log and the disk. b.mu is held.
func (b *box) sync(ctx context.Context) error {
	if b.gone {
		return ErrNotFound
	}
	if !b.loaded {
		if err := b.load(ctx, nil); err != nil {
			return err
		}
	} else {
		b.dirtyLog.Store(false)
		if err := b.followLog(); err != nil {
			if !reloadable(err) {
				return err
			}
			if err := b.reload(ctx, nil); err != nil {
				return err
			}
		}
	}
	return b.scanIfChanged(ctx)
}

func reloadable(err error) bool {
	return errors.Is(err, errLogGone) || errors.Is(err, errLogReplaced) || errors.Is(err, errDiverged)
}

// load reads the folder's log on first open, or rebuilds it from
// dovecot-uidlist and the directories when there is none (a folder
// Letterbox never opened, or a log someone deleted).
func (b *box) load(ctx context.Context, lock *dotlock) error {
	if fi, err := os.Stat(b.path); err != nil || !fi.IsDir() {
		b.vanish()
		return ErrNotFound
	}
	if err := b.reload(ctx, lock); err != nil {
		return err
	}
	b.cleanTmp()
	return nil
}

// reload replaces the index with the log's (announcing the difference to
// watchers if it was loaded), rebuilding the log if it is missing or
// unusable.
func (b *box) reload(ctx context.Context, lock *dotlock) error {
	b.materialize() // a reload compares with the index
	if b.loaded && !b.noLogSince.IsZero() && time.Since(b.noLogSince) < logRetry {
		if _, err := os.Stat(b.logPath()); isNotExist(err) {
			return nil // still none: the listing keeps the index right
		}
	}
	head, ok, err := b.readUidlistHead()
	if err != nil {
		return err
	}
	if ok {
		if !b.loaded && !b.loadedOnce {
			// Any error: the ordinary load below finds it again.
			if nb, err := b.readLogLazy(head.uidValidity); err == nil {
				b.take(nb)
				b.lazy = nb.lazy
				return nil
			}
		}
		nb, err := b.readLog(head.uidValidity)
		if err == nil {
			b.adoptIndex(nb)
			return nil
		}
		if !errors.Is(err, errLogGone) && !errors.Is(err, errBadLog) {
			return err
		}
		if errors.Is(err, errBadLog) {
			b.s.log.Warn("store: letterbox-log unusable, rebuilding it", "mailbox", b.name)
		}
	}
	return b.rebuild(ctx, lock)
}

// scanIfChanged reads the directories whose stamps moved.
func (b *box) scanIfChanged(ctx context.Context) error {
	cur, new, err := b.dirStats()
	if err != nil {
		if isNotExist(err) {
			b.vanish()
			return ErrNotFound
		}
		return wrapErr("stat "+b.name, err)
	}
	recent := b.s.opts.Now().Add(-racyWindow).UnixNano()
	full := b.dirtyCur.Swap(false) || cur.hash() != b.seen.cur || (!b.watched.Load() && cur.mtime > recent)
	newer := b.dirtyNew.Swap(false) || new.hash() != b.seen.new || new.mtime > recent
	if !full && !newer {
		return nil
	}
	b.materialize()
	return b.scan(ctx, full)
}

// forceScan reads both directories now, for a file that is not where the
// index says.
func (b *box) forceScan(ctx context.Context) error {
	b.lock()
	defer b.mu.Unlock()
	if err := b.sync(ctx); err != nil {
		return err
	}
	return b.scan(ctx, true)
}

// found is a message file seen in a listing.
type found struct {
	name  string
	inNew bool
}

func (f found) logName() string {
	if f.inNew {
		return "new/" + f.name
	}
	return f.name
}

// readFolder lists new/ (and cur/ if full) by base name. complete is false
// if a directory changed while it was read: a rename may then have hidden
// a file, so what is missing from the listing proves nothing.
func (b *box) readFolder(full bool) (files map[string]found, st stamps, complete bool, err error) {
	cur0, new0, err := b.dirStats()
	if err != nil {
		return nil, st, false, err
	}
	files = make(map[string]found, 16)
	if full {
		// Sized for the folder: its index, or for one never indexed the
		// directory's size (an entry takes some 40 to 100 bytes).
		files = make(map[string]found, max(len(b.msgs), int(cur0.size/64))+16)
	}
	if err := readNames(filepath.Join(b.path, "new"), func(n string) {
		base, _ := splitName(n)
		if _, dup := files[base]; !dup {
			files[base] = found{name: n, inNew: true}
		}
	}); err != nil {
		return nil, st, false, err
	}
	if full {
		if err := readNames(filepath.Join(b.path, "cur"), func(n string) {
			base, _ := splitName(n)
			// A file in both places (a crash between link and
			// unlink) is taken from cur/, where its flags are.
			if f, dup := files[base]; !dup || f.inNew {
				files[base] = found{name: n}
			}
		}); err != nil {
			return nil, st, false, err
		}
	}
	cur1, new1, err := b.dirStats()
	if err != nil {
		return nil, st, false, err
	}
	complete = new1 == new0 && (!full || cur1 == cur0)
	st = stamps{cur: cur0.hash(), new: new0.hash()}
	return files, st, complete, nil
}

// readNames calls fn for each entry of dir that is not hidden.
func readNames(dir string, fn func(string)) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	for {
		names, err := d.Readdirnames(4096)
		for _, n := range names {
			if n != "" && n[0] != '.' {
				fn(n)
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// measured is what was learned of a new file before numbering it.
type measured struct {
	size int64 // CRLF size, -1 unknown
	date int64 // mtime in Unix ns, 0 unknown
}

// measure learns size and date of files about to be numbered: the size
// from the name when it has one, else by reading the file once. It runs
// without the dotlock: reading a big Postfix-fed new/ can take long.
func (b *box) measure(files []found, withDates bool) map[string]measured {
	out := make(map[string]measured, len(files))
	for _, f := range files {
		base, _ := splitName(f.name)
		m := measured{size: -1}
		if n, ok := baseSize(base, 'W'); ok {
			m.size = n
		}
		p := filepath.Join(b.path, subdir(f.inNew), f.name)
		if withDates || m.size < 0 {
			if fi, err := os.Stat(p); err == nil {
				m.date = fi.ModTime().UnixNano()
			}
		}
		if m.size < 0 {
			if n, err := measureFile(p); err == nil {
				m.size = n
			}
		}
		out[base] = m
	}
	return out
}

// subdir is the directory a message file is in.
func subdir(inNew bool) string {
	if inNew {
		return "new"
	}
	return "cur"
}

// measureFile returns the CRLF size of a file: its size plus one for every
// LF without a CR before it.
func measureFile(path string) (int64, error) {
	f, err := openRead(path)
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

var errUIDValidityChanged = fmt.Errorf("store: UIDVALIDITY changed on disk")
