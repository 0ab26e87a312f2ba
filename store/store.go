// Package store keeps users' mail in Maildir++ folders, in the on-disk format
// Dovecot and Courier use, so that an existing Dovecot Maildir keeps every UID,
// UIDVALIDITY, keyword and subscription when Letterbox takes it over, and
// Dovecot can still read everything Letterbox writes.
//
// # Processes and hosts
//
// Any number of Letterbox processes, on any number of hosts sharing the
// file system, can serve the same Maildirs at once, next to Dovecot, an MDA
// or a person with mv. They agree because every change goes the same way:
// under the folder's dotlock (dovecot-uidlist.lock, Dovecot's own), a
// process first reads what others appended to the folder's change log,
// then changes the files, then appends one commit record with a new
// MODSEQ to the log. Every process applies the same records in the same
// order to its in-memory index, so sequence numbers, flags, MODSEQs and the
// change feed (what IDLE sessions are told) are the same everywhere.
// Changes made outside the log (new files in new/, another program's
// renames) are found by a listing of the folder when its directory stamps
// differ from the ones the log last recorded, and are logged like any
// other change, so the other processes learn them from the log too.
// Processes notice the log growing by inotify on this host and by a stat
// every Options.PollInterval for folders someone waits on (other hosts).
//
// # Files of ours, beside Dovecot's
//
//   - letterbox-log (logformat.go): a snapshot of the folder's index, then
//     commit records. Compacted into a new snapshot when the records
//     outweigh it (so at most about twice a snapshot, 48 bytes a message).
//     Rebuildable: deleted or damaged, it is rebuilt from dovecot-uidlist
//     and a listing; every message then gets one new MODSEQ, above all
//     earlier ones (clients resync flags; UIDs and UIDVALIDITY are kept,
//     nothing is downloaded again), and expunges from before are
//     forgotten (QRESYNC reports every missing UID the client names).
//   - letterbox-cache (cache.go): per message, the internal date and what
//     protocol packages ask to keep (parsed structure, header fields, SORT
//     keys). Shared by processes, compacted, deletable at any time.
//   - letterbox-special-use and letterbox-pop3.lock at the Maildir root.
//
// MODSEQs are 63-bit, allocated as max(last + 1, now in microseconds): the
// time floor keeps HIGHESTMODSEQ from going back when a log's tail is lost
// in a crash or the log is rebuilt. Expunged UIDs are kept with their
// MODSEQ for Options.ExpungeRetention (30 days) and at most 100,000 runs.
//
// # Durability
//
// A message is acknowledged only once its file, its directory entry and
// its dovecot-uidlist line are fsynced: a UID given to a client survives a
// crash of the machine. The log and the cache are not fsynced: what a lost
// tail of the log described is found again on disk (the stamps before it
// are still in the log), and MODSEQs stay above what was handed out
// before. Flag changes are renames, not fsynced (as Dovecot does).
//
// # Locks
//
// Dotlocks are made as Dovecot makes them (a filled file hard-linked to the
// lock's name, "<pid>:<host>" inside); one whose holder is a dead process
// of this host is broken at once, one held elsewhere after 120 s
// untouched. A folder's lock is linked from a template the process keeps
// in the folder's tmp/ (locktmpl.go), so a change creates no file. Nothing
// slow happens under the lock: files are measured and read before it is
// taken.
//
// The store knows nothing of IMAP or POP3. Flags are Maildir info letters,
// keywords are plain names, and mailbox names are UTF-8 with "/" between
// hierarchy levels.
package store

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Errors returned by the store. Callers match them with errors.Is.
var (
	ErrNotFound        = errors.New("store: no such mailbox")
	ErrExists          = errors.New("store: mailbox already exists")
	ErrInvalidName     = errors.New("store: invalid mailbox name")
	ErrInvalidUser     = errors.New("store: invalid user name")
	ErrNoSuchMessage   = errors.New("store: no such message")
	ErrInboxOperation  = errors.New("store: operation not allowed on INBOX")
	ErrTooManyKeywords = errors.New("store: too many keywords in this mailbox")
	ErrLocked          = errors.New("store: locked by another session")
	ErrTooBig          = errors.New("store: message too big")
	ErrHasChildren     = errors.New("store: mailbox has children")
	ErrClosed          = errors.New("store: closed")
	// ErrNoSpace is a write that failed because the file system is full
	// (ENOSPC) or the user's disk quota is used up (EDQUOT). Nothing was
	// stored; trying again later may work. IMAP answers NO [OVERQUOTA],
	// POP3 -ERR [SYS/TEMP], LMTP 452 and deliver exits 75.
	ErrNoSpace = errors.New("store: no space left (disk full or quota exceeded)")
)

