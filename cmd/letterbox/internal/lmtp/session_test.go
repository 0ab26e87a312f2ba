package lmtp

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"

	"github.com/letterbox-mail/letterbox/cmd/letterbox/internal/lbtest"
)

// Several recipients, one unknown: 550 at RCPT for that one, the others
// stored byte for byte behind Return-Path and Delivered-To.
func TestDeliverSeveral(t *testing.T) {
	e := newTestEnv(t, nil, "alice", "bob", "carol@example.org")
	c := e.client()
	rcpts := []string{"alice@example.org", "nobody@example.org", "BOB@other.test", "carol@example.org"}
	rcptErrs, data := e.send(c, "ann@example.org", rcpts, testMessage)

	if code := smtpCode(rcptErrs["nobody@example.org"]); code != 550 {
		t.Errorf("unknown recipient: %v, want 550", rcptErrs["nobody@example.org"])
	}
	var se *smtp.SMTPError
	if errors.As(rcptErrs["nobody@example.org"], &se) && se.EnhancedCode != (smtp.EnhancedCode{5, 1, 1}) {
		t.Errorf("enhanced code %v, want 5.1.1", se.EnhancedCode)
	}
	for _, r := range []string{"alice@example.org", "BOB@other.test", "carol@example.org"} {
		if rcptErrs[r] != nil {
			t.Errorf("RCPT %s: %v", r, rcptErrs[r])
		}
		if err, ok := data[r]; !ok || err != nil {
			t.Errorf("DATA reply for %s: %v (present %v)", r, err, ok)
		}
	}
	if _, ok := data["nobody@example.org"]; ok {
		t.Error("a DATA reply for the refused recipient")
	}

	for user, rcpt := range map[string]string{"alice": "alice@example.org", "bob": "BOB@other.test", "carol@example.org": "carol@example.org"} {
		got := lbtest.NewMail(t, e.maildir(user))
		want := "Return-Path: <ann@example.org>\r\nDelivered-To: " + rcpt + "\r\n" + testMessage
		if len(got) != 1 || got[0] != want {
			t.Errorf("%s's new/ holds %q, want %q", user, got, want)
		}
	}
	if _, err := os.Stat(e.maildir("nobody")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a Maildir for the unknown user: %v", err)
	}

	// The same connection goes on: a bounce (empty sender) to one user.
	_, data = e.send(c, "", []string{"Alice@example.org"}, "Subject: bounce\r\n\r\nx\r\n")
	if err, ok := data["Alice@example.org"]; !ok || err != nil {
		t.Fatalf("second transaction: %v", err)
	}
	if got := lbtest.NewMail(t, e.maildir("alice")); !slices.Contains(got, "Return-Path: <>\r\nDelivered-To: Alice@example.org\r\nSubject: bounce\r\n\r\nx\r\n") {
		t.Errorf("bounce stored as %q", got)
	}
	if err := c.Quit(); err != nil {
		t.Error(err)
	}

	if got := e.results.get(Delivered); got != 4 {
		t.Errorf("delivered = %v, want 4", got)
	}
	if got := e.results.get(UnknownUser); got != 1 {
		t.Errorf("unknown_user = %v, want 1", got)
	}
	for _, want := range []string{`user=bob rcpt=BOB@other.test from=ann@example.org msgid=<1@example.org> size=`, `msg="lmtp: unknown recipient" conn=1 client=postfix.test rcpt=nobody@example.org`} {
		if !strings.Contains(e.log.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, e.log.String())
		}
	}
}

