package flock

import (
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestExclusive: holders never overlap, within one process too (each Lock
// opens the file anew, and flock locks belong to open files).
func TestExclusive(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lock")
	var inside, overlaps atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			unlock, err := Lock(path)
			if err != nil {
				t.Error(err)
				return
			}
			if inside.Add(1) > 1 {
				overlaps.Add(1)
			}
			time.Sleep(5 * time.Millisecond)
			inside.Add(-1)
			unlock()
		})
	}
	wg.Wait()
	if n := overlaps.Load(); n != 0 {
		t.Errorf("%d overlapping holders", n)
	}
	if _, err := Lock(filepath.Join(t.TempDir(), "no", "dir")); err == nil {
		t.Error("lock in a missing directory")
	}
}
