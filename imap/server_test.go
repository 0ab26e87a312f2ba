package imap

import (
	"encoding/base64"
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

func TestAuthenticate(t *testing.T) {
	e := newEnv(t)
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	t.Run("PLAIN with SASL-IR", func(t *testing.T) {
		c := e.dialTLS().greeted()
		c.ok("a AUTHENTICATE PLAIN " + b64("\x00alice\x00secret"))
		c.ok("b SELECT INBOX")
	})
	t.Run("PLAIN with an authorization identity that is the user", func(t *testing.T) {
		c := e.dialTLS().greeted()
		c.ok("a AUTHENTICATE PLAIN " + b64("alice\x00alice\x00secret"))
	})
	t.Run("PLAIN acting as someone else", func(t *testing.T) {
		c := e.dialTLS().greeted()
		if got := c.fails("a AUTHENTICATE PLAIN "+b64("bob\x00alice\x00secret"), "NO"); !strings.Contains(got, "[AUTHORIZATIONFAILED]") {
			t.Errorf("%q", got)
		}
	})
	t.Run("PLAIN, wrong password", func(t *testing.T) {
		c := e.dialTLS().greeted()
		c.send("a AUTHENTICATE PLAIN")
		c.expect("+")
		c.send(b64("\x00alice\x00wrong"))
		if _, tagged := c.until("a"); tagged != "a NO [AUTHENTICATIONFAILED] Invalid credentials" {
			t.Errorf("%q", tagged)
		}
		c.ok("b LOGIN alice secret")
	})
	t.Run("LOGIN mechanism", func(t *testing.T) {
		c := e.dialTLS().greeted()
		c.send("a AUTHENTICATE LOGIN")
		if l := c.expect("+ "); l != "+ "+b64("Username:") {
			t.Errorf("%q", l)
		}
		c.send(b64("alice"))
		if l := c.expect("+ "); l != "+ "+b64("Password:") {
			t.Errorf("%q", l)
		}
		c.send(b64("secret"))
		if _, tagged := c.until("a"); !strings.HasPrefix(tagged, "a OK [CAPABILITY ") {
			t.Errorf("%q", tagged)
		}
	})
	t.Run("LOGIN mechanism with an initial response", func(t *testing.T) {
		c := e.dialTLS().greeted()
		c.send("a AUTHENTICATE LOGIN " + b64("alice"))
		c.expect("+ " + b64("Password:"))
		c.send(b64("secret"))
		c.until("a")
		c.ok("b NOOP")
	})
	t.Run("cancelled, garbage, unknown mechanism", func(t *testing.T) {
		c := e.dialTLS().greeted()
		c.send("a AUTHENTICATE PLAIN")
		c.expect("+")
		c.send("*")
		c.until("a")
		c.send("b AUTHENTICATE PLAIN")
		c.expect("+")
		c.send("!!!not base64")
		if _, tagged := c.until("b"); !strings.HasPrefix(tagged, "b BAD") {
			t.Errorf("%q", tagged)
		}
		c.fails("c AUTHENTICATE CRAM-MD5", "NO")
		c.fails("d LOGIN alice wrong", "NO [AUTHENTICATIONFAILED]")
		c.ok("e LOGIN alice secret")
		c.fails("f LOGIN alice secret", "BAD")
	})
}

func TestEnableIMAP4rev2(t *testing.T) {
	e := newEnv(t)
	e.appendMsg("alice", "INBOX", msg("x"), 0)
	c := e.login("alice")
	if u := c.ok("a ENABLE IMAP4rev2"); u[0] != "* ENABLED IMAP4rev2" {
		t.Errorf("%q", u)
	}
	u := c.ok("b SELECT INBOX")
	for _, l := range u {
		if strings.HasSuffix(l, " RECENT") || strings.Contains(l, "[UNSEEN ") {
			t.Errorf("IMAP4rev2 SELECT sends %q (RFC 9051 removed it)", l)
		}
	}
	if u := c.ok("c SEARCH ALL"); u[0] != `* ESEARCH (TAG "c") ALL 1` {
		t.Errorf("IMAP4rev2 SEARCH: %q", u)
	}
}

func TestBinaryAppend(t *testing.T) {
	// RFC 3516 §4.4: APPEND takes a literal8, whose content may hold NUL.
	e := newEnv(t)
	c := e.login("alice")
	m := "Subject: bin\r\nContent-Transfer-Encoding: binary\r\n\r\n\x00\x01\x02\xff\r\n"
	c.sendRaw("a APPEND INBOX ~{" + itoa(len(m)) + "+}\r\n" + m + "\r\n")
	if _, tagged := c.until("a"); !strings.HasPrefix(tagged, "a OK [APPENDUID") {
		t.Fatalf("%q", tagged)
	}
	c.ok("b SELECT INBOX")
	if u := c.ok("c FETCH 1 (BINARY.PEEK[1] BINARY.SIZE[1])"); len(u) != 1 || !strings.Contains(u[0], "BINARY[1] ~{6}\r\n\x00\x01\x02\xff\r\n") || !strings.Contains(u[0], "BINARY.SIZE[1] 6") {
		t.Errorf("%q", u)
	}
}
