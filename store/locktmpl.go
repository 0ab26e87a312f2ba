package store

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// A folder's dotlock is taken for every change, and creating a file is the
// dearest thing in it: a new inode (about 380 µs on our test machine's
// ext4, where opening an existing file takes 4 µs). So each folder a
// process changes gets one lock template, a file in the folder's tmp/
// holding the process's "<pid>:<host>", made once; taking the lock
// hard-links the template to the lock's name, as createLock links its
// fresh file, and releasing it unlinks the name. What other processes see
// is the same as before: a lock file that exists only filled, with its
// holder in it.
//
// The template's times are set to now before each link, so the lock looks
// as fresh to other hosts as a new file would (they judge staleness by
// mtime). That changes the inode's ctime, which is part of what makes a
// held lock ours (dotlock.held), so the template is only used under b.mu,
// which every taker of a folder's lock holds: never while the lock is held.
// Templates are removed when the folder is dropped or the store closed;
// a killed process's are removed with the other old files of tmp/ (after
// 36 hours, cleanTmp), and a template found missing is made again.

const lockTmplPrefix = ".lbxlock."

// lockFolder takes the folder's dotlock. b.mu is held.
func (b *box) lockFolder(ctx context.Context) (*dotlock, error) {
	return acquireDotlockWith(ctx, filepath.Join(b.path, uidlistName+".lock"), b.s.opts.LockTimeout, b.s.opts.FileMode, b.linkLock)
}

// linkLock makes the lock from the folder's template, falling back to a
// new file (createLock) where the template cannot be made or linked.
func (b *box) linkLock(path string, me lockOwner, mode os.FileMode) (*dotlock, error) {
	for attempt := 0; attempt < 2; attempt++ {
		if b.lockTmpl == "" {
			tmpl, err := makeLockTemplate(filepath.Join(b.path, "tmp"), me, mode)
			if err != nil {
				return createLock(path, me, mode)
			}
			b.lockTmpl = tmpl
		}
		now := time.Now()
		err := os.Chtimes(b.lockTmpl, now, now)
		if err == nil {
			err = os.Link(b.lockTmpl, path)
		}
		switch {
		case err == nil:
			var sys syscall.Stat_t
			if err := syscall.Stat(b.lockTmpl, &sys); err != nil {
				_ = os.Remove(path)
				return nil, err
			}
			return &dotlock{path: path, owner: me, ino: sys.Ino, ctime: sys.Ctim}, nil
		case errors.Is(err, fs.ErrExist):
			if b.leftOver(path) {
				continue
			}
			return nil, err
		case errors.Is(err, fs.ErrNotExist):
			// The template was cleaned away (or tmp/ was): make it again.
			b.lockTmpl = ""
		default:
			// No hard links here, another file system under tmp/, ...
			b.dropLockTemplate()
			return createLock(path, me, mode)
		}
	}
	return createLock(path, me, mode)
}

// leftOver removes the lock if it is our own template's: nobody in this
// process holds it (b.mu is held), so it is a lock whose release failed.
// Without this, our own PID would keep it from ever looking stale to us.
func (b *box) leftOver(path string) bool {
	var lk, tp syscall.Stat_t
	if syscall.Stat(path, &lk) != nil || syscall.Stat(b.lockTmpl, &tp) != nil || lk.Ino != tp.Ino || lk.Dev != tp.Dev {
		return false
	}
	return os.Remove(path) == nil
}

// makeLockTemplate writes a new template in dir.
func makeLockTemplate(dir string, me lockOwner, mode os.FileMode) (string, error) {
	p := filepath.Join(dir, lockTmplPrefix+strconv.Itoa(me.pid)+"."+randomSuffix())
	f, err := openFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return "", err
	}
	_, werr := f.WriteString(me.String() + "\n")
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		_ = os.Remove(p)
		return "", werr
	}
	return p, nil
}

// dropLockTemplate removes the folder's template. b.mu is held.
func (b *box) dropLockTemplate() {
	if b.lockTmpl != "" {
		_ = os.Remove(b.lockTmpl)
		b.lockTmpl = ""
	}
}
