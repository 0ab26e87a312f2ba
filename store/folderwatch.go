package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The folder feed: a user's folders being created, deleted and renamed,
// and subscriptions changing, as IMAP NOTIFY (RFC 5465) reports them.
//
// Maildir++ keeps all of a user's folders as directories in the Maildir
// root and the subscriptions in a file there, so the root directory's
// change time moves with every one of these changes, whoever makes them:
// this process, another Letterbox process, Dovecot, or another host on a
// shared file system. A watch therefore keeps the last state it reported
// (each folder's directory identity, and the subscribed names) and, when
// asked, compares it with the state on disk. A folder whose directory
// kept its identity under a new name was renamed; one whose identity is
// gone was deleted. Changes made through this Store wake the watchers at
// once; a poller looks at the root's stamp every Options.PollInterval for
// everyone else's.

// FolderEventKind tells what a FolderEvent is.
type FolderEventKind int

// The kinds of folder event.
const (
	FolderCreated FolderEventKind = iota + 1
	FolderDeleted
	FolderRenamed // OldName → Name
	FolderSubscribed
	FolderUnsubscribed
)

// FolderEvent is one change in a user's folder list or subscriptions.
type FolderEvent struct {
	Kind    FolderEventKind
	Name    string
	OldName string // FolderRenamed
}

// FolderWatch follows one user's folder list and subscriptions.
type FolderWatch struct {
	u    *User
	wake func()

	mu    sync.Mutex
	last  folderState
	stamp rootStamp // the root as the poller last saw it
}

type folderState struct {
	ids  map[string]dirID // folder (not INBOX) → its directory
	subs map[string]bool
}

// dirID tells directories apart: a folder deleted and made again often
// gets the freed inode number back, but not its birth time. (Without
// birth times, on file systems that keep none, such a folder deleted and
// made again between two looks is not reported.)
type dirID struct {
	dev, ino uint64
	born     int64 // ns since the epoch; 0: unknown
}

// rootStamp is what the poller compares: the root directory's and the
// subscriptions file's change times.
type rootStamp struct {
	root, subs time.Time
	subsSize   int64
}

// WatchFolders starts following the user's folders and subscriptions
// from their state now. wake is called, from another goroutine and
// without any lock held, when they may have changed; it must not block.
// Changes then says what changed.
func (u *User) WatchFolders(wake func()) (*FolderWatch, error) {
	st, err := u.folderState()
	if err != nil {
		return nil, err
	}
	w := &FolderWatch{u: u, wake: wake, last: st, stamp: u.rootStamp()}
	u.store.folders.add(w)
	return w, nil
}

// Close stops the watch.
func (w *FolderWatch) Close() { w.u.store.folders.remove(w) }

