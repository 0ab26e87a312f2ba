package store

import (
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// entry is one message in the index. It is kept small: a 100,000-message
// folder holds 100,000 of them.
type entry struct {
	name   string // current file name, in cur/ or (inNew) new/
	ext    string // dovecot-uidlist extension fields
	size   int64  // CRLF size, -1 unknown
	mtime  int64  // internal date in Unix ns, 0 until known
	saved  int64  // when it came into this folder, Unix ns (RFC 8514), 0 unknown
	modseq uint64 // RFC 7162 MODSEQ of the last change
	uid    uint32
	flags  Flag
	kw     uint32
	inNew  bool
}

func (e *entry) base() string {
	b, _ := splitName(e.name)
	return b
}

// box is the process-wide state of one folder, shared by every Mailbox
// handle open on it. Its index is what the folder's change log says,
// followed from the log file; changes found on disk are written to the log
// before they are applied, so every process sees the same sequence.
type box struct {
	s    *Store
	w    *watcher // the store's inotify watcher, nil without one
	name string   // mailbox name, canonical
	root string   // user's Maildir root
	path string   // folder directory

	refs   int         // guarded by s.mu
	linger *time.Timer // guarded by s.mu: set while no handle is open

	// Set by inotify (or a delivery of this process): something changed
	// in cur/, in new/, or in the log.
	dirtyCur, dirtyNew, dirtyLog atomic.Bool
	// watched: the inotify watches are in place (watch.go).
	watched atomic.Bool

	// own holds paths this process just renamed or removed, so the
	// inotify events they cause do not trigger a sync of a folder the
	// index already matches.
	ownMu sync.Mutex
	own   map[string]struct{}

	mu       sync.RWMutex
	lockTmpl string // the folder's lock template (locktmpl.go), "" until made
	loaded   bool
	gone     bool
	msgs     []entry // ascending UID
	// lazy is set while a big folder's first load has only UIDs and
	// \Seen in (lazy.go); msgs is then nil.
	lazy       *lazyIndex
	loadedOnce bool // a lazy load is only ever the first

	uidValidity   uint32
	nextUID       uint32
	firstRecent   uint32 // messages from this UID on are \Recent
	highestModSeq uint64
	guid          string
	hdrExtra      []string
	keywords      []string
	kwCache       map[uint32][]string

	// Expunged UIDs with their MODSEQ (QRESYNC); those up to horizon are
	// forgotten.
	expunged []expRange
	horizon  uint64

	// The log as followed: which file, how far.
	logID   uint64
	logIno  uint64
	logOff  int64  // end of the last record applied
	logStat fileID // the log file when last read
	logSnap int64  // size of its snapshot record, for compaction
	logBad  bool   // a damaged record ends it: the next writer cuts it off
	// logVerified: the file at logIno was checked to be ours (its header)
	// since it was opened.
	logVerified bool
	// noLogSince is when the log could last not be written (zero when it
	// can): the folder is then followed by listing it, and rebuilding the
	// log is tried again only now and then.
	noLogSince time.Time

	// seen are the stamps of cur/, new/ and the uidlist that the index
	// matches.
	seen stamps

	// The uidlist as read: lines for files not (yet) in the index with a
	// UID above the index's (Dovecot numbered them, we may not see the
	// file yet), and how many lines the file has, for rewriting it once
	// expunged lines pile up.
	orphans      []uidEntry
	uidlistIno   uint64
	uidlistOff   int64
	uidlistLines int
	uidlistHead  string // its first line, to know it again

	watchers  []watcherFunc
	watchAt   map[int]int // watcher id → its index in watchers
	nextWatch int

	// cache is the folder's letterbox-cache; it has its own lock, taken
	// before b.mu when both are needed, never after.
	cache *cache
}

type watcherFunc struct {
	id int
	fn func(Change)
}

// fileID tells whether a file or directory changed since it was last seen.
type fileID struct {
	mtime int64 // ns
	ctime int64 // ns
	size  int64
	ino   uint64
	ok    bool
}

func statID(path string) (fileID, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileID{}, err
	}
	return fileIDOf(fi), nil
}

// Mailbox is one session's handle on a folder. Handles on the same folder
// share one index. Close releases the handle.
type Mailbox struct {
	b      *box
	closed atomic.Bool
}

// Name returns the mailbox name ("INBOX", "Archive/2026").
func (m *Mailbox) Name() string { return m.b.name }

// Close releases the handle. When the last handle on a folder closes, its
// index is dropped from memory.
func (m *Mailbox) Close() error {
	if m.closed.Swap(true) {
		return nil
	}
	m.b.s.release(m.b)
	return nil
}

