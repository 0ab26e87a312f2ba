package store_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("append on a full disk: %v, want ENOSPC", err)
	}
	for _, sub := range []string{"tmp", "new"} {
		if ents, _ := os.ReadDir(filepath.Join(u.Root(), sub)); len(ents) != 0 {
			t.Errorf("%s/ keeps %d files after the failed append", sub, len(ents))
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
