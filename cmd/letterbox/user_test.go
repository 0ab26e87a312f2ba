package main

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/letterbox-mail/letterbox/auth"
)

// login checks a password the way the servers will, through a fresh
// Authenticator on the users file.
func login(t *testing.T, usersFile, user, pass string) error {
	t.Helper()
	a, err := auth.New(auth.Options{
		UsersFile: usersFile, FailDelay: -1, ThrottleFailures: -1,
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = a.Authenticate(context.Background(), user, pass, netip.MustParseAddr("127.0.0.1"))
	return err
}

func TestUserRoundTrip(t *testing.T) {
	e := newTestEnv(t)
	users := filepath.Join(e.dataDir(), "users")

	r := e.run("", "user", "list")
	if r.code != exitOK || r.stdout != "" || !strings.Contains(r.stderr, "no users file") {
		t.Errorf("list without a file: %+v", r)
	}

	r = e.must("s3cret-alice\n", "user", "add", "alice", "--password-stdin", "--cost", "4")
	maildir := filepath.Join(e.dataDir(), "mail", "alice", "Maildir")
	if !strings.Contains(r.stdout, maildir) {
		t.Errorf("add output %q does not say where mail goes", r.stdout)
	}
	for _, d := range []string{"cur", "new", "tmp", ".Sent/new", ".Trash/cur", ".Drafts/tmp"} {
		if fi, err := os.Stat(filepath.Join(maildir, d)); err != nil || !fi.IsDir() {
			t.Errorf("Maildir lacks %s: %v", d, err)
		}
	}
	fi, err := os.Stat(users)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("users file mode %v, want 0600", fi.Mode().Perm())
	}
	if !strings.HasPrefix(readFile(t, users), "alice:{BLF-CRYPT}$2y$04$") {
		t.Errorf("users file: %q", readFile(t, users))
	}
	e.must("pw-bob\r\nignored second line\n", "user", "add", "--password-stdin", "--cost=4", "bob@example.org")

	r = e.must("", "user", "list")
	if r.stdout != "alice\nbob@example.org\n" {
		t.Errorf("list = %q", r.stdout)
	}
	if err := login(t, users, "alice", "s3cret-alice"); err != nil {
		t.Errorf("alice: %v", err)
	}
	if err := login(t, users, "bob@example.org", "pw-bob"); err != nil {
		t.Errorf("bob (CR stripped from the line): %v", err)
	}

	e.must("n3w-alice\n", "user", "passwd", "alice", "--password-stdin", "--cost", "4")
	if err := login(t, users, "alice", "n3w-alice"); err != nil {
		t.Errorf("alice after passwd: %v", err)
	}
	if err := login(t, users, "alice", "s3cret-alice"); !errors.Is(err, auth.ErrInvalidCredentials) {
		t.Errorf("old password: err = %v", err)
	}

	r = e.must("", "user", "del", "ALICE")
	if !strings.Contains(r.stdout, "deleted user alice") || !strings.Contains(r.stdout, maildir) {
		t.Errorf("del output %q", r.stdout)
	}
	if _, err := os.Stat(maildir); err != nil {
		t.Errorf("del removed the mail: %v", err)
	}
	if r := e.must("", "user", "list"); r.stdout != "bob@example.org\n" {
		t.Errorf("list after del = %q", r.stdout)
	}
}

func TestUserErrors(t *testing.T) {
	e := newTestEnv(t)
	e.must("pw\n", "user", "add", "carol", "--password-stdin", "--cost=4")
	tests := []struct {
		name  string
		stdin string
		args  []string
		code  int
		msg   string
	}{
		{"duplicate", "pw\n", []string{"add", "Carol", "--password-stdin"}, exitFailure, "already exists"},
		{"invalid name", "pw\n", []string{"add", "../x", "--password-stdin"}, exitDataErr, "invalid username"},
		{"empty password", "\n", []string{"add", "dave", "--password-stdin"}, exitDataErr, "empty password"},
		{"no password at all", "", []string{"add", "dave", "--password-stdin"}, exitDataErr, "reading the password"},
		{"password too long", strings.Repeat("x", 73) + "\n", []string{"add", "dave", "--password-stdin"}, exitDataErr, "longer than 72"},
		{"bad cost", "pw\n", []string{"add", "dave", "--password-stdin", "--cost=99"}, exitDataErr, "cost"},
		{"passwd unknown", "pw\n", []string{"passwd", "nobody", "--password-stdin"}, exitNoUser, "no such user"},
		{"del unknown", "", []string{"del", "nobody"}, exitNoUser, "no such user"},
		{"bad config", "pw\n", []string{"add", "dave", "--password-stdin", "--imap.idle_timeout=1s"}, exitConfig, "imap.idle_timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.run(tt.stdin, append([]string{"user"}, tt.args...)...)
			if r.code != tt.code || !strings.Contains(r.stderr, tt.msg) {
				t.Errorf("exit %d, stderr %q; want %d and %q", r.code, r.stderr, tt.code, tt.msg)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(e.dataDir(), "mail", "dave")); err == nil {
		t.Error("a failed add left a Maildir behind")
	}

	// Without --password-stdin the password is prompted for on a terminal;
	// a pipe is refused rather than read silently.
	r := e.run("pw\n", "user", "add", "erin")
	if r.code != exitDataErr || !strings.Contains(r.stderr, "--password-stdin") {
		t.Errorf("no terminal: exit %d, stderr %q", r.code, r.stderr)
	}
}
