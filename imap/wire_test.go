package imap

import (
	"strings"
	"testing"
	"time"
)

// The traps of imapserver beta.8 (DESIGN.md), each fixed in wireConn and
// shown here on the wire.

func TestLiteralTraps(t *testing.T) {
	e := newEnv(t, withServer(func(s *Server) { s.AppendLimit = 10000 }))
	c := e.login("alice")

	t.Run("4 GB synchronizing APPEND literal", func(t *testing.T) {
		got := c.fails("a1 APPEND INBOX {4294967296}", "NO")
		if !strings.Contains(got, "[TOOBIG]") {
			t.Errorf("got %q, want NO [TOOBIG]", got)
		}
		c.ok("a2 NOOP") // no continuation was sent, nothing was read
	})
	t.Run("synchronizing literal over 4 KiB outside APPEND gets an answer", func(t *testing.T) {
		// imapserver sends neither "+" nor a reply: the client would hang.
		got := c.fails("b1 SELECT {5000}", "NO")
		if !strings.Contains(got, "[TOOBIG]") {
			t.Errorf("got %q", got)
		}
		c.ok("b2 NOOP")
	})
	t.Run("non-synchronizing literal over the limit is drained", func(t *testing.T) {
		// Its bytes look like commands; imapserver would run them.
		payload := strings.Repeat("x1 LOGOUT\r\n", 500) // 5500 bytes
		c.sendRaw("c1 SELECT {" + itoa(len(payload)) + "+}\r\n" + payload + "\r\n")
		_, tagged := c.until("c1")
		if !strings.HasPrefix(tagged, "c1 NO [TOOBIG]") {
			t.Errorf("got %q", tagged)
		}
		c.ok("c2 NOOP")
	})
	t.Run("APPEND over APPENDLIMIT with LITERAL+ is drained", func(t *testing.T) {
		msg := "Subject: big\r\n\r\n" + strings.Repeat("z LOGOUT\r\n", 2000)
		c.sendRaw("d1 APPEND INBOX (\\Seen) {" + itoa(len(msg)) + "+}\r\n" + msg + "\r\n")
		_, tagged := c.until("d1")
		if !strings.HasPrefix(tagged, "d1 NO [TOOBIG]") {
			t.Errorf("got %q", tagged)
		}
		c.ok("d2 NOOP")
	})
	t.Run("4 GB non-synchronizing literal ends the connection", func(t *testing.T) {
		c2 := e.login("alice")
		c2.sendRaw("e1 APPEND INBOX {4294967296+}\r\nSubject: x\r\n")
		c2.expect("* BYE")
		c2.closed()
	})
	t.Run("literal size that is no number", func(t *testing.T) {
		c.fails("f1 SELECT {99999999999999999999999}", "BAD")
		c.ok("f2 NOOP")
	})
	t.Run("APPEND within the limit still works, literal+ and sync", func(t *testing.T) {
		msg := "Subject: ok\r\n\r\nfine\r\n"
		c.sendRaw("g1 APPEND INBOX {" + itoa(len(msg)) + "+}\r\n" + msg + "\r\n")
		if _, tagged := c.until("g1"); !strings.HasPrefix(tagged, "g1 OK [APPENDUID ") {
			t.Errorf("got %q", tagged)
		}
		c.send("g2 APPEND INBOX {" + itoa(len(msg)) + "}")
		c.expect("+ ")
		c.sendRaw(msg + "\r\n")
		if _, tagged := c.until("g2"); !strings.HasPrefix(tagged, "g2 OK [APPENDUID ") {
			t.Errorf("got %q", tagged)
		}
	})
	t.Run("small literals in other commands", func(t *testing.T) {
		c.send("h1 SELECT {5}")
		c.expect("+ ")
		c.sendRaw("INBOX\r\n")
		if _, tagged := c.until("h1"); !strings.HasPrefix(tagged, "h1 OK") {
			t.Errorf("got %q", tagged)
		}
		c.sendRaw("h2 STATUS {5+}\r\nINBOX (MESSAGES)\r\n")
		u, tagged := c.until("h2")
		if !strings.HasPrefix(tagged, "h2 OK") || len(u) != 1 {
			t.Errorf("got %q %q", u, tagged)
		}
	})
	t.Run("literal over the limit after a first one", func(t *testing.T) {
		// The command has taken a literal already; the second one is
		// refused like a first one would be: not sent (synchronizing)
		// or dropped (LITERAL+). (imapserver answered BAD here, having
		// been handed an empty line by the wrapper.)
		c.send("k1 RENAME {1}")
		c.expect("+ ")
		c.send("x {5000}")
		_, tagged := c.until("k1")
		if !strings.HasPrefix(tagged, "k1 NO [TOOBIG]") {
			t.Errorf("got %q", tagged)
		}
		c.ok("k2 NOOP")
		payload := strings.Repeat("k9 LOGOUT\r\n", 500)
		c.sendRaw("k3 STATUS {5+}\r\nINBOX {" + itoa(len(payload)) + "+}\r\n" + payload + "\r\n")
		_, tagged = c.until("k3")
		if !strings.HasPrefix(tagged, "k3 BAD") { // no literal belongs there
			t.Errorf("got %q", tagged)
		}
		c.ok("k4 NOOP")
	})
	t.Run("command rejected by imapserver before its literal", func(t *testing.T) {
		// FETCH takes no literal: imapserver answers BAD without "+", and
		// the client does not send it.
		c.fails("i1 FETCH {3}", "BAD")
		c.ok("i2 NOOP")
		// With LITERAL+ the bytes come anyway and must not run.
		c.sendRaw("i3 FETCH {10+}\r\nx4 LOGOUT\r\n")
		_, tagged := c.until("i3")
		if !strings.HasPrefix(tagged, "i3 BAD") {
			t.Errorf("got %q", tagged)
		}
		c.ok("i4 NOOP")
	})
}

