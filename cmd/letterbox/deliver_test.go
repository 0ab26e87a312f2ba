package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/letterbox-mail/letterbox/cmd/letterbox/internal/lbtest"
)

const testMessage = "From: a@example.org\nTo: frank@example.org\nSubject: hello\n\nHi Frank.\n"

// newFiles returns the contents of the files in a Maildir folder's new/.
func newFiles(t *testing.T, folder string) []string { return lbtest.NewMail(t, folder) }

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
	t.Run("disk full is temporary", func(t *testing.T) {
		disk := lbtest.SmallDisk(t, 256<<10)
		mailPath := "--mail.path=" + filepath.Join(disk, "{user}", "Maildir")
		e.must("pw\n", "user", "add", "ivan", "--password-stdin", "--cost=4", mailPath)
		lbtest.Fill(t, disk)
		r := e.run(testMessage, "deliver", "ivan", mailPath)
		if r.code != exitTempFail || !strings.Contains(r.stderr, "no space left for mail") {
			t.Errorf("exit %d, stderr %q; want %d", r.code, r.stderr, exitTempFail)
		}
		if ents, _ := os.ReadDir(filepath.Join(disk, "ivan", "Maildir", "tmp")); len(ents) != 0 {
			t.Errorf("tmp/ keeps %v", ents)
		}
	})
	t.Run("users file unreadable is temporary", func(t *testing.T) {
		r := e.run(testMessage, "deliver", "frank", "--auth.users_file=/nonexistent/users")
		if r.code != exitTempFail {
			t.Errorf("exit %d, stderr %q; want %d", r.code, r.stderr, exitTempFail)
		}
	})
}

// TestNoSuchUserSaysWhere: deliver and user name the configuration, data
// directory and users file they looked in, the usual cause being another
// working directory or configuration than the server's.
func TestNoSuchUserSaysWhere(t *testing.T) {
	e := newTestEnv(t)
	e.must("pw\n", "user", "add", "frank", "--password-stdin", "--cost=4")
	elsewhere := newTestEnv(t) // another working directory
	for _, tt := range []struct {
		env  *testEnv
		args []string
		code int
		file string
	}{
		{elsewhere, []string{"deliver", "frank"}, exitTempFail, " (does not exist)"},
		{e, []string{"deliver", "grace"}, exitNoUser, ""},
		{e, []string{"user", "passwd", "grace", "--password-stdin"}, exitNoUser, ""},
		{e, []string{"user", "del", "grace"}, exitNoUser, ""},
		{elsewhere, []string{"mailbox", "list", "frank"}, exitNoUser, " (does not exist)"},
	} {
		r := tt.env.run(testMessage, tt.args...)
		want := []string{
			"users file: " + filepath.Join(tt.env.dataDir(), "users") + tt.file + "\n",
			"data_dir:   " + tt.env.dataDir() + "\n",
			"config:     (embedded defaults)\n",
			"where \"letterbox serve\" runs",
		}
		for _, w := range want {
			if !strings.Contains(r.stderr, w) {
				t.Errorf("letterbox %s: exit %d, stderr lacks %q:\n%s", strings.Join(tt.args, " "), r.code, w, r.stderr)
			}
		}
		if r.code != tt.code {
			t.Errorf("letterbox %s: exit %d, want %d", strings.Join(tt.args, " "), r.code, tt.code)
		}
	}
	// With a config file, as an MTA runs it: the paths would end up in
	// bounces to strangers, so they are not printed.
	cfgFile := filepath.Join(e.dir, "letterbox.toml")
	writeFile(t, cfgFile, []byte("data_dir = \"data\"\n"))
	e.must("pw\n", "user", "add", "frank", "--password-stdin", "--cost=4", "--config", cfgFile)
	if r := e.run(testMessage, "deliver", "grace", "--config", cfgFile); r.code != exitNoUser || strings.Contains(r.stderr, "users file:") {
		t.Errorf("deliver with a config file: exit %d\n%s", r.code, r.stderr)
	}
	if r := e.run("", "user", "del", "grace", "--config", cfgFile); !strings.Contains(r.stderr, "config:     "+cfgFile) {
		t.Errorf("user del with a config file:\n%s", r.stderr)
	}
}
