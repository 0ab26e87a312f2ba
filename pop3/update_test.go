package pop3

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/letterbox-mail/letterbox/store"
)

// TestQuitExpunges: DELE marks, QUIT removes the files; the other messages
// and their UIDLs stay.
func TestQuitExpunges(t *testing.T) {
	ts := newTestServer(t)
	uidl := ts.fill("alice")
	runSteps(t, ts.login("alice"), []step{
		{"DELE 1", "+OK Marked to be deleted."},
		{"DELE 3", "+OK Marked to be deleted."},
		{"QUIT", "+OK Logging out, messages deleted."},
	})
	for i, want := range []bool{false, true, false} {
		if got := ts.messageFile("alice", testFiles[i]) != ""; got != want {
			t.Errorf("file of message %d exists: %v, want %v", i+1, got, want)
		}
	}
	runSteps(t, ts.login("alice"), []step{
		{"UIDL", fmt.Sprintf("+OK\n1 %s\n.", uidl[1])},
		{"QUIT", "+OK Logging out."},
	})
}

// TestNoUpdateWithoutQuit: RFC 1939 §6, a session that ends without QUIT
// expunges nothing, whether the client hangs up, goes idle or the QUIT
// comes before login.
func TestNoUpdateWithoutQuit(t *testing.T) {
	ts := newTestServer(t, func(s *testSetup) { s.srv.IdleTimeout = 200 * time.Millisecond })
	ts.fill("alice")

	c := ts.login("alice")
	runSteps(t, c, []step{{"DELE 1", "+OK Marked to be deleted."}, {"RETR 2", "+OK …"}})
	c.close()

	// The lock goes when the server notices; then the same again, ended
	// by the idle timeout.
	var c2 *client
	eventually(t, "the lock to be released", func() bool {
		c2 = ts.dial()
		c2.send("USER alice")
		c2.expect("+OK")
		c2.send("PASS secret")
		return c2.readLine() == "+OK Logged in."
	})
	c2.send("DELE 2")
	c2.expect("+OK Marked to be deleted.")
	c2.expect("-ERR Disconnected for inactivity.")
	c2.expectClosed()

	msgs, _ := ts.inbox("alice")
	if len(msgs) != 3 {
		t.Fatalf("INBOX has %d messages, want 3", len(msgs))
	}
	for _, m := range msgs {
		if m.Flags.Has(store.FlagSeen) {
			t.Errorf("UID %d got \\Seen without QUIT", m.UID)
		}
	}
}

// TestQuitSetsSeen: RETR'd messages get \Seen at QUIT, TOP'd ones do not,
// and RSET forgets the RETRs (Dovecot's behaviour).
func TestQuitSetsSeen(t *testing.T) {
	ts := newTestServer(t)
	ts.fill("alice")
	c := ts.login("alice")
	c.send("RETR 1")
	c.expect("+OK …")
	c.readMulti()
	c.send("RSET")
	c.expect("+OK")
	c.send("RETR 2")
	c.expect("+OK …")
	c.readMulti()
	c.send("TOP 3 1")
	c.expect("+OK")
	c.readMulti()
	c.send("QUIT")
	c.expect("+OK Logging out.")
	c.expectClosed()

	msgs, _ := ts.inbox("alice")
	for i, want := range []bool{false, true, false} {
		if got := msgs[i].Flags.Has(store.FlagSeen); got != want {
			t.Errorf("message %d \\Seen = %v, want %v", i+1, got, want)
		}
	}
}