// Read brings the index up to date with the log and the disk (a few stats
// when nothing changed) and calls fn with a view of it. Changes wait while
// fn runs, so fn must not block: copy what you need and do I/O afterwards.
func (m *Mailbox) Read(ctx context.Context, fn func(v *View)) error { return m.look(ctx, true, fn) }

// Peek is Read for a caller that needs little of the index (the counters,
// the keywords, UIDs): it does not wait for the whole index of a big
// folder loaded lazily (lazy.go); a View method that needs the whole index
// waits for it then.
func (m *Mailbox) Peek(ctx context.Context, fn func(v *View)) error { return m.look(ctx, false, fn) }

// look is Read (whole) and Peek. A lazy index is only ever shown under
// the write lock, where a View method may take the whole one in.
func (m *Mailbox) look(ctx context.Context, whole bool, fn func(v *View)) error {
	b := m.b
	if err := b.refresh(ctx); err != nil {
		return err
	}
	v := View{b: b}
	if whole {
		b.rlock()
		defer b.mu.RUnlock()
	} else if b.mu.RLock(); b.lazy == nil {
		defer b.mu.RUnlock()
	} else {
		b.mu.RUnlock()
		b.mu.Lock()
		defer b.mu.Unlock()
		v.write = true
	}
	if b.gone {
		return ErrNotFound
	}
	fn(&v)
	return nil
}

// Rescan lists the folder's directories whatever their stamps say, and
// logs what differs from the index (for an admin who changed files by
// hand on a file system whose directory times cannot be trusted). Every
// process sharing the folder learns the result from the log.
func (m *Mailbox) Rescan(ctx context.Context) error { return m.b.forceScan(ctx) }

// Status sums up the mailbox.
func (m *Mailbox) Status(ctx context.Context) (Status, error) {
	var st Status
	err := m.Read(ctx, func(v *View) {
		st = v.counts()
		for i := range v.b.msgs {
			e := &v.b.msgs[i]
			st.Size += e.size
			if e.flags&FlagDeleted != 0 {
				st.Deleted++
				st.DeletedSize += e.size
			}
		}
	})
	return st, err
}

// Counts is Status without the sums that need every message's size and
// flags (Size, Deleted and DeletedSize are zero): what STATUS MESSAGES,
// RECENT, UNSEEN, UIDNEXT and HIGHESTMODSEQ answer from. It does not take
// in the whole index of a big folder loaded lazily (lazy.go), so a client
// polling STATUS after a restart costs what SELECT does.
func (m *Mailbox) Counts(ctx context.Context) (Status, error) {
	var st Status
	err := m.Peek(ctx, func(v *View) { st = v.counts() })
	return st, err
}

// ClaimRecent returns the UIDs of the messages no session has seen yet and
// marks them seen, so exactly one session (in any process sharing the
// store) reports each message as recent (RFC 3501 §2.3.2).
//
// A message not in the index yet is not claimed: the caller learns of it
// from the change feed and claims it then.
func (m *Mailbox) ClaimRecent(ctx context.Context) ([]uint32, error) {
	b := m.b
	b.mu.RLock() // lazy-aware: a look before the transaction
	none := b.count() == 0 || b.lastUID() < b.firstRecent
	b.mu.RUnlock()
	if none {
		return nil, nil
	}
	var uids []uint32
	err := b.transact(ctx, nil, func(t *txn) error {
		for i := len(b.msgs) - 1; i >= 0 && b.msgs[i].uid >= b.firstRecent; i-- {
			uids = append(uids, b.msgs[i].uid)
		}
		t.c.firstRecent = b.nextUID
		return nil
	})
	sortUIDs(uids)
	return uids, err
}

// InternalDate returns a message's internal date: its file's mtime, from
// the index when the log has it, else looked up once and remembered.
func (m *Mailbox) InternalDate(uid uint32) (time.Time, error) {
	b := m.b
	b.rlock()
	i := b.find(uid)
	if i < 0 {
		b.mu.RUnlock()
		return time.Time{}, ErrNoSuchMessage
	}
	e := b.msgs[i]
	b.mu.RUnlock()
	if e.mtime != 0 {
		return time.Unix(0, e.mtime), nil
	}
	var t time.Time
	if v, ok := m.Cached(uid, cacheDate); ok {
		if ns, n := binary.Varint(v); n > 0 {
			t = time.Unix(0, ns)
		}
	}
	if t.IsZero() {
		fi, err := b.statMessage(context.Background(), uid)
		if err != nil {
			return time.Time{}, err
		}
		t = fi.ModTime()
		m.Cache(uid, CacheItem{Key: cacheDate, Value: binary.AppendVarint(nil, t.UnixNano())})
	}
	b.lock()
	if i := b.find(uid); i >= 0 {
		b.msgs[i].mtime = t.UnixNano()
	}
	b.mu.Unlock()
	return t, nil
}

