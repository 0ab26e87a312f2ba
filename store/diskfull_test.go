package store_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/letterbox-mail/letterbox/store"
)

// A full disk refuses the append and leaves no trace, and the mailbox works
// again once there is room. The file system is a 256 KiB tmpfs, which needs
// root (as in CI); elsewhere the test is skipped.
func TestDiskFull(t *testing.T) {
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a small tmpfs (needs root): %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", dir).Run() })
	_, u := newUser(t, store.Options{PathTemplate: filepath.Join(dir, "{user}", "Maildir")})
	m := openBox(t, u, "INBOX")
	ctx := context.Background()
	if _, err := m.Append(ctx, strings.NewReader("small\n"), store.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err := m.Append(ctx, strings.NewReader(strings.Repeat("x", 400<<10)), store.AppendOptions{})
	if !errors.Is(err, syscall.ENOSPC) || !errors.Is(err, store.ErrNoSpace) {
		t.Fatalf("append on a full disk: %v, want ENOSPC and ErrNoSpace", err)
	}
	for _, sub := range []string{"tmp", "new"} {
		if left := store.LeftIn(filepath.Join(u.Root(), sub)); len(left) != 0 {
			t.Errorf("%s/ keeps %d files after the failed append: %v", sub, len(left), left)
		}
	}
	if got := uids(t, m); len(got) != 1 {
		t.Errorf("messages after the failed append: %v", got)
	}
	uid, err := m.Append(ctx, strings.NewReader("after\n"), store.AppendOptions{})
	if err != nil || uid != 2 {
		t.Errorf("append after the failure: UID %d, %v", uid, err)
	}
}

// The disk fills up at every possible step of an append (the message file,
// the uidlist line, the log record): whatever the step, the append either
// fails with ErrNoSpace and leaves nothing behind, or succeeds and the
// message is there for a process that starts afresh. Nothing acknowledged
// is lost, and the folder works again once there is room.
func TestDiskFullAtEveryStep(t *testing.T) {
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a small tmpfs (needs root): %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", dir).Run() })
	tmpl := filepath.Join(dir, "{user}", "Maildir")
	var logs strings.Builder
	var logsMu sync.Mutex
	logger := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		logsMu.Lock()
		defer logsMu.Unlock()
		return logs.Write(p)
	}), nil))
	s, err := store.Open(store.Options{PathTemplate: tmpl, NoWatch: true, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	u, _ := s.User("alice")
	m, _ := u.Open(context.Background(), "INBOX")
	ctx := context.Background()
	filler := filepath.Join(dir, "filler")
	acked := map[uint32]bool{}
	failures := 0
	for step := 0; step < 60; step++ {
		free := (step % 12) << 11
		// Fill the disk, then give back free bytes.
		f, _ := os.Create(filler)
		buf := make([]byte, 4096)
		for {
			if _, err := f.Write(buf); err != nil {
				break
			}
		}
		fi, _ := f.Stat()
		f.Truncate(max(0, fi.Size()-int64(free)))
		f.Close()
		if step%3 == 2 && len(acked) > 0 {
			// Flags and expunges on a full disk too.
			for uid := range acked {
				m.SetFlags(ctx, []uint32{uid}, store.FlagsAdd, store.FlagSeen, []string{fmt.Sprint("kw", step%5)}, nil)
				break
			}
		}
		uid, err := m.Append(ctx, strings.NewReader(strings.Repeat("line of a message\n", 100+step*13)), store.AppendOptions{})
		switch {
		case err == nil:
			acked[uid] = true
		case errors.Is(err, store.ErrNoSpace):
			failures++
		default:
			t.Fatalf("free %d: %v, want ErrNoSpace", free, err)
		}
		os.Remove(filler)
		if left := store.LeftIn(filepath.Join(u.Root(), "tmp")); len(left) != 0 {
			t.Errorf("free %d: tmp/ keeps %d files: %v (err %v)", free, len(left), left, err)
		}
	}
	if failures == 0 || len(acked) == 0 {
		t.Fatalf("%d failures, %d appends: the disk did not fill at all steps", failures, len(acked))
	}
	// The live index and a fresh process agree, and hold every
	// acknowledged message.
	live := uids(t, m)
	var liveFlags []string
	m.Read(ctx, func(v *store.View) {
		for i := 0; i < v.Len(); i++ {
			liveFlags = append(liveFlags, fmt.Sprint(v.At(i).Flags, v.At(i).Keywords))
		}
	})
	m.Close()
	s.Close()
	s2, err := store.Open(store.Options{PathTemplate: tmpl, NoWatch: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	u2, _ := s2.User("alice")
	fresh := uids(t, openBox(t, u2, "INBOX"))
	if fmt.Sprint(live) != fmt.Sprint(fresh) {
		t.Errorf("live index %v, fresh process %v", live, fresh)
	}
	var freshFlags []string
	openBox(t, u2, "INBOX").Read(ctx, func(v *store.View) {
		for i := 0; i < v.Len(); i++ {
			freshFlags = append(freshFlags, fmt.Sprint(v.At(i).Flags, v.At(i).Keywords))
		}
	})
	if fmt.Sprint(liveFlags) != fmt.Sprint(freshFlags) {
		t.Errorf("flags: live %v, fresh process %v", liveFlags, freshFlags)
	}
	have := map[uint32]bool{}
	for _, uid := range fresh {
		have[uid] = true
	}
	for uid := range acked {
		if !have[uid] {
			t.Errorf("acknowledged UID %d lost", uid)
		}
	}
	logsMu.Lock()
	logFailures := strings.Count(logs.String(), "cannot write letterbox-log")
	logsMu.Unlock()
	t.Logf("%d appends refused, %d stored, %d log writes failed", failures, len(acked), logFailures)
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