// A store failure for one recipient is a temporary error for that
// recipient alone; the others are delivered, and nothing is left in tmp/.
func TestStoreFailureIsTemporary(t *testing.T) {
	e := newTestEnv(t, nil, "alice", "bob", "dave")
	// Create the Maildirs, then break two of them: bob's new/ is gone,
	// dave's tmp/ is a file.
	for _, u := range []string{"alice", "bob", "dave"} {
		if _, err := e.st.User(u); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.RemoveAll(filepath.Join(e.maildir("bob"), "new")); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(e.maildir("dave"), "tmp")
	if err := os.RemoveAll(tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tmp, []byte("not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}

	c := e.client()
	_, data := e.send(c, "ann@example.org", []string{"alice@x.test", "bob@x.test", "dave@x.test"}, testMessage)
	if err, ok := data["alice@x.test"]; !ok || err != nil {
		t.Errorf("alice: %v", err)
	}
	for _, u := range []string{"bob@x.test", "dave@x.test"} {
		var se *smtp.SMTPError
		if !errors.As(data[u], &se) || se.Code != 451 || se.EnhancedCode[0] != 4 {
			t.Errorf("%s: %v, want 451", u, data[u])
			continue
		}
		if strings.Contains(se.Message, "/") || strings.Contains(se.Message, "directory") {
			t.Errorf("%s: reply leaks details: %q", u, se.Message)
		}
	}
	if got := lbtest.NewMail(t, e.maildir("alice")); len(got) != 1 {
		t.Errorf("alice has %d messages", len(got))
	}
	if got := e.results.get(StoreFailed); got != 2 {
		t.Errorf("store_failed = %v, want 2", got)
	}
	if !strings.Contains(e.log.String(), "delivery failed; the MTA will retry") {
		t.Errorf("failure not logged:\n%s", e.log.String())
	}

	// The admin repairs bob's Maildir; the MTA's retry gets through.
	if err := os.Mkdir(filepath.Join(e.maildir("bob"), "new"), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, data := e.send(c, "ann@example.org", []string{"bob@x.test"}, testMessage); data["bob@x.test"] != nil {
		t.Errorf("retry: %v", data["bob@x.test"])
	}
}

// TestDiskFull: a full disk is 452 4.3.1 for each recipient, so the MTA
// keeps the message and retries; with space again, the retry is stored.
func TestDiskFull(t *testing.T) {
	disk := lbtest.SmallDisk(t, 256<<10)
	e := newTestEnvIn(t, disk, nil, "alice")
	if _, err := e.st.User("alice"); err != nil {
		t.Fatal(err)
	}
	lbtest.Fill(t, disk)
	c := e.client()
	_, data := e.send(c, "ann@example.org", []string{"alice@x.test"}, testMessage)
	var se *smtp.SMTPError
	if !errors.As(data["alice@x.test"], &se) || se.Code != 452 || se.EnhancedCode != (smtp.EnhancedCode{4, 3, 1}) {
		t.Fatalf("full disk: %v, want 452 4.3.1", data["alice@x.test"])
	}
	if err := os.Remove(filepath.Join(disk, "filler")); err != nil {
		t.Fatal(err)
	}
	if _, data := e.send(c, "ann@example.org", []string{"alice@x.test"}, testMessage); data["alice@x.test"] != nil {
		t.Errorf("retry with space: %v", data["alice@x.test"])
	}
	if got := lbtest.NewMail(t, filepath.Join(disk, "alice", "Maildir")); len(got) != 1 {
		t.Errorf("alice has %d messages, want 1", len(got))
	}
}

// TestSpoolDiskFull: a message too big for memory, on a full spool disk,
// is 452 too.
func TestSpoolDiskFull(t *testing.T) {
	spool := lbtest.SmallDisk(t, 256<<10)
	e := newTestEnv(t, func(s *Server) { s.SpoolDir = spool }, "alice")
	lbtest.Fill(t, spool)
	big := "Subject: big\r\n\r\n" + strings.Repeat(strings.Repeat("x", 78)+"\r\n", 2*spoolInMemory/80)
	_, data := e.send(e.client(), "ann@example.org", []string{"alice@x.test"}, big)
	if code := smtpCode(data["alice@x.test"]); code != 452 {
		t.Errorf("full spool: %v, want 452", data["alice@x.test"])
	}
}

// A user added to the users file after the server loaded it is not
// bounced, though the server has not reloaded.
func TestUserAddedLater(t *testing.T) {
	e := newTestEnv(t, nil, "alice")
	e.addUser("erin")
	c := e.client()
	if _, data := e.send(c, "ann@example.org", []string{"erin@example.org"}, testMessage); data["erin@example.org"] != nil {
		t.Fatalf("erin: %v", data["erin@example.org"])
	}
	if got := lbtest.NewMail(t, e.maildir("erin")); len(got) != 1 {
		t.Errorf("erin has %d messages", len(got))
	}

	// An unreadable users file is a temporary failure, never a bounce.
	if err := os.Remove(e.usersFile); err != nil {
		t.Fatal(err)
	}
	rcptErrs, _ := e.send(c, "ann@example.org", []string{"frank@x.test"}, testMessage)
	if code := smtpCode(rcptErrs["frank@x.test"]); code != 451 {
		t.Errorf("frank with no users file: %v, want 451", rcptErrs["frank@x.test"])
	}
}

// A message bigger than the in-memory spool goes through a temp file, and
// every recipient gets all of it.
func TestLargeMessage(t *testing.T) {
	e := newTestEnv(t, nil, "alice", "bob")
	var b strings.Builder
	b.WriteString("Subject: large\r\n\r\n")
	for b.Len() < 3*spoolInMemory {
		b.WriteString("The quick brown fox jumps over the lazy dog, again and again.\r\n")
	}
	c := e.client()
	_, data := e.send(c, "ann@example.org", []string{"alice@x.test", "bob@x.test"}, b.String())
	if len(data) != 2 || data["alice@x.test"] != nil || data["bob@x.test"] != nil {
		t.Fatalf("%v", data)
	}
	for _, u := range []string{"alice", "bob"} {
		got := lbtest.NewMail(t, e.maildir(u))
		if len(got) != 1 || !strings.HasSuffix(got[0], "\r\n"+b.String()) || len(got[0]) != len(b.String())+len("Return-Path: <ann@example.org>\r\nDelivered-To: "+u+"@x.test\r\n") {
			t.Errorf("%s: %d messages, first %d bytes", u, len(got), len(got[0]))
		}
	}
	if ents, _ := os.ReadDir(e.srv.SpoolDir); len(ents) != 0 {
		t.Errorf("spool left behind: %v", ents)
	}
}

func TestResolveRecipient(t *testing.T) {
	e := newTestEnv(t, nil, "alice", "Bob", "carol@example.org", "carol")
	for _, tt := range []struct {
		addr, want string
	}{
		{"alice@example.org", "alice"},
		{"ALICE", "alice"},
		{"bob@x", "Bob"},
		{"carol@example.org", "carol@example.org"}, // the whole address first
		{"carol@other.test", "carol"},
		{"dave@example.org", ""},
		{"@example.org", ""},
	} {
		got, err := e.srv.resolve(tt.addr)
		if (tt.want == "") != (err == errNoSuchUser) || got != tt.want {
			t.Errorf("%q → %q (%v), want %q", tt.addr, got, err, tt.want)
		}
	}
}

// A client that sends bare LF gets headers with bare LF too.
func TestBareLF(t *testing.T) {
	e := newTestEnv(t, nil, "alice")
	c := e.raw()
	for _, step := range []struct{ send, want string }{
		{"LHLO x", "250 "},
		{"MAIL FROM:<a@b>", "250 "},
		{"RCPT TO:<alice@x.test>", "250 "},
		{"DATA", "354 "},
		{"Subject: lf\n\nbody\r\n.", "250 "}, // the end marker needs CRLF
	} {
		c.Send(step.send)
		for {
			line := c.Line()
			if len(line) > 3 && line[3] == '-' {
				continue
			}
			if !strings.HasPrefix(line, step.want) {
				t.Fatalf("after %q: %q, want %q", step.send, line, step.want)
			}
			break
		}
	}
	if got := lbtest.NewMail(t, e.maildir("alice")); len(got) != 1 || got[0] != "Return-Path: <a@b>\nDelivered-To: alice@x.test\nSubject: lf\n\nbody\r\n" {
		t.Errorf("stored %q", got)
	}
}

// TestBDAT: CHUNKING (RFC 3030), which go-smtp offers, works through the
// whole-line handling: a chunk without a line end is not held back.
func TestBDAT(t *testing.T) {
	e := newTestEnv(t, nil, "alice")
	c := e.raw()
	for _, cmd := range []string{"LHLO x", "MAIL FROM:<a@b>", "RCPT TO:<alice@x.test>"} {
		c.Send(cmd)
		for line := c.Line(); line[3] == '-'; line = c.Line() {
		}
	}
	c.Conn.Write([]byte("BDAT 16\r\nSubject: b\r\n\r\nab"))
	c.Expect("250 ")
	c.Conn.Write([]byte("BDAT 2 LAST\r\ncd")) // no line end after the chunk
	c.Expect("250 2.0.0 <alice@x.test> ")
	if got := lbtest.NewMail(t, e.maildir("alice")); len(got) != 1 || got[0] != "Return-Path: <a@b>\r\nDelivered-To: alice@x.test\r\nSubject: b\r\n\r\nabcd" {
		t.Errorf("stored %q", got)
	}
}
