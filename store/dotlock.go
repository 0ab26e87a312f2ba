package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Dovecot serializes the writers of a Maildir folder with a dotlock:
// dovecot-uidlist.lock, created exclusively and holding "<pid>:<host>".
// Readers take no lock. We take the same lock, written the same way, so
// Dovecot and any number of Letterbox processes (on any host sharing the
// file system) can work on the same files.
//
// A lock whose holder died must not stop the folder for long. As Dovecot
// does, a lock is stale when its holder is a process on this host that no
// longer exists, or, for holders elsewhere, when the file has not changed
// for dotlockStale. Breaking a stale lock happens under a second, short
// lock ("<lock>.break") and re-checks, under it, that the file about to go
// is the very file judged stale (same inode, same content), so two waiters
// that both saw the same stale lock cannot both end up holding the lock.
// A holder releases only the file it created (same inode): if its lock was
// broken meanwhile, it does not remove the new holder's.

const (
	dotlockStale = 120 * time.Second
	// breakStale bounds how long a crashed breaker can stall others: the
	// break lock is held for a stat, a read and a rename.
	breakStale = 5 * time.Second
)

// dotlock is a lock we hold. A file is ours if it is the inode we created
// with the change time we saw and our content: inode numbers alone are
// reused at once by some file systems.
type dotlock struct {
	path  string
	ino   uint64
	ctime syscall.Timespec
	owner lockOwner
}

// lockOwner is what a dotlock file says about its holder.
type lockOwner struct {
	pid  int
	host string
}

func (o lockOwner) String() string { return strconv.Itoa(o.pid) + ":" + o.host }

func parseLockOwner(data []byte) (lockOwner, bool) {
	s := strings.TrimSpace(string(data))
	pid, host, ok := strings.Cut(s, ":")
	if !ok {
		return lockOwner{}, false
	}
	n, err := strconv.Atoi(pid)
	if err != nil || n <= 0 {
		return lockOwner{}, false
	}
	return lockOwner{pid: n, host: host}, true
}

// thisHost is the host name written into locks: the kernel's, since PID
// liveness is a question about this kernel's processes.
func thisHost() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "localhost"
	}
	return h
}

// alive reports whether a process of this host exists. EPERM means it
// exists but belongs to someone else.
func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// lockState is one look at an existing lock file.
type lockState struct {
	ino   uint64
	mtime time.Time
	owner lockOwner
	known bool // owner parsed
}

// readLockState looks at the lock file. On a network file system the file
// can be removed through another mount between our open and our fstat,
// which then fail with ESTALE: the lock we looked at is gone, which callers
// treat as they treat a lock that did not exist (see lockGone).
func readLockState(path string) (lockState, error) {
	f, err := openRetry(path)
	if err != nil {
		return lockState{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return lockState{}, err
	}
	var buf [256]byte
	n, err := f.Read(buf[:])
	if errors.Is(err, syscall.ESTALE) {
		return lockState{}, err
	}
	st := lockState{mtime: fi.ModTime()}
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		st.ino = sys.Ino
	}
	st.owner, st.known = parseLockOwner(buf[:n])
	return st, nil
}

// stale judges a lock: dead holder on this host, or untouched for too long.
// A lock that names no holder was left by a writer killed between creating
// and filling it (not one of ours: ours are filled before they exist), so
// it is stale much sooner.
func (st lockState) stale(host string, maxAge time.Duration, now time.Time) bool {
	if st.known && st.owner.host == host && st.owner.pid != os.Getpid() && !alive(st.owner.pid) {
		return true
	}
	if !st.known && now.Sub(st.mtime) > breakStale {
		return true
	}
	return now.Sub(st.mtime) > maxAge
}

// acquireDotlock waits for the lock until ctx ends or timeout passes.
func acquireDotlock(ctx context.Context, path string, timeout time.Duration, mode os.FileMode) (*dotlock, error) {
	return acquireDotlockWith(ctx, path, timeout, mode, createLock)
}

// acquireDotlockWith is acquireDotlock with the way a lock file is made:
// create fails with an error that is fs.ErrExist when the lock is taken.
func acquireDotlockWith(ctx context.Context, path string, timeout time.Duration, mode os.FileMode, create func(string, lockOwner, os.FileMode) (*dotlock, error)) (*dotlock, error) {
	host := thisHost()
	me := lockOwner{pid: os.Getpid(), host: host}
	deadline := time.Now().Add(timeout)
	delay := 100 * time.Microsecond
	for {
		l, err := create(path, me, mode)
		if err == nil {
			return l, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("store: lock %s: %w", filepath.Base(path), noSpace(err))
		}
		st, err := readLockState(path)
		if err == nil && st.stale(host, dotlockStale, time.Now()) {
			if broken, err := breakLock(path, st, host, mode); err != nil {
				return nil, err
			} else if broken {
				continue
			}
		}
		if lockGone(err) {
			continue // released between our create and our look
		}
		if err != nil {
			return nil, fmt.Errorf("store: lock %s: %w", filepath.Base(path), err)
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("store: lock %s held by %s: timed out", filepath.Base(path), st.owner)
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("store: lock %s: %w", filepath.Base(path), ctx.Err())
		case <-t.C:
		}
		if delay < 20*time.Millisecond {
			delay *= 2
		}
	}
}

