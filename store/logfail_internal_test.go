package store

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// When the log cannot be written (a full disk) after a change is made on
// disk, no process may go on trusting a log that misses it: the other
// instance and a process started afterwards see exactly what the writer
// sees, flags and UIDs included.
func TestLogWriteFailure(t *testing.T) {
	tmpl := filepath.Join(t.TempDir(), "{user}", "Maildir")
	open := func() (*Store, *Mailbox) {
		s, err := Open(Options{PathTemplate: tmpl, NoWatch: true})
		if err != nil {
			t.Fatal(err)
		}
		u, _ := s.User("alice")
		m, err := u.Open(context.Background(), "INBOX")
		if err != nil {
			t.Fatal(err)
		}
		return s, m
	}
	sa, a := open()
	defer sa.Close()
	sb, b := open()
	defer sb.Close()
	ctx := context.Background()
	view := func(m *Mailbox) string {
		var out strings.Builder
		if err := m.Read(ctx, func(v *View) {
			for i := 0; i < v.Len(); i++ {
				msg := v.At(i)
				fmt.Fprintf(&out, "%d %v %v\n", msg.UID, msg.Flags, msg.Keywords)
			}
		}); err != nil {
			t.Fatal(err)
		}
		return out.String()
	}
	var uids []uint32
	for i := 0; i < 6; i++ {
		uid, err := a.Append(ctx, strings.NewReader(fmt.Sprintf("Subject: %d\n\nx\n", i)), AppendOptions{})
		if err != nil {
			t.Fatal(err)
		}
		uids = append(uids, uid)
	}
	view(b)
	failing := 0
	sa.hooks.logWrite = func() error {
		if failing > 0 {
			failing--
			return fmt.Errorf("write letterbox-log: %w", syscall.ENOSPC)
		}
		return nil
	}
	for round := 0; round < 4; round++ {
		failing = 1
		switch round {
		case 0:
			if _, err := a.SetFlags(ctx, uids[:2], FlagsAdd, FlagFlagged, []string{"urgent"}, nil); err != nil {
				t.Fatal(err)
			}
		case 1:
			uid, err := a.Append(ctx, strings.NewReader("Subject: late\n\nx\n"), AppendOptions{})
			if err != nil {
				t.Fatalf("append whose log write failed: %v", err)
			}
			uids = append(uids, uid)
			// Another one, logged, before anyone else looks: it must not
			// pass the first one by.
			uid, err = a.Append(ctx, strings.NewReader("Subject: later\n\nx\n"), AppendOptions{})
			if err != nil {
				t.Fatal(err)
			}
			uids = append(uids, uid)
		case 2:
			if _, err := a.Expunge(ctx, ExpungeOptions{UIDs: uids[2:3]}); err != nil {
				t.Fatal(err)
			}
		case 3:
			// b changes something too, with a log that a missed
			// such change once.
			if _, err := b.SetFlags(ctx, uids[3:4], FlagsAdd, FlagAnswered, nil, nil); err != nil {
				t.Fatal(err)
			}
		}
		if va, vb := view(a), view(b); va != vb {
			t.Errorf("round %d: writer sees\n%s\nthe other instance\n%s", round, va, vb)
		}
		sc, c := open()
		if va, vc := view(a), view(c); va != vc {
			t.Errorf("round %d: writer sees\n%s\na new process\n%s", round, va, vc)
		}
		c.Close()
		sc.Close()
	}
}
