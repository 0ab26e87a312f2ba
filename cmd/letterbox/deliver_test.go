package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const testMessage = "From: a@example.org\nTo: frank@example.org\nSubject: hello\n\nHi Frank.\n"

// newFiles returns the contents of the files in a Maildir folder's new/.
func newFiles(t *testing.T, folder string) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(folder, "new"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, readFile(t, filepath.Join(folder, "new", e.Name())))
	}
	return out
}

func TestDeliver(t *testing.T) {
	e := newTestEnv(t)
	e.must("pw\n", "user", "add", "frank", "--password-stdin", "--cost=4")
	maildir := filepath.Join(e.dataDir(), "mail", "frank", "Maildir")

	t.Run("inbox", func(t *testing.T) {
		r := e.run(testMessage, "deliver", "frank")
		if r.code != exitOK {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		if got := newFiles(t, maildir); len(got) != 1 || got[0] != testMessage {
			t.Errorf("new/ holds %q", got)
		}
		if ents, _ := os.ReadDir(filepath.Join(maildir, "tmp")); len(ents) != 0 {
			t.Errorf("tmp/ not empty: %v", ents)
		}
	})
	t.Run("folder, user name in other case, mbox From line", func(t *testing.T) {
		r := e.run("From a@example.org Thu Jan  1 00:00:00 2026\n"+testMessage, "deliver", "FRANK", "--mailbox", "Sent")
		if r.code != exitOK {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		if got := newFiles(t, filepath.Join(maildir, ".Sent")); len(got) != 1 || got[0] != testMessage {
			t.Errorf(".Sent/new holds %q", got)
		}
	})
	t.Run("missing folder falls back to INBOX", func(t *testing.T) {
		r := e.run(testMessage, "deliver", "frank", "--mailbox", "Lists/Go")
		if r.code != exitOK {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		if !strings.Contains(r.stderr, "warning") || !strings.Contains(r.stderr, "INBOX") {
			t.Errorf("no warning: %q", r.stderr)
		}
		if got := newFiles(t, maildir); len(got) != 2 {
			t.Errorf("INBOX new/ has %d messages, want 2", len(got))
		}
	})
	t.Run("unknown user", func(t *testing.T) {
		r := e.run(testMessage, "deliver", "grace")
		if r.code != exitNoUser || !strings.Contains(r.stderr, "grace") {
			t.Errorf("exit %d, stderr %q; want %d", r.code, r.stderr, exitNoUser)
		}
		if _, err := os.Stat(filepath.Join(e.dataDir(), "mail", "grace")); err == nil {
			t.Error("a Maildir was made for an unknown user")
		}
	})
	t.Run("bad config", func(t *testing.T) {
		r := e.run(testMessage, "deliver", "frank", "--mail.path=/var/mail/{nobody}")
		if r.code != exitConfig || !strings.Contains(r.stderr, "mail.path") {
			t.Errorf("exit %d, stderr %q; want %d", r.code, r.stderr, exitConfig)
		}
	})
	t.Run("store failure is temporary", func(t *testing.T) {
		// A file where the Maildir should be: the store cannot write, and
		// the MTA must keep the message and retry.
		e.must("pw\n", "user", "add", "heidi", "--password-stdin", "--cost=4")
		heidi := filepath.Join(e.dataDir(), "mail", "heidi", "Maildir")
		if err := os.RemoveAll(heidi); err != nil {
			t.Fatal(err)
		}
		writeFile(t, heidi, []byte("not a directory"))
		r := e.run(testMessage, "deliver", "heidi")
		if r.code != exitTempFail {
			t.Errorf("exit %d, stderr %q; want %d", r.code, r.stderr, exitTempFail)
		}
	})
	t.Run("users file unreadable is temporary", func(t *testing.T) {
		r := e.run(testMessage, "deliver", "frank", "--auth.users_file=/nonexistent/users")
		if r.code != exitTempFail {
			t.Errorf("exit %d, stderr %q; want %d", r.code, r.stderr, exitTempFail)
		}
	})
}