// noSpace marks an error caused by ENOSPC or EDQUOT as ErrNoSpace while
// keeping the original in the chain (errors.Is(err, syscall.ENOSPC) still
// holds). Other errors pass through unchanged.
func noSpace(err error) error {
	if err == nil || errors.Is(err, ErrNoSpace) {
		return err
	}
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return noSpaceError{err}
	}
	return err
}

type noSpaceError struct{ err error }

func (e noSpaceError) Error() string        { return e.err.Error() }
func (e noSpaceError) Unwrap() error        { return e.err }
func (e noSpaceError) Is(target error) bool { return target == ErrNoSpace }

// Options configure a Store. The zero value of every field but PathTemplate is
// a sane default.
type Options struct {
	// PathTemplate gives each user's Maildir root. "{user}" is the whole
	// login name, "{localpart}" the part before "@", "{domain}" the part
	// after it (empty for a name without "@").
	// Example: "/var/mail/{domain}/{localpart}/Maildir".
	PathTemplate string

	// Logger receives store errors that have no caller to return to (a
	// failed background sync). Default: slog.Default().
	Logger *slog.Logger

	// Hostname goes into the names of new message files.
	// Default: os.Hostname().
	Hostname string

	// DefaultFolders are created, and subscribed, for a user whose Maildir
	// does not exist yet. Nil means DefaultSpecialFolders.
	DefaultFolders []Folder

	// LazyLoadMin is the number of messages from which a folder's first
	// load takes only what SELECT needs and decodes the rest of its
	// index when an operation first needs it (lazy.go). Zero means
	// 16,384; negative, never.
	LazyLoadMin int

	// NoWatch turns inotify off; changes by other processes are then found
	// only by the directory-mtime check before each read.
	NoWatch bool

	// DirMode and FileMode are used for what the store creates.
	// Defaults 0700 and 0600, as Dovecot does.
	DirMode  os.FileMode
	FileMode os.FileMode

	// Linger keeps a folder's index in memory this long after its last
	// handle closed, so that the next open is free and \Recent (kept only
	// in memory, as Dovecot keeps it only in its index) survives a STATUS
	// or a short disconnect. Default 2 minutes; negative means none.
	Linger time.Duration

	// LockTimeout bounds the wait for another process's dovecot-uidlist
	// lock. Default 30s. A lock whose holder is a dead process of this
	// host is broken at once; one held elsewhere is stale after 120s.
	LockTimeout time.Duration

	// PollInterval is how often a folder that someone is waiting on (a
	// session in IDLE, a Watch) is checked for changes that no inotify
	// event reports: those made through another host's mount of a
	// shared file system. Each check is three stats. Default 1s;
	// negative turns polling off.
	PollInterval time.Duration

	// ExpungeRetention is how long the change log remembers expunged
	// UIDs for QRESYNC (RFC 7162 VANISHED (EARLIER)); at most 100,000
	// runs of them are kept. Past it, a client resyncing from an older
	// state is told every UID it knows of that is gone. Default 30 days.
	ExpungeRetention time.Duration

	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Folder is a mailbox created for every new user.
type Folder struct {
	Name       string
	SpecialUse SpecialUse
}

// SpecialUse is an RFC 6154 attribute without its backslash: "Sent",
// "Drafts", "Trash", "Junk", "Archive", "All", "Flagged", or "" for none.
type SpecialUse string

// The special-use attributes the store knows.
const (
	UseNone    SpecialUse = ""
	UseAll     SpecialUse = "All"
	UseArchive SpecialUse = "Archive"
	UseDrafts  SpecialUse = "Drafts"
	UseFlagged SpecialUse = "Flagged"
	UseJunk    SpecialUse = "Junk"
	UseSent    SpecialUse = "Sent"
	UseTrash   SpecialUse = "Trash"
)

// DefaultSpecialFolders are the folders every new user gets.
var DefaultSpecialFolders = []Folder{
	{Name: "Drafts", SpecialUse: UseDrafts},
	{Name: "Sent", SpecialUse: UseSent},
	{Name: "Trash", SpecialUse: UseTrash},
	{Name: "Junk", SpecialUse: UseJunk},
	{Name: "Archive", SpecialUse: UseArchive},
}

// Store opens users' Maildirs. It is safe for concurrent use.
type Store struct {
	opts    Options
	log     *slog.Logger
	watcher *watcher
	poller  *poller
	folders *folderWatches // IMAP NOTIFY's folder feeds
	ids     *nameSource

	// crlfPool recycles body converters and their buffers: a FETCH of
	// many bodies opens many messages, and fresh 32 KiB buffers each time
	// cost more than the reading.
	crlfPool sync.Pool

	// bg counts background syncs in flight; Close waits for them.
	bg sync.WaitGroup

	// hooks let tests of this package step in between the steps of an
	// operation, to make races happen on purpose.
	hooks struct {
		beforeStage func()
		// beforeFlags runs in SetFlags's transaction, before any rename.
		beforeFlags func()
		// logWrite, if set, is the result of the next log append
		// (nil: write it).
		logWrite func() error
		// watchAdd runs just before a newly opened folder's watches
		// are added.
		watchAdd func(*box)
		// lazyDecode, if set, runs before the whole index of a lazy
		// load is decoded; an error makes the decoding fail.
		lazyDecode func() error
	}

	mu     sync.Mutex
	boxes  map[string]*box // by absolute Maildir folder path
	closed bool
}

func (s *Store) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Open returns a Store for the given options. It touches no files.
func Open(opts Options) (*Store, error) {
	if opts.PathTemplate == "" {
		return nil, errors.New("store: empty path template")
	}
	if !strings.Contains(opts.PathTemplate, "{user}") && !strings.Contains(opts.PathTemplate, "{localpart}") {
		return nil, fmt.Errorf("store: path template %q names no user ({user} or {localpart})", opts.PathTemplate)
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Hostname == "" {
		opts.Hostname = thisHost()
	}
	if opts.DefaultFolders == nil {
		opts.DefaultFolders = DefaultSpecialFolders
	}
	if opts.DirMode == 0 {
		opts.DirMode = 0o700
	}
	if opts.FileMode == 0 {
		opts.FileMode = 0o600
	}
	if opts.Linger == 0 {
		opts.Linger = 2 * time.Minute
	}
	if opts.LockTimeout == 0 {
		opts.LockTimeout = 30 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.PollInterval == 0 {
		opts.PollInterval = time.Second
	}
	if opts.LazyLoadMin == 0 {
		opts.LazyLoadMin = defaultLazyLoadMin
	}
	if opts.ExpungeRetention == 0 {
		opts.ExpungeRetention = 30 * 24 * time.Hour
	}
	s := &Store{
		opts:  opts,
		log:   opts.Logger,
		ids:   newNameSource(opts.Hostname, opts.Now),
		boxes: make(map[string]*box),
	}
	s.crlfPool.New = func() any { return newCRLFReader(nil) }
	s.poller = newPoller(s, opts.PollInterval)
	s.folders = &folderWatches{s: s, interval: opts.PollInterval}
	if !opts.NoWatch {
		w, err := newWatcher(s)
		if err != nil {
			// inotify can run out of instances; the mtime check still works.
			s.log.Warn("store: inotify unavailable, relying on directory mtime checks", "err", err)
		} else {
			s.watcher = w
		}
	}
	return s, nil
}

// Close stops watching the file system. Open mailboxes stay readable, but
// changes by other processes are only seen by the mtime check.
func (s *Store) Close() error {
	s.mu.Lock()
	s.closed = true
	w := s.watcher
	s.watcher = nil
	boxes := make([]*box, 0, len(s.boxes))
	for _, b := range s.boxes {
		boxes = append(boxes, b)
	}
	s.mu.Unlock()
	s.poller.close()
	s.folders.close()
	for _, b := range boxes {
		b.cache.close()
		b.mu.Lock()
		b.dropLockTemplate()
		b.mu.Unlock()
	}
	var err error
	if w != nil {
		err = w.close()
	}
	s.bg.Wait()
	return err
}

// UserRoot returns the Maildir root of a user from the path template,
// without touching the disk.
func (s *Store) UserRoot(name string) (string, error) {
	if err := ValidUsername(name); err != nil {
		return "", err
	}
	local, domain, _ := strings.Cut(name, "@")
	r := strings.NewReplacer("{user}", name, "{localpart}", local, "{domain}", domain)
	return filepath.Clean(r.Replace(s.opts.PathTemplate)), nil
}

// ValidUsername reports whether name can be a user of the store: it must be
// usable as a path element, so it may not be empty, start with ".", hold "/",
// "\\", NUL, control characters or whitespace, or be longer than 255 bytes.
func ValidUsername(name string) error {
	if name == "" || len(name) > 255 || name[0] == '.' || name[0] == '@' {
		return fmt.Errorf("%w: %q", ErrInvalidUser, name)
	}
	if strings.Count(name, "@") > 1 || strings.HasSuffix(name, "@") {
		return fmt.Errorf("%w: %q", ErrInvalidUser, name)
	}
	for _, r := range name {
		if r <= ' ' || r == 0x7f || r == '/' || r == '\\' || r == ':' {
			return fmt.Errorf("%w: %q", ErrInvalidUser, name)
		}
	}
	if strings.Contains(name, "..") || strings.Contains(name, "@.") {
		return fmt.Errorf("%w: %q", ErrInvalidUser, name)
	}
	return nil
}

// User returns the mail of one user, creating the Maildir with the default
// folders if it does not exist yet.
func (s *Store) User(name string) (*User, error) {
	root, err := s.UserRoot(name)
	if err != nil {
		return nil, err
	}
	u := &User{store: s, name: name, root: root}
	if err := u.ensure(); err != nil {
		return nil, err
	}
	return u, nil
}
