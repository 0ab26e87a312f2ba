package store

import (
	"context"
	"path/filepath"
	"time"
)

// WithFolderLockForTest runs fn holding dir's dovecot-uidlist.lock.
func WithFolderLockForTest(dir string, fn func() error) error {
	l, err := acquireDotlock(context.Background(), filepath.Join(dir, uidlistName+".lock"), time.Minute, 0o600)
	if err != nil {
		return err
	}
	defer l.release()
	return fn()
}