// TestExpungeReachesOtherSessions: the expunge at QUIT goes through the
// store's change feed, which is how IMAP sessions of the mailbox learn of
// it.
func TestExpungeReachesOtherSessions(t *testing.T) {
	ts := newTestServer(t)
	ts.fill("alice")
	msgs, _ := ts.inbox("alice")
	u, err := ts.store.User("alice")
	if err != nil {
		t.Fatal(err)
	}
	m, err := u.Open(context.Background(), store.Inbox)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	changes := make(chan store.Change, 10)
	_, cancel := m.Watch(func(c store.Change) { changes <- c })
	defer cancel()

	runSteps(t, ts.login("alice"), []step{{"DELE 2", "+OK Marked to be deleted."}, {"QUIT", "+OK Logging out, messages deleted."}})
	select {
	case c := <-changes:
		if c.Kind != store.Expunged || c.UID != msgs[1].UID || c.Origin == nil {
			t.Errorf("change %+v, want Expunged of UID %d with an origin", c, msgs[1].UID)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no change in the feed")
	}
}

// TestQuitExpungeFails: when a marked message cannot be removed, QUIT says
// so with [SYS/TEMP] instead of claiming success.
func TestQuitExpungeFails(t *testing.T) {
	ts := newTestServer(t)
	ts.fill("alice")
	c := ts.login("alice")
	c.send("DELE 1")
	c.expect("+OK Marked to be deleted.")
	c.send("DELE 2")
	c.expect("+OK Marked to be deleted.")
	// Replace message 1's file by a non-empty directory of the same
	// name: removing it fails even for root (CI runs as root, so file
	// modes cannot make it fail). This relies on the store indexing
	// whatever cur/ holds; if it ever skips directories, this test needs
	// another way to make the removal fail.
	p := ts.messageFile("alice", testFiles[0])
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(p, "x"), 0o700); err != nil {
		t.Fatal(err)
	}
	c.send("QUIT")
	c.expect("-ERR [SYS/TEMP] …")
	c.expectClosed()
	if ts.messageFile("alice", testFiles[0]) == "" {
		t.Error("message 1 is gone")
	}
}

// TestSavedUIDL: a P field in dovecot-uidlist (a UIDL Dovecot kept from an
// earlier server) wins over the default form.
func TestSavedUIDL(t *testing.T) {
	ts := newTestServer(t)
	root := ts.root("alice")
	for _, n := range []string{"1600000000.M1P1.old:2,S", "1600000001.M2P1.old:2,"} {
		if err := os.WriteFile(filepath.Join(root, "cur", n), []byte("Subject: x\r\n\r\nx\r\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	uidlist := "3 V1234 N3 G0123456789abcdef0123456789abcdef\n" +
		"1 P+OldServer.UIDL-1 :1600000000.M1P1.old\n" +
		"2 W17 :1600000001.M2P1.old\n"
	if err := os.WriteFile(filepath.Join(root, "dovecot-uidlist"), []byte(uidlist), 0o600); err != nil {
		t.Fatal(err)
	}
	runSteps(t, ts.login("alice"), []step{
		{"UIDL", "+OK\n1 +OldServer.UIDL-1\n2 00000002000004d2\n."},
		{"QUIT", "+OK Logging out."},
	})
}

// TestExpungedElsewhere: a message another session (IMAP) expunged after
// login keeps its number; RETR says it is gone, and a DELE of it does not
// make QUIT fail.
func TestExpungedElsewhere(t *testing.T) {
	ts := newTestServer(t)
	ts.fill("alice")
	c := ts.login("alice")
	u, err := ts.store.User("alice")
	if err != nil {
		t.Fatal(err)
	}
	m, err := u.Open(context.Background(), store.Inbox)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	msgs, _ := ts.inbox("alice")
	if _, err := m.Expunge(context.Background(), store.ExpungeOptions{UIDs: []uint32{msgs[1].UID}}); err != nil {
		t.Fatal(err)
	}
	runSteps(t, c, []step{
		{"STAT", "+OK 3 …"},
		{"RETR 2", "-ERR Message was removed by another session."},
		{"TOP 2 0", "-ERR Message was removed by another session."},
		{"RETR 3", "+OK …"},
	})
	c.readMulti()
	runSteps(t, c, []step{
		{"DELE 2", "+OK Marked to be deleted."},
		{"DELE 1", "+OK Marked to be deleted."},
		{"QUIT", "+OK Logging out, messages deleted."},
	})
	if msgs, _ := ts.inbox("alice"); len(msgs) != 1 {
		t.Errorf("INBOX has %d messages, want 1", len(msgs))
	}
}
