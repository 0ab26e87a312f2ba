package pop3

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
)

// The test maildrop: three messages that exercise dot-stuffing, bare-LF
// files and TOP.
const (
	msgDots = "From: Dot <dot@example.org>\r\n" +
		"Subject: dots\r\n" +
		"\r\n" +
		".\r\n" +
		"..\r\n" +
		".leading dot\r\n" +
		"middle . dot\r\n" +
		". \r\n" +
		"last line\r\n"
	msgLF = "From: LF <lf@example.org>\n" +
		"Subject: bare LF\n" +
		"\n" +
		"line 1\n" +
		".line 2\n" +
		"\n" +
		"line 4\n"
	msgLong = "From: Long <long@example.org>\r\n" +
		"Subject: five lines\r\n" +
		"X-Folded: a\r\n" +
		"\tb\r\n" +
		"\r\n" +
		"one\r\ntwo\r\nthree\r\nfour\r\nfive\r\n"
)

// Names of the three files, in delivery (and so UID) order.
var testFiles = []string{"1700000001.M1P1.mx", "1700000002.M2P1.mx", "1700000003.M3P1.mx"}

// fill delivers the three test messages to user and returns the UIDL each
// will have.
func (ts *testServer) fill(user string) (uidls []string) {
	ts.t.Helper()
	for i, body := range []string{msgDots, msgLF, msgLong} {
		ts.deliver(user, testFiles[i], body)
	}
	msgs, uv := ts.inbox(user)
	if len(msgs) != 3 {
		ts.t.Fatalf("inbox has %d messages, want 3", len(msgs))
	}
	for _, m := range msgs {
		uidls = append(uidls, fmt.Sprintf("%08x%08x", m.UID, uv))
	}
	return uidls
}

type step struct{ send, expect string }

func runSteps(t *testing.T, c *client, steps []step) {
	t.Helper()
	for _, s := range steps {
		c.send(s.send)
		c.expect(s.expect)
	}
}

func plain(authz, user, pass string) string {
	return base64.StdEncoding.EncodeToString([]byte(authz + "\x00" + user + "\x00" + pass))
}

const (
	capaBefore = "+OK\nCAPA\nTOP\nUIDL\nRESP-CODES\nPIPELINING\nAUTH-RESP-CODE\nSTLS\nUSER\nSASL PLAIN\n."
	capaAfter  = "+OK\nCAPA\nTOP\nUIDL\nRESP-CODES\nPIPELINING\nAUTH-RESP-CODE\n."
)

