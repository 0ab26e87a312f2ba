package pop3

import (
	"encoding/base64"
	"testing"
)

// TestAuthorizationState runs every command in the AUTHORIZATION state.
func TestAuthorizationState(t *testing.T) {
	ts := newTestServer(t)
	ts.fill("alice")
	notYet := "-ERR Not allowed before login."
	tests := []struct {
		name  string
		steps []step
	}{
		{"CAPA", []step{{"CAPA", capaBefore}}},
		{"capa lower case", []step{{"capa", capaBefore}}},
		{"CAPA with argument", []step{{"CAPA x", "-ERR No arguments allowed."}}},
		{"transaction commands", []step{
			{"STAT", notYet}, {"LIST", notYet}, {"LIST 1", notYet}, {"UIDL", notYet},
			{"RETR 1", notYet}, {"TOP 1 0", notYet}, {"DELE 1", notYet}, {"RSET", notYet},
			{"NOOP", notYet},
		}},
		{"unknown", []step{
			{"FOO", "-ERR Unknown command."}, {"", "-ERR Unknown command."},
			{"RETRX 1", "-ERR Unknown command."}, {"APOP alice 0123", "-ERR Unknown command."},
			{" USER alice", "-ERR Unknown command."}, {"US3R", "-ERR Unknown command."},
		}},
		{"USER PASS", []step{{"USER alice", "+OK"}, {"PASS secret", "+OK Logged in."}}},
		{"USER case", []step{{"user alice", "+OK"}, {"pass secret", "+OK Logged in."}}},
		{"PASS with spaces", []step{{"USER spacey", "+OK"}, {"PASS pass word", "+OK Logged in."}}},
		{"USER without name", []step{{"USER", "-ERR Missing argument."}}},
		{"USER two names", []step{{"USER a b", "-ERR Too many arguments."}}},
		{"PASS without USER", []step{{"PASS secret", "-ERR No user name given, send USER first."}}},
		{"wrong password", []step{
			{"USER alice", "+OK"}, {"PASS wrong", "-ERR [AUTH] Authentication failed."},
			// A failed PASS needs a new USER.
			{"PASS secret", "-ERR No user name given, send USER first."},
			{"USER alice", "+OK"}, {"PASS secret", "+OK Logged in."},
		}},
		{"unknown user", []step{
			// Same answers as for a wrong password: no hint.
			{"USER nobody", "+OK"}, {"PASS secret", "-ERR [AUTH] Authentication failed."},
			{"USER ../etc", "+OK"}, {"PASS x", "-ERR [AUTH] Authentication failed."},
		}},
		{"USER twice", []step{{"USER bob", "+OK"}, {"USER alice", "+OK"}, {"PASS secret", "+OK Logged in."}}},
		{"AUTH list", []step{{"AUTH", "+OK\nPLAIN\n."}}},
		{"AUTH unknown mechanism", []step{{"AUTH LOGIN", "-ERR Unsupported authentication mechanism."}}},
		{"AUTH PLAIN initial response", []step{{"AUTH PLAIN " + plain("", "alice", "secret"), "+OK Logged in."}}},
		{"AUTH plain lower case", []step{{"auth plain " + plain("", "alice", "secret"), "+OK Logged in."}}},
		{"AUTH PLAIN authzid = authcid", []step{{"AUTH PLAIN " + plain("alice", "alice", "secret"), "+OK Logged in."}}},
		{"AUTH PLAIN continuation", []step{{"AUTH PLAIN", "+ "}, {plain("", "alice", "secret"), "+OK Logged in."}}},
		{"AUTH PLAIN cancelled", []step{{"AUTH PLAIN", "+ "}, {"*", "-ERR Authentication cancelled."}, {"NOOP", notYet}}},
		{"AUTH PLAIN wrong password", []step{{"AUTH PLAIN " + plain("", "alice", "nope"), "-ERR [AUTH] Authentication failed."}}},
		{"AUTH PLAIN other authzid", []step{{"AUTH PLAIN " + plain("bob", "alice", "secret"), "-ERR [AUTH] Authentication failed."}}},
		{"AUTH PLAIN bad base64", []step{{"AUTH PLAIN !!!", "-ERR Invalid base64 data."}}},
		{"AUTH PLAIN bad base64 continuation", []step{{"AUTH PLAIN", "+ "}, {"%%%", "-ERR Invalid base64 data."}}},
		{"AUTH PLAIN empty", []step{{"AUTH PLAIN =", "-ERR Invalid SASL PLAIN response."}}},
		{"AUTH PLAIN no NULs", []step{{"AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("alice")), "-ERR Invalid SASL PLAIN response."}}},
		{"AUTH too many args", []step{{"AUTH PLAIN a b", "-ERR Too many arguments."}}},
		{"STLS with argument", []step{{"STLS now", "-ERR No arguments allowed."}}},
		{"QUIT with argument", []step{{"QUIT now", "-ERR No arguments allowed."}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ts.dial()
			runSteps(t, c, tt.steps)
			c.send("QUIT")
			c.expect("+OK Logging out.")
			c.expectClosed()
		})
	}
}

// TestInUse: one POP3 session per user; the second gets [IN-USE] and the
// lock goes with the first session, however it ends.
func TestInUse(t *testing.T) {
	ts := newTestServer(t)
	ts.fill("alice")
	first := ts.login("alice")

	c := ts.dial()
	c.send("USER alice")
	c.expect("+OK")
	c.send("PASS secret")
	c.expect("-ERR [IN-USE] Mailbox is locked by another POP3 session.")
	// Same over AUTH PLAIN and TLS; the session stays usable.
	tc := ts.dialTLS()
	tc.send("AUTH PLAIN " + plain("", "alice", "secret"))
	tc.expect("-ERR [IN-USE] Mailbox is locked by another POP3 session.")
	// Other users are not affected.
	tc.send("AUTH PLAIN " + plain("", "bob", "hunter2"))
	tc.expect("+OK Logged in.")

	// The first session hangs up without QUIT: the lock is released.
	first.close()
	eventually(t, "the lock to be released", func() bool {
		c.send("USER alice")
		c.expect("+OK")
		c.send("PASS secret")
		return c.readLine() == "+OK Logged in."
	})
	// And after a QUIT at once.
	c.send("QUIT")
	c.expect("+OK Logging out.")
	c.expectClosed()
	c = ts.login("alice")
	c.send("STAT")
	c.expect("+OK 3 …")
}