// Changes returns what changed since the last call (or WatchFolders):
// renames first, then deletions, creations, and subscription changes,
// each kind in name order. A folder created and deleted between two
// looks is not reported; nothing else is lost.
func (w *FolderWatch) Changes() ([]FolderEvent, error) {
	st, err := w.u.folderState()
	if err != nil {
		return nil, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	ev := diffFolders(w.last, st)
	w.last = st
	return ev, nil
}

// diffFolders says how a became b.
func diffFolders(a, b folderState) []FolderEvent {
	byID := make(map[dirID]string) // b's folders that are new under their name
	for name, id := range b.ids {
		if old, ok := a.ids[name]; !ok || old != id {
			byID[id] = name
		}
	}
	var renamed, deleted, created, subscribed, unsubscribed []FolderEvent
	movedFrom := make(map[string]string) // new name → old name
	for name, id := range a.ids {
		if now, ok := b.ids[name]; ok && now == id {
			continue
		}
		if to, ok := byID[id]; ok {
			// Renamed; a folder under the old name now is a new one.
			renamed = append(renamed, FolderEvent{Kind: FolderRenamed, Name: to, OldName: name})
			movedFrom[to] = name
			delete(byID, id)
			continue
		}
		deleted = append(deleted, FolderEvent{Kind: FolderDeleted, Name: name})
	}
	for name, id := range b.ids {
		_, moved := movedFrom[name]
		if old, ok := a.ids[name]; (!ok || old != id) && !moved {
			created = append(created, FolderEvent{Kind: FolderCreated, Name: name})
		}
	}
	// A subscription that moved with its folder is no change of its own.
	carried := make(map[string]bool)
	for to, from := range movedFrom {
		if a.subs[from] && b.subs[to] {
			carried[from], carried[to] = true, true
		}
	}
	for name := range b.subs {
		if !a.subs[name] && !carried[name] {
			subscribed = append(subscribed, FolderEvent{Kind: FolderSubscribed, Name: name})
		}
	}
	for name := range a.subs {
		if !b.subs[name] && !carried[name] {
			unsubscribed = append(unsubscribed, FolderEvent{Kind: FolderUnsubscribed, Name: name})
		}
	}
	byName := func(e []FolderEvent) []FolderEvent {
		sort.Slice(e, func(i, j int) bool { return e[i].Name < e[j].Name })
		return e
	}
	var out []FolderEvent
	for _, part := range [][]FolderEvent{renamed, deleted, created, subscribed, unsubscribed} {
		out = append(out, byName(part)...)
	}
	return out
}

// folderState reads the folders' identities and the subscriptions.
func (u *User) folderState() (folderState, error) {
	entries, err := os.ReadDir(u.root)
	if err != nil {
		return folderState{}, fmt.Errorf("store: folders: %w", err)
	}
	st := folderState{ids: make(map[string]dirID), subs: make(map[string]bool)}
	for _, de := range entries {
		name, ok := dirName(de.Name())
		if !ok || name == Inbox {
			continue
		}
		var sx unix.Statx_t
		err := unix.Statx(unix.AT_FDCWD, filepath.Join(u.root, de.Name()), 0, unix.STATX_TYPE|unix.STATX_INO|unix.STATX_BTIME, &sx)
		if errors.Is(err, fs.ErrNotExist) {
			continue // deleted meanwhile
		}
		if err != nil {
			return folderState{}, fmt.Errorf("store: folders: %w", err)
		}
		if sx.Mode&unix.S_IFMT != unix.S_IFDIR {
			continue
		}
		id := dirID{dev: unix.Mkdev(sx.Dev_major, sx.Dev_minor), ino: sx.Ino}
		if sx.Mask&unix.STATX_BTIME != 0 {
			id.born = sx.Btime.Sec*1e9 + int64(sx.Btime.Nsec)
		}
		st.ids[name] = id
	}
	subs, err := u.Subscriptions()
	if err != nil {
		return folderState{}, err
	}
	for _, s := range subs {
		st.subs[s] = true
	}
	return st, nil
}

func (u *User) rootStamp() rootStamp {
	var st rootStamp
	if fi, err := os.Stat(u.root); err == nil {
		st.root = changeTime(fi)
	}
	if fi, err := os.Stat(filepath.Join(u.root, subscriptionsName)); err == nil {
		st.subs, st.subsSize = changeTime(fi), fi.Size()
	}
	return st
}

// changeTime is a file's ctime, which every rename, creation and removal
// in a directory moves, whoever does it.
func changeTime(fi fs.FileInfo) time.Time {
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		return time.Unix(sys.Ctim.Sec, sys.Ctim.Nsec)
	}
	return fi.ModTime()
}

// foldersChanged wakes the folder watches of this user: a change was
// tried through this Store (a failed one costs a watcher one look).
func (u *User) foldersChanged() { u.store.folders.changed(u.root) }

// folderWatches is the store's set of folder watches and their poller.
type folderWatches struct {
	s        *Store
	interval time.Duration

	mu      sync.Mutex
	watches map[*FolderWatch]struct{}
	stop    chan struct{}
	done    chan struct{}
}

func (f *folderWatches) add(w *FolderWatch) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.watches == nil {
		f.watches = make(map[*FolderWatch]struct{})
	}
	f.watches[w] = struct{}{}
	if f.stop == nil && f.interval > 0 {
		f.stop, f.done = make(chan struct{}), make(chan struct{})
		go f.run(f.stop, f.done)
	}
}

func (f *folderWatches) remove(w *FolderWatch) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.watches, w)
}

// changed wakes the watches of the user at root: this Store changed its
// folders or subscriptions.
func (f *folderWatches) changed(root string) {
	for _, w := range f.list() {
		if w.u.root == root {
			w.wake()
		}
	}
}

func (f *folderWatches) list() []*FolderWatch {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]*FolderWatch, 0, len(f.watches))
	for w := range f.watches {
		out = append(out, w)
	}
	return out
}

func (f *folderWatches) close() {
	f.mu.Lock()
	stop, done := f.stop, f.done
	f.stop = nil
	f.mu.Unlock()
	if stop != nil {
		close(stop)
		<-done
	}
}

// run wakes a watch whose root changed since the last look, and, on a
// file system whose timestamps are coarse, keeps waking it while the
// change is recent: a second change within the same tick of the clock
// leaves the stamp as it was.
func (f *folderWatches) run(stop, done chan struct{}) {
	defer close(done)
	t := time.NewTicker(f.interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		now := time.Now()
		for _, w := range f.list() {
			st := w.u.rootStamp()
			w.mu.Lock()
			changed := st != w.stamp
			w.stamp = st
			w.mu.Unlock()
			if changed || now.Sub(st.root) < 2*time.Second || now.Sub(st.subs) < 2*time.Second {
				w.wake()
			}
		}
	}
}
