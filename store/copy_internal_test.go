package store

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A flag change by another program renames the source between the moment
// COPY looked it up and the moment it links it: the copy follows the file
// to its new name. A source removed meanwhile is left out, and says so.
func TestCopyFollowsRenamedSource(t *testing.T) {
	s, err := Open(Options{PathTemplate: filepath.Join(t.TempDir(), "{user}", "Maildir"), NoWatch: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	u, err := s.User("alice")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	src, _ := u.Open(ctx, "INBOX")
	defer src.Close()
	dst, _ := u.Open(ctx, "Archive")
	defer dst.Close()
	var uids []uint32
	for _, body := range []string{"Subject: one\n\n1\n", "Subject: two\n\n2\n"} {
		uid, err := src.Append(ctx, strings.NewReader(body), AppendOptions{})
		if err != nil {
			t.Fatal(err)
		}
		uids = append(uids, uid)
	}
	cur := filepath.Join(u.Root(), "cur")
	s.hooks.beforeStage = func() {
		s.hooks.beforeStage = nil
		names, _ := filepath.Glob(filepath.Join(cur, "*"))
		for _, n := range names {
			data, _ := os.ReadFile(n)
			switch {
			case strings.Contains(string(data), "one"):
				// Dovecot sets \Flagged: a rename the log never hears of.
				if err := os.Rename(n, n+"F"); err != nil {
					t.Fatal(err)
				}
			case strings.Contains(string(data), "two"):
				os.Remove(n)
			}
		}
	}
	from, to, err := src.Copy(ctx, uids, dst)
	if err != nil {
		t.Fatal(err)
	}
	if len(from) != 1 || from[0] != uids[0] || len(to) != 1 {
		t.Fatalf("copied %v → %v, want only UID %d", from, to, uids[0])
	}
	b, err := dst.OpenMessage(ctx, to[0])
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(b)
	b.Close()
	if !strings.Contains(string(data), "one") {
		t.Errorf("copied %q", data)
	}
	var flags Flag
	dst.Read(ctx, func(v *View) { flags = v.At(0).Flags })
	if flags != FlagFlagged {
		t.Errorf("copy has flags %v, want the renamed file's \\Flagged", flags)
	}
}

// A flag change that finds one of its files renamed by another program
// commits what it did so far, finds the file and goes on: its result
// lists every message it changed, those of the first commit too.
func TestSetFlagsReportsAcrossResync(t *testing.T) {
	s, err := Open(Options{PathTemplate: filepath.Join(t.TempDir(), "{user}", "Maildir"), NoWatch: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	u, _ := s.User("alice")
	ctx := context.Background()
	m, _ := u.Open(ctx, "INBOX")
	defer m.Close()
	for _, body := range []string{"Subject: one\n\n1\n", "Subject: two\n\n2\n"} {
		if _, err := m.Append(ctx, strings.NewReader(body), AppendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	s.hooks.beforeFlags = func() {
		s.hooks.beforeFlags = nil
		names, _ := filepath.Glob(filepath.Join(u.Root(), "cur", "*"))
		for _, n := range names {
			if data, _ := os.ReadFile(n); strings.Contains(string(data), "two") {
				// Dovecot sets \Flagged: a rename the log never hears of.
				if err := os.Rename(n, n+"F"); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	out, err := m.SetFlags(ctx, []uint32{1, 2}, FlagsAdd, FlagSeen, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := map[uint32]Flag{}
	for _, msg := range out {
		got[msg.UID] = msg.Flags
	}
	if len(out) != 2 || got[1] != FlagSeen || got[2] != FlagSeen|FlagFlagged {
		t.Errorf("SetFlags reported %+v, want UID 1 \\Seen and UID 2 \\Seen \\Flagged", out)
	}
}