// createLock creates the lock file with our "<pid>:<host>" in it: written
// to a file of our own first and then hard-linked to the lock's name (link
// fails if the name exists), so the lock never exists without its owner in
// it, even if we are killed halfway. This is how Dovecot makes its
// dotlocks too. Where hard links are not allowed, an exclusive create.
func createLock(path string, me lockOwner, mode os.FileMode) (*dotlock, error) {
	tmp := path + ".tmp." + strconv.Itoa(me.pid) + "." + randomSuffix()
	f, err := openFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if _, err := f.WriteString(me.String() + "\n"); err != nil {
		os.Remove(tmp)
		return nil, err
	}
	err = os.Link(tmp, path)
	// Unlinking the temporary name changes the inode's ctime: do it
	// before taking the ctime that marks the lock as ours, from the open
	// file (no lookup of the lock's name, which a network file system may
	// answer from a stale cache).
	os.Remove(tmp)
	if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.ENOTSUP) || errors.Is(err, syscall.EMLINK) {
		return createLockExcl(path, me, mode)
	}
	if err != nil {
		return nil, err
	}
	var sys syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &sys); err != nil {
		os.Remove(path)
		return nil, err
	}
	return &dotlock{path: path, owner: me, ino: sys.Ino, ctime: sys.Ctim}, nil
}

func createLockExcl(path string, me lockOwner, mode os.FileMode) (*dotlock, error) {
	f, err := openFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return nil, err
	}
	_, werr := f.WriteString(me.String() + "\n")
	fi, serr := f.Stat()
	cerr := f.Close()
	if werr != nil || serr != nil || cerr != nil {
		os.Remove(path)
		return nil, errors.Join(werr, serr, cerr)
	}
	l := &dotlock{path: path, owner: me}
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		l.ino, l.ctime = sys.Ino, sys.Ctim
	}
	return l, nil
}

// breakLock removes a stale lock if, under the break lock, it is still the
// same file in the same state. It reports whether the caller should try to
// take the lock again at once.
func breakLock(path string, seen lockState, host string, mode os.FileMode) (bool, error) {
	me := lockOwner{pid: os.Getpid(), host: host}
	bp := path + ".break"
	b, err := createLock(bp, me, mode)
	if errors.Is(err, fs.ErrExist) {
		// Someone else is breaking it. Their break lock may itself be
		// left over from a crash: it is only ever held for a moment.
		if bst, err := readLockState(bp); err == nil && bst.stale(host, breakStale, time.Now()) {
			removeIfSame(bp, bst.ino)
		}
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("store: break lock %s: %w", filepath.Base(path), noSpace(err))
	}
	defer b.release()
	now, err := readLockState(path)
	if err != nil {
		return lockGone(err), nil
	}
	if now.ino != seen.ino || !now.mtime.Equal(seen.mtime) || now.owner != seen.owner || !now.stale(host, dotlockStale, time.Now()) {
		return false, nil // renewed or replaced meanwhile
	}
	removeIfSame(path, now.ino)
	return true, nil
}

// removeIfSame removes path if it is still the file with inode ino. It
// renames the file aside first and checks what it moved: if a new file took
// the name between our check and the rename, it is put back.
func removeIfSame(path string, ino uint64) {
	aside := path + ".stale." + strconv.Itoa(os.Getpid()) + "." + randomSuffix()
	if err := os.Rename(path, aside); err != nil {
		return
	}
	var st syscall.Stat_t
	if err := syscall.Stat(aside, &st); err == nil && st.Ino != ino {
		// Not the file we meant: restore it unless the name was taken
		// again (link fails then; the newer file wins).
		if os.Link(aside, path) != nil {
			_ = os.Remove(aside)
			return
		}
	}
	_ = os.Remove(aside)
}

// touch keeps a long-held lock from looking stale to other hosts. It
// changes the file's ctime, which is part of what makes it ours.
func (l *dotlock) touch() {
	if !l.held() {
		return
	}
	now := time.Now()
	if os.Chtimes(l.path, now, now) == nil {
		var sys syscall.Stat_t
		if syscall.Stat(l.path, &sys) == nil {
			l.ctime = sys.Ctim
		}
	}
}

// release removes the lock if it is still ours: if it was broken by
// someone who judged it stale, the file there now is theirs.
func (l *dotlock) release() {
	if l.held() {
		_ = os.Remove(l.path)
	}
}

// held reports whether the lock file is still the one we created: the
// same inode with the same change time (a new file that reuses the inode
// number was made later, so its change time differs).
func (l *dotlock) held() bool {
	var sys syscall.Stat_t
	err := syscall.Stat(l.path, &sys)
	if errors.Is(err, syscall.ESTALE) {
		err = syscall.Stat(l.path, &sys)
	}
	return err == nil && sys.Ino == l.ino && sys.Ctim == l.ctime
}

// lockGone reports whether a look at a lock file failed because the file
// is no longer there: not found, or (network file systems) removed through
// another client while we held it open.
func lockGone(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ESTALE)
}

// openRetry opens a file, looking its name up again when a network file
// system says the handle it had for it is stale (ESTALE): the name now
// names another file, which is what we want to see.
func openRetry(path string) (*os.File, error) {
	for i := 0; ; i++ {
		f, err := openRead(path)
		if err == nil || !errors.Is(err, syscall.ESTALE) || i >= 3 {
			return f, err
		}
	}
}
