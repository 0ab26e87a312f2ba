package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// Syncing brings the index in line with the folder on disk, like Dovecot's
// maildir sync: a readdir of new/ and cur/ finds files that appeared
// (numbered under the dotlock, in arrival order), files whose flags changed
// (renamed) and files that are gone (expunged). Nothing but the uidlist and
// the two directories is read: sizes come from the names or the uidlist,
// and only a file that has neither is opened, once, to be measured.

// refresh syncs if the disk may have changed since the last sync.
func (b *box) refresh(ctx context.Context) error {
	if b.dirty.Load() || b.dirStale() {
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

// dirStale compares the mtimes of cur/ and new/ with those of the last sync.
// Without inotify, a directory changed in the same second as the last sync
// could change again unseen on a file system with coarse mtimes, so it is
// checked again.
func (b *box) dirStale() bool {
	b.mu.RLock()
	cur, nw, loaded := b.curID, b.newID, b.loaded
	b.mu.RUnlock()
	if !loaded {
		return true
	}
	c, err1 := statID(filepath.Join(b.path, "cur"))
	n, err2 := statID(filepath.Join(b.path, "new"))
	if err1 != nil || err2 != nil {
		return true
	}
	if c != cur || n != nw {
		return true
	}
	if !b.s.watching() {
		recent := time.Now().Add(-time.Second).UnixNano()
		return c.mtime > recent || n.mtime > recent
	}
	return false
}

// found is a message file seen by readdir.
type found struct {
	name  string
	inNew bool
}

// readFolder lists new/ and cur/ by base name. If a directory changed while
// it was being read, a rename may have hidden a file from readdir, so it is
// read again.
func (b *box) readFolder() (map[string]found, fileID, fileID, error) {
	for attempt := 0; ; attempt++ {
		curID, err := statID(filepath.Join(b.path, "cur"))
		if err != nil {
			return nil, fileID{}, fileID{}, err
		}
		newID, err := statID(filepath.Join(b.path, "new"))
		if err != nil {
			return nil, fileID{}, fileID{}, err
		}
		files := make(map[string]found, len(b.msgs)+16)
		if err := readNames(filepath.Join(b.path, "new"), func(n string) {
			base, _ := splitName(n)
			if _, dup := files[base]; !dup {
				files[base] = found{name: n, inNew: true}
			}
		}); err != nil {
			return nil, fileID{}, fileID{}, err
		}
		if err := readNames(filepath.Join(b.path, "cur"), func(n string) {
			base, _ := splitName(n)
			// A file in both places (a crash between link and
			// unlink) is taken from cur/, where its flags are.
			if f, dup := files[base]; !dup || f.inNew {
				files[base] = found{name: n}
			}
		}); err != nil {
			return nil, fileID{}, fileID{}, err
		}
		c2, err1 := statID(filepath.Join(b.path, "cur"))
		n2, err2 := statID(filepath.Join(b.path, "new"))
		if (err1 == nil && err2 == nil && c2 == curID && n2 == newID) || attempt >= 2 {
			return files, curID, newID, nil
		}
	}
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

// sync brings the index in line with the disk. b.mu is held for writing.
func (b *box) sync(ctx context.Context) error {
	return b.syncHeld(ctx, nil)
}

// syncHeld syncs with the dotlock already held (lock != nil) or taken only
// if numbering is needed (lock == nil).
func (b *box) syncHeld(ctx context.Context, lock *dotlock) error {
	err := b.syncOnce(ctx, lock)
	if errors.Is(err, errRestart) {
		err = b.syncOnce(ctx, lock)
	}
	return err
}

// errRestart says the index was dropped (UIDVALIDITY changed) and the sync
// must start over from an empty index.
var errRestart = errors.New("store: restart sync")

func (b *box) syncOnce(ctx context.Context, lock *dotlock) error {
	b.dirty.Store(false)
	if b.gone {
		return ErrNotFound
	}
	if !b.loaded {
		if err := b.readMeta(); err != nil {
			return err
		}
	}
	files, curID, newID, err := b.readFolder()
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			b.vanish()
			return ErrNotFound
		}
		return fmt.Errorf("store: read %s: %w", b.name, err)
	}

	needLock := false
	if !b.loaded {
		// First load: the uidlist numbers what it lists, without a
		// lock; only files it does not list need one.
		ul, err := b.readUidlist()
		if err != nil {
			return err
		}
		if ul == nil {
			needLock = true
		} else {
			b.adoptHeader(ul)
			b.msgs = append(b.msgs, b.adopt(ul, files, false)...)
		}
	}

	// Known messages: still there, renamed (flags), or gone.
	var expunged []int
	var changed []uint32
	for i := range b.msgs {
		e := &b.msgs[i]
		base := e.base()
		f, ok := files[base]
		if !ok {
			if b.loaded {
				expunged = append(expunged, i)
			}
			continue
		}
		delete(files, base)
		if f.name != e.name || f.inNew != e.inNew {
			_, info := splitName(f.name)
			fl, kw := parseInfo(info)
			e.inNew = f.inNew
			e.name = f.name
			if fl != e.flags || kw != e.kw {
				e.flags, e.kw = fl, kw
				b.keywordNames(kw)
				changed = append(changed, e.uid)
			}
		}
	}
	// Expunges first, highest sequence number first, so each number is
	// right at the moment it is announced.
	for j := len(expunged) - 1; j >= 0; j-- {
		i := expunged[j]
		b.emit(Change{Kind: Expunged, UID: b.msgs[i].uid, Seq: i + 1})
	}
	if len(expunged) > 0 {
		b.msgs = removeIndexes(b.msgs, expunged)
	}
	for _, uid := range changed {
		i := b.find(uid)
		e := &b.msgs[i]
		b.emit(Change{Kind: FlagsChanged, UID: uid, Seq: i + 1, Flags: e.flags, Keywords: b.keywordNames(e.kw)})
	}

	if len(files) > 0 || b.measureMissing() {
		needLock = true
	}
	for i := range b.msgs {
		if b.msgs[i].inNew {
			needLock = true
			break
		}
	}
	if needLock {
		if err := b.assign(ctx, files, lock); err != nil {
			return err
		}
		// Our own renames from new/ changed the directories.
		curID, _ = statID(filepath.Join(b.path, "cur"))
		newID, _ = statID(filepath.Join(b.path, "new"))
	}
	b.curID, b.newID = curID, newID
	if !b.loaded {
		b.loaded = true
		b.cleanTmp()
	}
	return nil
}

// measureMissing measures the messages whose size neither their name nor
// the uidlist gives, and reports whether it did (the uidlist then needs
// rewriting to remember it). Messages that cannot be read are left at -1
// and measured again next time.
func (b *box) measureMissing() bool {
	did := false
	for i := range b.msgs {
		if b.msgs[i].size < 0 && b.measureEntry(&b.msgs[i]) {
			did = true
		}
	}
	return did
}

// measureEntry reads a message file once to learn its CRLF size, and keeps
// it in the uidlist's W field, as Dovecot does when it picks up such a file
// (the fixture's after-pickup line is "19 W727 :<name>").
func (b *box) measureEntry(e *entry) bool {
	crlf, err := measure(b.filePath(e))
	if err != nil {
		return false
	}
	e.size = crlf
	e.ext = setExtField(e.ext, 'W', strconv.FormatInt(crlf, 10))
	return true
}

// removeIndexes removes the entries at the given ascending indexes.
func removeIndexes(msgs []entry, idx []int) []entry {
	out := msgs[:idx[0]]
	k := 0
	for i := idx[0]; i < len(msgs); i++ {
		if k < len(idx) && idx[k] == i {
			k++
			continue
		}
		out = append(out, msgs[i])
	}
	clear(msgs[len(out):])
	return out
}

// readMeta reads the uidlist and keywords on first load, without a lock:
// Dovecot's readers take none, since writers replace files by rename.
func (b *box) readMeta() error {
	if fi, err := os.Stat(b.path); err != nil || !fi.IsDir() {
		b.vanish()
		return ErrNotFound
	}
	if err := b.loadKeywords(); err != nil {
		return err
	}
	b.msgs = b.msgs[:0]
	return nil
}

func (b *box) loadKeywords() error {
	data, err := readFileIfExists(filepath.Join(b.path, keywordsName))
	if err != nil {
		return fmt.Errorf("store: read keywords of %s: %w", b.name, err)
	}
	b.keywords = parseKeywords(data)
	b.kwCache = make(map[uint32][]string)
	return nil
}
