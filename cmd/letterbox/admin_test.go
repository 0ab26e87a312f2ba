package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestMailboxList(t *testing.T) {
	e := newTestEnv(t)
	e.must("pw\n", "user", "add", "frank", "--password-stdin", "--cost=4")
	e.must("pw\n", "user", "add", "gina", "--password-stdin", "--cost=4")
	os.RemoveAll(filepath.Join(e.dataDir(), "mail", "gina")) // a user without mail yet
	e.must(testMessage, "deliver", "frank")
	e.must(testMessage+"more\n", "deliver", "frank")
	e.must(testMessage, "deliver", "frank", "--mailbox", "Sent")

	r := e.must("", "mailbox", "list", "FRANK")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) < 3 {
		t.Fatalf("list:\n%s", r.stdout)
	}
	if f := strings.Fields(lines[0]); strings.Join(f, " ") != "MAILBOX MESSAGES UNSEEN SIZE" {
		t.Errorf("header %q", lines[0])
	}
	// Sizes count CRLF line ends: the message has 5 lines.
	size := len(testMessage) + 5
	want := map[string]string{
		"INBOX": "2 2 " + strconv.Itoa(2*size+len("more\r\n")),
		"Sent":  "1 1 " + strconv.Itoa(size),
		"Trash": "0 0 0",
	}
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if w, ok := want[f[0]]; ok {
			if got := strings.Join(f[1:], " "); got != w {
				t.Errorf("%s: %q, want %q", f[0], got, w)
			}
			delete(want, f[0])
		}
	}
	if len(want) > 0 {
		t.Errorf("missing %v in\n%s", want, r.stdout)
	}
	// Listing took the messages in: they are in cur/ now, with UIDs.
	inbox := filepath.Join(e.dataDir(), "mail", "frank", "Maildir")
	if ents, _ := os.ReadDir(filepath.Join(inbox, "cur")); len(ents) != 2 {
		t.Errorf("cur/ holds %d files", len(ents))
	}

	r = e.must("", "mailbox", "reindex", "frank")
	if !strings.Contains(r.stdout, "INBOX: 2 messages, 2 unseen, ") || !strings.Contains(r.stdout, "UIDNEXT 3") {
		t.Errorf("reindex:\n%s", r.stdout)
	}
	uidvalidity := strings.TrimSuffix(strings.Fields(strings.SplitAfter(r.stdout, "UIDVALIDITY ")[1])[0], ",")
	r = e.must("", "mailbox", "reindex", "frank", "inbox")
	if strings.Count(r.stdout, "\n") != 1 || !strings.Contains(r.stdout, "UIDVALIDITY "+uidvalidity+", UIDNEXT 3") {
		t.Errorf("reindex INBOX (UIDs must not change):\n%s", r.stdout)
	}

	r = e.must("", "mailbox", "list", "gina")
	if r.stdout != "" || !strings.Contains(r.stderr, "no Maildir yet") {
		t.Errorf("gina: %q %q", r.stdout, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(e.dataDir(), "mail", "gina")); !os.IsNotExist(err) {
		t.Errorf("listing created gina's Maildir: %v", err)
	}

	for _, tt := range []struct {
		args  []string
		code  int
		inErr string
	}{
		{[]string{"mailbox", "list", "nobody"}, exitNoUser, "no such user"},
		{[]string{"mailbox", "reindex", "frank", "Nope"}, exitFailure, "no such mailbox"},
		{[]string{"mailbox"}, exitUsage, "missing subcommand"},
		{[]string{"mailbox", "show", "frank"}, exitUsage, "unknown subcommand"},
		{[]string{"mailbox", "list"}, exitUsage, "usage"},
		{[]string{"mailbox", "list", "a", "b"}, exitUsage, "usage"},
		{[]string{"kick"}, exitUsage, "usage"},
		{[]string{"who", "x"}, exitUsage, "usage"},
		{[]string{"who", "--control.socket="}, exitConfig, "control.socket is off"},
		{[]string{"kick", "frank"}, exitUnavailable, "not running"},
	} {
		r := e.run("", tt.args...)
		if r.code != tt.code || !strings.Contains(r.stderr, tt.inErr) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", tt.args, r.code, r.stderr, tt.code, tt.inErr)
		}
	}
}
