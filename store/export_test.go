package store

import (
	"context"
	"os"
	"path/filepath"
	"strings"
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

// LeftIn lists what dir holds besides lock templates (locktmpl.go): what
// an operation that failed must not leave behind in tmp/, new/ or cur/.
func LeftIn(dir string) []string {
	ents, _ := os.ReadDir(dir)
	var left []string
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), lockTmplPrefix) {
			left = append(left, e.Name())
		}
	}
	return left
}
