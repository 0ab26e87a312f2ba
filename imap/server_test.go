package imap

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestGreetingAndLogin(t *testing.T) {
	e := newEnv(t)
	c := e.dial()
	g := c.expect("* OK [CAPABILITY ")
	if strings.Contains(g, "Letterbox") || strings.Contains(strings.ToLower(g), "version") {
		t.Errorf("greeting names the software: %q", g)
	}
	c.ok("a1 LOGIN alice secret")
	u := c.ok("a2 LIST \"\" *")
	t.Logf("%q", u)
	u = c.ok("a3 SELECT INBOX")
	t.Logf("%q", u)
	e.appendMsg("alice", "INBOX", "Subject: hi\r\n\r\nhello\r\n", 0)
	u = c.ok("a4 NOOP")
	t.Logf("%q", u)
	u = c.ok("a5 FETCH 1:* (UID FLAGS RFC822.SIZE BODY[] ENVELOPE BODYSTRUCTURE)")
	t.Logf("%q", u)
	c.ok("a6 LOGOUT")
}

func TestSearchSmoke(t *testing.T) {
	e := newEnv(t)
	e.appendMsg("alice", "INBOX", "Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\nFrom: Bob <bob@example.org>\r\n\r\nhello world\r\n", 0)
	e.appendMsg("alice", "INBOX", "Subject: other\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nK=E4se\r\n", 0)
	c := e.login("alice")
	c.ok("a SELECT INBOX")
	for _, q := range []string{"SEARCH SUBJECT \"grüße\"", "SEARCH CHARSET UTF-8 BODY \"käse\"", "SEARCH TEXT bob", "UID SEARCH RETURN (MIN MAX COUNT) ALL", "SEARCH FROM bob NOT BODY \"käse\"", "SEARCH OR SUBJECT other SUBJECT \"grüße\"", "SEARCH 2:*", "SEARCH UID 5:*"} {
		u := c.ok("s " + q)
		t.Logf("%s → %q", q, u)
	}
}

func TestUTF8Names(t *testing.T) {
	e := newEnv(t)
	u := e.login("alice")
	u.ok("a1 ENABLE UTF8=ACCEPT")
	u.ok(`a2 CREATE "Ärger & Co"`)
	u.ok(`a3 CREATE "Entwürfe/A&-B"`)
	list := u.ok(`a4 LIST "" "*"`)
	for _, want := range []string{`* LIST (\HasNoChildren) "/" "Ärger & Co"`, `* LIST (\HasNoChildren) "/" "Entwürfe/A&-B"`} {
		if !contains(list, want) {
			t.Errorf("UTF-8 LIST lacks %q: %q", want, list)
		}
	}
	if st := u.ok(`a5 STATUS "Ärger & Co" (MESSAGES)`); st[0] != `* STATUS "Ärger & Co" (MESSAGES 0)` {
		t.Errorf("STATUS: %q", st)
	}
	u.ok(`a6 SELECT "Ärger & Co"`)
	u.ok(`a7 LIST "" "Ärger*"`)

	// Without UTF8=ACCEPT, the same names in modified UTF-7 (RFC 3501 §5.1.3).
	m := e.login("alice")
	list = m.ok(`b1 LIST "" "*"`)
	for _, want := range []string{`* LIST (\HasNoChildren) "/" "&AMQ-rger &- Co"`, `* LIST (\HasNoChildren) "/" "Entw&APw-rfe/A&--B"`, `* LIST (\Noselect \HasChildren) "/" "Entw&APw-rfe"`} {
		if !contains(list, want) {
			t.Errorf("modified UTF-7 LIST lacks %q: %q", want, list)
		}
	}
	m.ok(`b2 SELECT "&AMQ-rger &- Co"`)
	// On disk, as Dovecot writes them.
	if _, err := os.Stat(filepath.Join(e.user("alice").Root(), ".&AMQ-rger &- Co")); err != nil {
		t.Error(err)
	}
}
