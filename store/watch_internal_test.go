package store

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A folder's watches are added when its first watcher registers, on their
// own goroutine. A message delivered after the watcher registered and
// before the watches are in place must still reach it, with nobody
// reading the folder and no poller: one check is scheduled once they are.
func TestChangeBeforeWatchesArrive(t *testing.T) {
	tmpl := filepath.Join(t.TempDir(), "{user}", "Maildir")
	s, err := Open(Options{PathTemplate: tmpl, PollInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	u, _ := s.User("alice")
	ctx := context.Background()
	// Make the folder and a message with another store, as another
	// process would.
	{
		s2, err := Open(Options{PathTemplate: tmpl, NoWatch: true})
		if err != nil {
			t.Fatal(err)
		}
		u2, _ := s2.User("alice")
		m2, err := u2.Open(ctx, "INBOX")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := m2.Append(ctx, strings.NewReader("Subject: 1\n\nx\n"), AppendOptions{}); err != nil {
			t.Fatal(err)
		}
		m2.Close()
		s2.Close()
	}
	appended := make(chan uint32, 4)
	m, err := u.Open(ctx, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.b.watched.Load() {
		t.Fatal("watches before any watcher")
	}
	s.hooks.watchAdd = func(b *box) {
		// An MDA delivers now: no watch sees it.
		name := filepath.Join(b.path, "new", "1800000000.M1P1.mda")
		if err := os.WriteFile(name, []byte("Subject: 2\n\ny\n"), 0o600); err != nil {
			t.Error(err)
		}
	}
	_, cancel := m.Watch(func(c Change) {
		if c.Kind == Appended {
			appended <- c.UID
		}
	})
	select {
	case uid := <-appended:
		if uid != 2 {
			t.Errorf("appended UID %d, want 2", uid)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a delivery between the watcher and the watches was never noticed")
	}
	for deadline := time.Now().Add(10 * time.Second); !m.b.watched.Load(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("watches never in place")
		}
	}
	cancel()
	if m.b.watched.Load() {
		t.Error("watches kept after the last watcher left")
	}
}
