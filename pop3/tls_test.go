package pop3

import (
	"bufio"
	"crypto/tls"
	"testing"
)

// noInsecure is a server that allows plaintext logins over TLS only: the
// production default.
func noInsecure(s *testSetup) {
	s.srv.AllowInsecureAuth = false
	s.srv.AllowInsecureLoopback = false
}

// starttls sends STLS and runs the client side of the handshake.
func (c *client) starttls() {
	c.t.Helper()
	c.send("STLS")
	c.expect("+OK Begin TLS negotiation now.")
	tc := tls.Client(c.conn, clientTLSConfig())
	if err := tc.Handshake(); err != nil {
		c.t.Fatalf("TLS handshake after STLS: %v", err)
	}
	c.conn, c.r = tc, bufio.NewReader(tc)
}

const capaTLS = "+OK\nCAPA\nTOP\nUIDL\nRESP-CODES\nPIPELINING\nAUTH-RESP-CODE\nUSER\nSASL PLAIN\n."

func TestSTLS(t *testing.T) {
	ts := newTestServer(t, noInsecure)
	ts.fill("alice")
	c := ts.dial()
	// Before TLS: STLS offered, plaintext logins neither offered nor
	// accepted.
	runSteps(t, c, []step{
		{"CAPA", "+OK\nCAPA\nTOP\nUIDL\nRESP-CODES\nPIPELINING\nAUTH-RESP-CODE\nSTLS\n."},
		{"USER alice", "-ERR [AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) connections."},
		{"PASS secret", "-ERR [AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) connections."},
		{"AUTH PLAIN " + plain("", "alice", "secret"), "-ERR [AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) connections."},
		{"AUTH", "-ERR [AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) connections."},
	})
	c.starttls()
	runSteps(t, c, []step{
		{"CAPA", capaTLS},
		{"STLS", "-ERR Already using TLS."},
		{"USER alice", "+OK"},
		{"PASS secret", "+OK Logged in."},
		{"RETR 3", "+OK …"},
	})
	if got := string(unstuff(t, c.readMulti())); got != msgLong {
		t.Errorf("RETR over STLS: %q", got)
	}
	runSteps(t, c, []step{{"QUIT", "+OK Logging out."}})
}

// TestSTLSForgetsUSER: RFC 2595 §4, the session starts over after STLS.
func TestSTLSForgetsUSER(t *testing.T) {
	ts := newTestServer(t)
	c := ts.dial()
	c.send("USER alice")
	c.expect("+OK")
	c.starttls()
	c.send("PASS secret")
	c.expect("-ERR No user name given, send USER first.")
}

// TestSTLSDiscardsPipelined: commands sent after STLS in plaintext, before
// the handshake, must not run as if they came over TLS.
func TestSTLSDiscardsPipelined(t *testing.T) {
	ts := newTestServer(t)
	c := ts.dial()
	c.sendRaw("STLS\r\nUSER alice\r\nCAPA\r\n")
	c.expect("+OK Begin TLS negotiation now.")
	tc := tls.Client(c.conn, clientTLSConfig())
	if err := tc.Handshake(); err != nil {
		t.Fatalf("handshake: %v", err)
	}
	c.conn, c.r = tc, bufio.NewReader(tc)
	// The first reply under TLS is QUIT's: nothing else was run.
	c.send("QUIT")
	c.expect("+OK Logging out.")
	c.expectClosed()
}

func TestSTLSUnavailable(t *testing.T) {
	ts := newTestServer(t, func(s *testSetup) { s.srv.TLSConfig = nil })
	runSteps(t, ts.dial(), []step{
		{"CAPA", "+OK\nCAPA\nTOP\nUIDL\nRESP-CODES\nPIPELINING\nAUTH-RESP-CODE\nUSER\nSASL PLAIN\n."},
		{"STLS", "-ERR TLS is not available."},
	})
}

// TestImplicitTLS: port 995 style. No STLS; logins allowed even when
// plaintext logins are not.
func TestImplicitTLS(t *testing.T) {
	ts := newTestServer(t, noInsecure)
	ts.fill("alice")
	runSteps(t, ts.dialTLS(), []step{
		{"CAPA", capaTLS},
		{"STLS", "-ERR Already using TLS."},
		{"AUTH PLAIN", "+ "},
		{plain("", "alice", "secret"), "+OK Logged in."},
		{"STAT", "+OK 3 …"},
		{"QUIT", "+OK Logging out."},
	})
}

// TestInsecureAuthSettings: which plaintext logins each setting allows on a
// loopback connection without TLS.
func TestInsecureAuthSettings(t *testing.T) {
	tests := []struct {
		name              string
		insecure, loopbck bool
		allowed           bool
	}{
		{"default", false, false, false},
		{"loopback allowed", false, true, true},
		{"insecure allowed", true, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTestServer(t, func(s *testSetup) {
				s.srv.AllowInsecureAuth = tt.insecure
				s.srv.AllowInsecureLoopback = tt.loopbck
			})
			c := ts.dial()
			if tt.allowed {
				runSteps(t, c, []step{
					{"CAPA", capaBefore},
					{"USER alice", "+OK"}, {"PASS secret", "+OK Logged in."},
				})
			} else {
				runSteps(t, c, []step{
					{"CAPA", "+OK\nCAPA\nTOP\nUIDL\nRESP-CODES\nPIPELINING\nAUTH-RESP-CODE\nSTLS\n."},
					{"USER alice", "-ERR [AUTH] …"},
				})
			}
		})
	}
}

// TestBadHandshakes: plaintext on the TLS port, and junk after STLS, end
// those connections only.
func TestBadHandshakes(t *testing.T) {
	ts := newTestServer(t)
	c := ts.dialRaw(ts.tlsAddr)
	c.sendRaw("USER alice\r\n")
	c.conn.SetReadDeadline(timeIn10s())
	buf := make([]byte, 512)
	c.r.Read(buf) // a TLS alert, or nothing
	c.expectClosed()

	c = ts.dial()
	c.send("STLS")
	c.expect("+OK Begin TLS negotiation now.")
	c.sendRaw("this is not TLS\r\n")
	c.conn.SetReadDeadline(timeIn10s())
	c.r.Read(buf)
	c.expectClosed()

	// A client that hangs up in the middle of the handshake.
	c = ts.dialRaw(ts.tlsAddr)
	c.sendRaw("\x16\x03\x01\x00")
	c.close()

	eventually(t, "the failures to be logged", func() bool { return ts.logs.has("pop3: TLS handshake failed") })
	runSteps(t, ts.dialTLS(), []step{{"QUIT", "+OK Logging out."}})
}