func TestLongLine(t *testing.T) {
	e := newEnv(t, withServer(func(s *Server) { s.MaxLineLength = 1000 }))
	c := e.login("alice")
	c.ok("a1 SELECT INBOX")
	c.send("a2 FETCH 1 (" + strings.Repeat("FLAGS ", 200) + ")")
	c.expect("* BYE Line too long")
	c.closed()
	// The server and others are fine.
	e.login("alice").ok("b1 NOOP")
}

func TestLongLineDefaultLimit(t *testing.T) {
	e := newEnv(t)
	c := e.login("alice")
	// imapserver's own limit is 50 KiB; ours is reached first.
	c.send("a1 NOOP " + strings.Repeat("x", maxCommandSize+10))
	c.expect("* BYE Line too long")
	c.closed()
}

func TestIDBeforeLogin(t *testing.T) {
	e := newEnv(t)
	c := e.dial().greeted()
	u, tagged := c.cmd(`a1 ID ("name" "Thunderbird" "version" "153.0")`)
	if tagged != "a1 OK ID completed" || len(u) != 1 || u[0] != "* ID NIL" {
		t.Errorf("ID: %q %q", u, tagged)
	}
	c.ok("a2 LOGIN alice secret")
	c.ok("a3 ID NIL")
}

func TestUnknownCommandBeforeLogin(t *testing.T) {
	// imapserver's cross-protocol protection: kept.
	e := newEnv(t)
	c := e.dial().greeted()
	c.send("GET / HTTP/1.1")
	c.expect("GET BAD")
	c.expect("* BYE")
	c.closed()
}

