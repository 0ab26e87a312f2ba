package pop3

import (
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"strings"

	"github.com/letterbox-mail/letterbox/store"
)

// Commands of the AUTHORIZATION state (RFC 1939 §4, RFC 2595 §4,
// RFC 5034), and the two allowed in every state, CAPA and QUIT.

// lockName is the store lock that makes a POP3 session exclusive.
const lockName = "pop3"

// authAllowed reports whether plaintext credentials may be sent on this
// connection.
func (s *session) authAllowed() bool {
	return s.isTLS || s.srv.AllowInsecureAuth ||
		(s.srv.AllowInsecureLoopback && s.remote.IsLoopback())
}

// cmdCAPA lists the capabilities for the current state (RFC 2449 §5). No
// IMPLEMENTATION line: it would name the software. "CAPA" itself is listed
// as Dovecot does, for clients that look for it.
func (s *session) cmdCAPA(arg string) error {
	if _, err := fields(arg, 0, 0); err != nil {
		return err
	}
	caps := []string{"CAPA", "TOP", "UIDL", "RESP-CODES", "PIPELINING", "AUTH-RESP-CODE"}
	if s.state == stateAuthorization {
		if s.srv.TLSConfig != nil && !s.isTLS {
			caps = append(caps, "STLS")
		}
		// RFC 2595 §2.4 and DESIGN.md: do not offer plaintext
		// logins where they would be refused.
		if s.authAllowed() {
			caps = append(caps, "USER", "SASL PLAIN")
		}
	}
	s.writeLine("+OK")
	for _, c := range caps {
		s.writeLine(c)
	}
	s.writeLine(".")
	return nil
}

// cmdQUIT ends the session. In TRANSACTION it enters the UPDATE state
// first (see update).
func (s *session) cmdQUIT(arg string) error {
	if _, err := fields(arg, 0, 0); err != nil {
		return err
	}
	if s.state == stateTransaction {
		return s.update()
	}
	s.writeLine("+OK Logging out.")
	return errQuit
}

func (s *session) cmdUSER(arg string) error {
	if !s.authAllowed() {
		return errInsecure
	}
	f, err := fields(arg, 1, 1)
	if err != nil {
		return err
	}
	// Any name gets +OK: an answer that depended on the name would tell
	// who has an account.
	s.user = f[0]
	s.writeLine("+OK")
	return nil
}

func (s *session) cmdPASS(arg string) error {
	if !s.authAllowed() {
		return errInsecure
	}
	if s.user == "" {
		return errBad("No user name given, send USER first.")
	}
	// RFC 1939 §7: the argument is everything after the space, spaces
	// included. A client that misses this (or sends a trailing space)
	// simply fails to log in.
	user := s.user
	s.user = "" // a failed PASS needs a new USER (RFC 1939 §7)
	return s.authenticate(user, arg)
}

// cmdAUTH implements RFC 5034 with the PLAIN mechanism only.
func (s *session) cmdAUTH(arg string) error {
	if !s.authAllowed() {
		return errInsecure
	}
	f, err := fields(arg, 0, 2)
	if err != nil {
		return err
	}
	if len(f) == 0 {
		// Not in RFC 5034, but Outlook and others send a bare AUTH
		// to list the mechanisms, and Dovecot answers it so.
		s.writeLine("+OK")
		s.writeLine("PLAIN")
		s.writeLine(".")
		return nil
	}
	if !strings.EqualFold(f[0], "PLAIN") {
		return errReply("Unsupported authentication mechanism.")
	}
	var response string
	if len(f) == 2 {
		response = f[1] // initial response; "=" is an empty one (RFC 5034 §4)
	} else {
		// Empty challenge: "+ " with the space (RFC 5034 §4).
		s.writeLine("+ ")
		if err := s.flush(); err != nil {
			return &fatalError{err}
		}
		line, err := s.readCommand()
		switch {
		case errors.Is(err, errLineTooLong):
			return errBad("Line too long.")
		case err != nil:
			s.readFailed(err)
			return &fatalError{err}
		}
		response = strings.TrimRight(line, "\r\n")
		if response == "*" {
			// RFC 5034 §4: the client cancelled; the server MUST
			// reject the AUTH command.
			return errReply("Authentication cancelled.")
		}
	}
	if response == "=" {
		response = ""
	}
	data, err := base64.StdEncoding.DecodeString(response)
	if err != nil {
		return errReply("Invalid base64 data.")
	}
	// RFC 4616 §2: [authzid] NUL authcid NUL passwd.
	parts := bytes.Split(data, []byte{0})
	if len(parts) != 3 {
		return errReply("Invalid SASL PLAIN response.")
	}
	authz, user, pass := string(parts[0]), string(parts[1]), string(parts[2])
	if authz != "" && authz != user {
		// No acting for other users; the same [AUTH] reply as a bad
		// password, so it reveals nothing either.
		return errAuthFailed
	}
	return s.authenticate(user, pass)
}

// authenticate checks the credentials, takes the user's POP3 lock and opens
// INBOX. On success the session is in TRANSACTION.
func (s *session) authenticate(user, pass string) error {
	name, err := s.srv.Auth.Authenticate(s.ctx, user, pass, s.remote)
	if err != nil {
		// auth logged it (one line per failure, for fail2ban) and
		// waited the failure delay.
		return err
	}
	u, err := s.srv.Store.User(name)
	if err != nil {
		return err
	}
	unlock, err := u.TryLock(lockName)
	if err != nil {
		if errors.Is(err, store.ErrLocked) {
			s.log.Info("pop3: login refused, maildrop in use", "user", name)
		}
		return err
	}
	mbox, err := u.Open(s.ctx, store.Inbox)
	if err != nil {
		unlock()
		return err
	}
	msgs, err := snapshot(s.ctx, mbox)
	if err != nil {
		mbox.Close()
		unlock()
		return err
	}
	s.mbox, s.unlock, s.msgs = mbox, unlock, msgs
	s.state = stateTransaction
	s.log = s.log.With("user", name)
	s.log.Info("pop3: logged in", "messages", len(msgs), "tls", s.isTLS)
	if o := s.srv.Observer; o != nil {
		o.Authenticated(s.accepted, name)
	}
	s.writeLine("+OK Logged in.")
	return nil
}

// cmdSTLS upgrades the connection to TLS (RFC 2595 §4).
func (s *session) cmdSTLS(arg string) error {
	if _, err := fields(arg, 0, 0); err != nil {
		return err
	}
	if s.srv.TLSConfig == nil {
		return errReply("TLS is not available.")
	}
	if s.isTLS {
		return errReply("Already using TLS.")
	}
	s.writeLine("+OK Begin TLS negotiation now.")
	if err := s.flush(); err != nil {
		return &fatalError{err}
	}
	s.mu.Lock()
	raw := s.conn
	s.mu.Unlock()
	tc := tls.Server(raw, s.srv.TLSConfig)
	// Replaces the reader: anything pipelined after STLS is dropped.
	s.setConn(tc)
	if err := s.handshake(tc); err != nil {
		return &fatalError{err}
	}
	// RFC 2595 §4: back to the start of AUTHORIZATION; a USER sent in
	// plaintext is forgotten.
	s.user = ""
	return nil
}