// SaveDate returns when a message came into this mailbox (RFC 8514
// SAVEDATE): the time of the commit that added it. ok is false when that
// is not known (messages already there when the log was built).
func (m *Mailbox) SaveDate(uid uint32) (t time.Time, ok bool) {
	b := m.b
	b.rlock()
	defer b.mu.RUnlock()
	if i := b.find(uid); i >= 0 && b.msgs[i].saved != 0 {
		return time.Unix(0, b.msgs[i].saved), true
	}
	return time.Time{}, false
}

// Expunged returns the UIDs expunged from the mailbox with a MODSEQ above
// since, ascending, for QRESYNC's VANISHED (EARLIER). complete is false
// when the log no longer remembers every expunge after since (they are
// kept for Options.ExpungeRetention): the caller must then treat every UID
// it asks about that is not in the mailbox as expunged (RFC 7162 §3.2.5.2
// lets a server report UIDs the client already knows are gone).
func (m *Mailbox) Expunged(ctx context.Context, since uint64) (uids []uint32, complete bool, err error) {
	err = m.Read(ctx, func(v *View) {
		b := v.b
		complete = since >= b.horizon
		for _, r := range b.expunged {
			if r.modseq > since {
				for u := r.first; ; u++ {
					uids = append(uids, u)
					if u == r.last {
						break
					}
				}
			}
		}
	})
	sortUIDs(uids)
	return uids, complete, err
}

func sortUIDs(u []uint32) { sort.Slice(u, func(i, j int) bool { return u[i] < u[j] }) }

func (b *box) definedKeywords() []string {
	var out []string
	for _, k := range b.keywords {
		if k != "" {
			out = append(out, k)
		}
	}
	return out
}

// find returns the index of uid in b.msgs, or -1. b.mu must be held.
func (b *box) find(uid uint32) int {
	i := sort.Search(len(b.msgs), func(i int) bool { return b.msgs[i].uid >= uid })
	if i < len(b.msgs) && b.msgs[i].uid == uid {
		return i
	}
	return -1
}

// lastUID is the highest UID in the index, 0 if empty.
func (b *box) lastUID() uint32 {
	if b.lazy != nil {
		return b.lazy.last()
	}
	if len(b.msgs) == 0 {
		return 0
	}
	return b.msgs[len(b.msgs)-1].uid
}

// keywordNames returns the (shared) list of names of a keyword bit set.
// b.mu must be held for writing if the set may be new.
func (b *box) keywordNames(kw uint32) []string {
	if kw == 0 {
		return nil
	}
	if names, ok := b.kwCache[kw]; ok {
		return names
	}
	var names []string
	for i := 0; i < maxKeywords; i++ {
		if kw&(1<<i) != 0 && i < len(b.keywords) && b.keywords[i] != "" {
			names = append(names, b.keywords[i])
		}
	}
	b.kwCache[kw] = names
	return names
}

// rebuildKeywordCache refills the cache of keyword name lists after the
// keyword table changed. View.At reads the cache under the read lock, so
// every set in use must be in it.
func (b *box) rebuildKeywordCache() {
	b.kwCache = make(map[uint32][]string)
	for i := range b.msgs {
		b.keywordNames(b.msgs[i].kw)
	}
}

// expect records paths about to be changed by us.
func (b *box) expect(paths ...string) {
	b.ownMu.Lock()
	defer b.ownMu.Unlock()
	if b.own == nil || len(b.own) > 100000 {
		// Events that never came (an overflow): start over.
		b.own = make(map[string]struct{})
	}
	for _, p := range paths {
		b.own[p] = struct{}{}
	}
}

// expected reports, once, whether an event's path was our own change.
func (b *box) expected(path string) bool {
	b.ownMu.Lock()
	defer b.ownMu.Unlock()
	if _, ok := b.own[path]; ok {
		delete(b.own, path)
		return true
	}
	return false
}

func (b *box) filePath(e *entry) string {
	if e.inNew {
		return filepath.Join(b.path, "new", e.name)
	}
	return filepath.Join(b.path, "cur", e.name)
}

// statMessage stats a message's file; if it is not where the index says
// (another process renamed it), it syncs once and tries again.
func (b *box) statMessage(ctx context.Context, uid uint32) (os.FileInfo, error) {
	for attempt := 0; ; attempt++ {
		b.rlock()
		i := b.find(uid)
		var p string
		if i >= 0 {
			p = b.filePath(&b.msgs[i])
		}
		b.mu.RUnlock()
		if i < 0 {
			return nil, ErrNoSuchMessage
		}
		fi, err := os.Stat(p)
		if err == nil {
			return fi, nil
		}
		if !os.IsNotExist(err) || attempt > 0 {
			return nil, wrapErr("stat message", err)
		}
		if err := b.forceScan(ctx); err != nil {
			return nil, err
		}
	}
}