// TestTransactionState runs every command in the TRANSACTION state on the
// test maildrop.
func TestTransactionState(t *testing.T) {
	ts := newTestServer(t)
	uidl := ts.fill("alice")
	size := []int{len(msgDots), len(crlf(msgLF)), len(msgLong)}
	total := size[0] + size[1] + size[2]
	list := fmt.Sprintf("+OK 3 messages:\n1 %d\n2 %d\n3 %d\n.", size[0], size[1], size[2])
	uidlAll := fmt.Sprintf("+OK\n1 %s\n2 %s\n3 %s\n.", uidl[0], uidl[1], uidl[2])
	already := "-ERR Not allowed after login."
	tests := []struct {
		name  string
		steps []step
	}{
		{"CAPA", []step{{"CAPA", capaAfter}}},
		{"authorization commands", []step{
			{"USER alice", already}, {"PASS secret", already}, {"AUTH", already},
			{"AUTH PLAIN " + plain("", "alice", "secret"), already}, {"STLS", already},
		}},
		{"STAT", []step{{"STAT", fmt.Sprintf("+OK 3 %d", total)}, {"STAT 1", "-ERR No arguments allowed."}}},
		{"LIST", []step{{"LIST", list}, {"list", list}}},
		{"LIST n", []step{
			{"LIST 2", fmt.Sprintf("+OK 2 %d", size[1])},
			{"LIST 0", "-ERR No such message."}, {"LIST 4", "-ERR No such message."},
			{"LIST 99999999999", "-ERR No such message."},
			{"LIST 99999999999999999999999999", "-ERR No such message."},
			{"LIST x", "-ERR Invalid message number."}, {"LIST -1", "-ERR Invalid message number."},
			{"LIST +1", "-ERR Invalid message number."}, {"LIST 1x", "-ERR Invalid message number."},
			{"LIST 1 2", "-ERR Too many arguments."},
			{"LIST  2", fmt.Sprintf("+OK 2 %d", size[1])},
		}},
		{"UIDL", []step{{"UIDL", uidlAll}, {"UIDL 3", "+OK 3 " + uidl[2]}, {"UIDL 4", "-ERR No such message."}, {"UIDL y", "-ERR Invalid message number."}}},
		{"RETR errors", []step{
			{"RETR", "-ERR Missing argument."}, {"RETR 0", "-ERR No such message."},
			{"RETR 99999999999", "-ERR No such message."}, {"RETR x", "-ERR Invalid message number."},
			{"RETR 1 2", "-ERR Too many arguments."},
		}},
		{"TOP errors", []step{
			{"TOP", "-ERR Missing arguments."}, {"TOP 1", "-ERR Missing arguments."},
			{"TOP 1 x", "-ERR Invalid number of lines."}, {"TOP 1 -1", "-ERR Invalid number of lines."},
			{"TOP 0 1", "-ERR No such message."}, {"TOP x 1", "-ERR Invalid message number."},
			{"TOP 1 2 3", "-ERR Too many arguments."},
		}},
		{"TOP 3 0", []step{{"TOP 3 0", "+OK\nFrom: Long <long@example.org>\nSubject: five lines\nX-Folded: a\n\tb\n\n."}}},
		{"TOP 3 2", []step{{"TOP 3 2", "+OK\nFrom: Long <long@example.org>\nSubject: five lines\nX-Folded: a\n\tb\n\none\ntwo\n."}}},
		{"TOP 3 huge", []step{{"TOP 3 99999999999999999999", "+OK\nFrom: Long <long@example.org>\nSubject: five lines\nX-Folded: a\n\tb\n\none\ntwo\nthree\nfour\nfive\n."}}},
		{"TOP dot-stuffed", []step{{"TOP 1 1", "+OK\nFrom: Dot <dot@example.org>\nSubject: dots\n\n..\n."}}},
		{"TOP LF file", []step{{"TOP 2 2", "+OK\nFrom: LF <lf@example.org>\nSubject: bare LF\n\nline 1\n..line 2\n."}}},
		{"DELE RSET", []step{
			{"DELE 1", "+OK Marked to be deleted."},
			{"DELE 1", "-ERR Message is deleted."},
			{"RETR 1", "-ERR Message is deleted."}, {"TOP 1 0", "-ERR Message is deleted."},
			{"LIST 1", "-ERR Message is deleted."}, {"UIDL 1", "-ERR Message is deleted."},
			{"STAT", fmt.Sprintf("+OK 2 %d", size[1]+size[2])},
			{"LIST", fmt.Sprintf("+OK 2 messages:\n2 %d\n3 %d\n.", size[1], size[2])},
			{"UIDL", fmt.Sprintf("+OK\n2 %s\n3 %s\n.", uidl[1], uidl[2])},
			{"DELE 3", "+OK Marked to be deleted."},
			{"RSET", "+OK"},
			{"STAT", fmt.Sprintf("+OK 3 %d", total)},
			{"LIST", list},
			{"RSET x", "-ERR No arguments allowed."},
		}},
		{"DELE errors", []step{
			{"DELE", "-ERR Missing argument."}, {"DELE 0", "-ERR No such message."},
			{"DELE 4", "-ERR No such message."}, {"DELE z", "-ERR Invalid message number."},
		}},
		{"NOOP", []step{{"NOOP", "+OK"}, {"NOOP x", "-ERR No arguments allowed."}}},
		{"unknown", []step{{"XYZZY", "-ERR Unknown command."}, {"LAST", "-ERR Unknown command."}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ts.login("alice")
			runSteps(t, c, tt.steps)
			// No DELE survives these sessions: they end with RSET
			// or never mark anything for good.
			c.send("RSET")
			c.expect("+OK")
			c.send("QUIT")
			c.expect("+OK Logging out.")
			c.expectClosed()
		})
	}
	if msgs, _ := ts.inbox("alice"); len(msgs) != 3 {
		t.Fatalf("after the sessions INBOX has %d messages, want 3", len(msgs))
	}
}

// TestRETRByteExact checks RETR against the files: dot-stuffing, bare LF
// sent as CRLF, the octet count, and the exact wire bytes.
func TestRETRByteExact(t *testing.T) {
	ts := newTestServer(t)
	ts.fill("alice")
	c := ts.login("alice")
	for i, body := range []string{msgDots, msgLF, msgLong} {
		want := crlf(body)
		c.send(fmt.Sprintf("RETR %d", i+1))
		c.expect(fmt.Sprintf("+OK %d octets", len(want)))
		wire := c.readMulti()
		if got := unstuff(t, wire); string(got) != want {
			t.Errorf("RETR %d: got %q, want %q", i+1, got, want)
		}
		// And the wire form itself, stuffed by hand.
		var stuffed strings.Builder
		for _, line := range strings.SplitAfter(want, "\r\n") {
			if strings.HasPrefix(line, ".") {
				stuffed.WriteString(".")
			}
			stuffed.WriteString(line)
		}
		stuffed.WriteString(".\r\n")
		if string(wire) != stuffed.String() {
			t.Errorf("RETR %d wire form: got %q, want %q", i+1, wire, stuffed.String())
		}
	}
	c.send("QUIT")
	c.expect("+OK Logging out.")
}

// TestRETRNoFinalNewline: a file that does not end in a line end still
// gives a well-formed reply (the terminator goes on a line of its own).
func TestRETRNoFinalNewline(t *testing.T) {
	ts := newTestServer(t)
	const body = "Subject: x\n\nno newline at the end"
	ts.deliver("alice", "1700000001.M1P1.mx", body)
	c := ts.login("alice")
	c.send("RETR 1")
	c.expect(fmt.Sprintf("+OK %d octets", len(crlf(body))))
	c.expect("Subject: x\n\nno newline at the end\n.")
	c.send("TOP 1 5")
	c.expect("+OK\nSubject: x\n\nno newline at the end\n.")
	c.send("QUIT")
	c.expect("+OK Logging out.")
}

// TestEmptyMaildrop: a user with no mail.
func TestEmptyMaildrop(t *testing.T) {
	ts := newTestServer(t)
	runSteps(t, ts.login("bob"), []step{
		{"STAT", "+OK 0 0"}, {"LIST", "+OK 0 messages:\n."}, {"UIDL", "+OK\n."},
		{"RETR 1", "-ERR No such message."}, {"QUIT", "+OK Logging out."},
	})
}
