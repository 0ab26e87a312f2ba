package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"time"
)

// Dovecot serializes writers of a Maildir folder with a dotlock:
// dovecot-uidlist.lock, created exclusively, stale when it has not changed
// for two minutes (the holder crashed). Readers take no lock. We take the
// same lock so Dovecot (or a second Letterbox) can run on the same files.

const dotlockStale = 120 * time.Second

type dotlock struct {
	path string
}

// acquireDotlock waits for the lock until ctx ends or timeout passes.
func acquireDotlock(ctx context.Context, path string, timeout time.Duration, mode os.FileMode) (*dotlock, error) {
	deadline := time.Now().Add(timeout)
	delay := time.Millisecond
	for {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
		if err == nil {
			// Who holds it, for a person looking at a stuck lock.
			host, _ := os.Hostname()
			_, _ = f.WriteString(strconv.Itoa(os.Getpid()) + ":" + host + "\n")
			f.Close()
			return &dotlock{path: path}, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("store: lock %s: %w", path, err)
		}
		if fi, err := os.Stat(path); err == nil && time.Since(fi.ModTime()) > dotlockStale {
			// Break a stale lock by renaming it away first, so two
			// breakers cannot both remove a fresh lock.
			stale := path + ".stale" + strconv.Itoa(os.Getpid())
			if os.Rename(path, stale) == nil {
				os.Remove(stale)
			}
			continue
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("store: lock %s: timed out", path)
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("store: lock %s: %w", path, ctx.Err())
		case <-t.C:
		}
		if delay < 50*time.Millisecond {
			delay *= 2
		}
	}
}

// touch keeps a long-held lock from looking stale.
func (l *dotlock) touch() {
	now := time.Now()
	_ = os.Chtimes(l.path, now, now)
}

func (l *dotlock) release() {
	_ = os.Remove(l.path)
}