func TestCapabilities(t *testing.T) {
	const after = "IMAP4rev1 IMAP4rev2 LITERAL+ SASL-IR ENABLE IDLE UNSELECT NAMESPACE UIDPLUS MOVE " +
		"ESEARCH SEARCHRES LIST-EXTENDED LIST-STATUS SPECIAL-USE CREATE-SPECIAL-USE CHILDREN " +
		"STATUS=SIZE BINARY UNAUTHENTICATE UTF8=ACCEPT ID MULTIAPPEND CATENATE WITHIN PREVIEW SAVEDATE CONTEXT=SEARCH " +
		"SORT SORT=DISPLAY ESORT THREAD=REFERENCES THREAD=ORDEREDSUBJECT CONTEXT=SORT NOTIFY CONDSTORE QRESYNC APPENDLIMIT=52428800 COMPRESS=DEFLATE"
	t.Run("plain, insecure auth not allowed", func(t *testing.T) {
		e := newEnv(t, withServer(func(s *Server) { s.AllowInsecureAuth = false }))
		c := e.dial()
		g := c.expect("* OK ")
		if want := "* OK [CAPABILITY IMAP4rev1 IMAP4rev2 SASL-IR LITERAL+ ID STARTTLS LOGINDISABLED] "; !strings.HasPrefix(g, want) {
			t.Errorf("greeting %q, want %q", g, want)
		}
		u := c.ok("a1 CAPABILITY")
		if u[0] != "* CAPABILITY IMAP4rev1 IMAP4rev2 SASL-IR LITERAL+ ID STARTTLS LOGINDISABLED" {
			t.Errorf("got %q", u)
		}
		got := c.fails("a2 LOGIN alice secret", "NO")
		if !strings.Contains(got, "[PRIVACYREQUIRED]") {
			t.Errorf("got %q", got)
		}
		c.fails("a3 AUTHENTICATE PLAIN AGFsaWNlAHNlY3JldA==", "NO")
		// STARTTLS, then the client asks again (RFC 3501 §6.2.1).
		c.ok("a4 STARTTLS")
		tc := tlsClient(t, c, e)
		u = tc.ok("b1 CAPABILITY")
		if u[0] != "* CAPABILITY IMAP4rev1 IMAP4rev2 SASL-IR LITERAL+ ID AUTH=PLAIN AUTH=LOGIN" {
			t.Errorf("after STARTTLS: %q", u)
		}
		_, tagged := tc.cmd("b2 LOGIN alice secret")
		if want := "b2 OK [CAPABILITY " + after + "] "; !strings.HasPrefix(tagged, want) {
			t.Errorf("login: %q, want %q", tagged, want)
		}
		u = tc.ok("b3 CAPABILITY")
		if u[0] != "* CAPABILITY "+after {
			t.Errorf("after login: %q", u)
		}
		tc.fails("b4 STARTTLS", "BAD")
	})
	t.Run("implicit TLS", func(t *testing.T) {
		e := newEnv(t, withServer(func(s *Server) { s.AllowInsecureAuth = false }))
		c := e.dialTLS()
		if want := "* OK [CAPABILITY IMAP4rev1 IMAP4rev2 SASL-IR LITERAL+ ID AUTH=PLAIN AUTH=LOGIN] "; !strings.HasPrefix(c.line(), want) {
			t.Errorf("greeting, want %q", want)
		}
		c.ok("a1 LOGIN alice secret")
	})
	t.Run("loopback allowed", func(t *testing.T) {
		e := newEnv(t, withServer(func(s *Server) { s.AllowInsecureAuth, s.AllowInsecureLoopback = false, true }))
		c := e.dial()
		if g := c.line(); !strings.Contains(g, "AUTH=PLAIN") || strings.Contains(g, "LOGINDISABLED") {
			t.Errorf("greeting %q", g)
		}
		c.ok("a1 LOGIN alice secret")
	})
	t.Run("no TLS config: no STARTTLS", func(t *testing.T) {
		e := newEnv(t, withServer(func(s *Server) { s.TLSConfig = nil }))
		c := e.dial()
		if g := c.line(); strings.Contains(g, "STARTTLS") {
			t.Errorf("greeting %q", g)
		}
		c.fails("a1 STARTTLS", "NO")
	})
}

func TestSTARTTLSDropsInjectedCommands(t *testing.T) {
	e := newEnv(t, withServer(func(s *Server) { s.AllowInsecureAuth = false }))
	c := e.dial().greeted()
	// A man in the middle appends a command to STARTTLS in the clear.
	c.sendRaw("a1 STARTTLS\r\nx1 LOGIN alice secret\r\n")
	c.expect("a1 OK")
	tc := tlsClient(t, c, e)
	u := tc.ok("b1 CAPABILITY")
	if strings.Contains(u[0], "APPENDLIMIT") {
		t.Fatal("the injected LOGIN ran")
	}
}

func TestBadInput(t *testing.T) {
	e := newEnv(t)
	other := e.login("bob")
	other.ok("o1 SELECT INBOX")
	c := e.dial().greeted()
	c.fails("a1 SELECT INBOX", "BAD") // not logged in
	c.fails("a2 FETCH 1 FLAGS", "BAD")
	c.ok("a3 LOGIN alice secret")
	c.fails("a4 FETCH 1 FLAGS", "BAD") // nothing selected
	c.fails("a5 SELECT \"../../etc\"", "NO")
	c.fails("a6 SELECT \"../bob/Maildir\"", "NO")
	c.fails("a7 SELECT \"~bob/INBOX\"", "NO")
	c.fails("a8 SELECT \"#shared/bob\"", "NO")
	c.fails("a9 CREATE \"../../../tmp/x\"", "NO")
	c.fails("a10 RENAME INBOX \"../escape\"", "NO")
	c.fails("a10b RENAME INBOX \"&Jjo\"", "NO") // target not modified UTF-7
	c.fails("a11 SELECT \"a\x00b\"", "BAD")
	c.ok("b1 SELECT INBOX")
	c.fails("b2 FETCH 1 (FLAGS", "BAD")
	c.fails("b3 FETCH 1 ((((FLAGS))", "BAD")
	c.fails("b4 SEARCH ((((((((ALL", "BAD")
	c.fails("b5 SEARCH "+strings.Repeat("(", 2000)+"ALL"+strings.Repeat(")", 2000), "BAD")
	c.fails("b6 STORE 1 +FLAGS (\\Bogus)", "BAD")
	c.fails("b7 FETCH 99999999999 FLAGS", "BAD")
	c.fails("b8 UID FETCH 1:* (BODY[1.2.3.4.5.6.7.8.9.10.11.12.13.14.15.16.17.18.19.20]", "BAD")
	c.fails("b9 SEARCH SINCE 32-Foo-2020", "BAD")
	c.fails("b10 APPEND INBOX \"99-Xyz-2020 99:00:00 +0000\" {3+}\r\nabc", "BAD")
	c.ok("b11 NOOP")
	other.ok("o2 NOOP")
	e.login("alice").ok("c1 NOOP")
}

func TestTooManyBadCommands(t *testing.T) {
	e := newEnv(t, withServer(func(s *Server) { s.MaxBadCommands = 3 }))
	c := e.login("alice")
	for i := 0; i < 3; i++ {
		c.fails("a FETCH", "BAD")
	}
	c.send("b NOOP")
	c.expect("* BYE Too many invalid commands")
	c.closed()
}

func TestTimeouts(t *testing.T) {
	t.Run("login", func(t *testing.T) {
		e := newEnv(t, withServer(func(s *Server) { s.LoginTimeout = 100 * time.Millisecond }))
		c := e.dial().greeted()
		c.expect("* BYE Autologout")
		c.closed()
	})
	t.Run("idle", func(t *testing.T) {
		// IDLE is not cut by the idle timeout (issue 11: it was); it is
		// kept alive with "* OK Still here".
		e := newEnv(t, withServer(func(s *Server) {
			s.IdleTimeout = 200 * time.Millisecond
			s.IdleKeepalive = 100 * time.Millisecond
		}))
		c := e.login("alice")
		c.ok("a1 SELECT INBOX")
		c.send("a2 IDLE")
		c.expect("+ ")
		for i := 0; i < 4; i++ {
			if l := c.line(); l != "* OK Still here" {
				t.Fatalf("in IDLE: %q", l)
			}
		}
		c.send("DONE")
		c.expect("a2 OK")
		// Between commands the idle timeout holds.
		c.expect("* BYE Autologout")
		c.closed()
	})
	t.Run("within a command", func(t *testing.T) {
		e := newEnv(t, withServer(func(s *Server) { s.ReadTimeout = 100 * time.Millisecond }))
		c := e.login("alice")
		c.send("a1 APPEND INBOX {100}")
		c.expect("+ ")
		c.sendRaw("Subject: slow\r\n")
		c.expect("* BYE")
		c.closed()
	})
}
