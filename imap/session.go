package imap

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/emersion/go-imap/v2"

	"github.com/letterbox-mail/letterbox/auth"
	"github.com/letterbox-mail/letterbox/store"
)

// session is the protocol state of one connection: who is logged in, what
// is enabled, the selected mailbox. Only the connection's goroutine uses
// it.
type session struct {
	srv    *Server
	c      *conn
	ctx    context.Context
	cancel context.CancelFunc
	log    *slog.Logger

	state     state
	loggedOut bool
	badCount  int

	username    string
	user        *store.User
	releaseUser func()

	rev2 bool // ENABLE IMAP4rev2 (RFC 9051)
	utf8 bool // ENABLE UTF8=ACCEPT (RFC 6855)
	// condstore: a CONDSTORE-enabling command was run (RFC 7162 §3.1);
	// qresync: ENABLE QRESYNC (§3.2.3), which implies condstore.
	condstore bool
	qresync   bool
	// modSeqShown: a FETCH response of the running command carried a
	// MODSEQ (condstore.go, RFC 7162 §3.2.4 on delayed expunges).
	modSeqShown bool

	sel       *selected
	searchRes []uint32 // RFC 5182 "$": UIDs saved by SEARCH RETURN (SAVE)

	flagBuf []imap.Flag // flagsOf's scratch space

	// NOTIFY (notify.go): what is watched; notifyPending is set by the
	// feeds, waker ends a wait for a command or for DONE (conn.wake, or
	// IDLE's channel under COMPRESS, where conn.wake does nothing).
	notify        *notifyState
	notifyPending atomic.Bool
	waker         atomic.Pointer[func()]
}

func newSession(c *conn) *session {
	ctx, cancel := context.WithCancel(c.srv.ctx)
	s := &session{srv: c.srv, c: c, ctx: ctx, cancel: cancel, state: stateNotAuth}
	s.log = s.connLog()
	wake := c.wake
	s.waker.Store(&wake)
	s.log.Debug("imap: connected", "tls", c.isTLS)
	return s
}

// connLog is the logger of the connection before login.
func (s *session) connLog() *slog.Logger {
	return s.srv.log.With("conn", s.c.id, "ip", s.c.ip.String())
}

func (s *session) close() {
	s.cancel()
	s.stopNotify()
	s.unselect()
	if s.releaseUser != nil {
		s.releaseUser()
		s.releaseUser = nil
	}
	s.log.Debug("imap: disconnected")
}

// utf8Names reports whether names and strings are UTF-8 on the wire (RFC
// 6855 §3, RFC 9051 §5.1).
func (s *session) utf8Names() bool { return s.utf8 || s.rev2 }

// authAllowed reports whether LOGIN and AUTHENTICATE may be used.
func (s *session) authAllowed() bool {
	return s.c.isTLS || s.srv.AllowInsecureAuth || (s.srv.AllowInsecureLoopback && s.c.ip.IsLoopback())
}

var errPrivacyRequired = no("PRIVACYREQUIRED", "Use TLS (STARTTLS, or the implicit-TLS port) to log in")

// capabilities is what CAPABILITY says on this connection now: before
// login the means to log in, after it what the server does. It names no
// software and no version.
func (s *session) capabilities() string {
	if s.state == stateNotAuth {
		caps := []string{"IMAP4rev1", "IMAP4rev2", "SASL-IR", "LITERAL+", "ID"}
		if !s.c.isTLS && s.srv.TLSConfig != nil {
			caps = append(caps, "STARTTLS")
		}
		if s.authAllowed() {
			caps = append(caps, "AUTH=PLAIN", "AUTH=LOGIN")
		} else {
			caps = append(caps, "LOGINDISABLED")
		}
		return strings.Join(caps, " ")
	}
	caps := authenticatedCaps + " " + condstoreCaps + " APPENDLIMIT=" + strconv.FormatInt(s.srv.appendLimit(), 10)
	if !s.c.compressed {
		caps += " COMPRESS=DEFLATE"
	}
	if s.srv.QuotaStorage > 0 || s.srv.QuotaMessages > 0 {
		caps += " QUOTA"
		if s.srv.QuotaStorage > 0 {
			caps += " QUOTA=RES-STORAGE"
		}
		if s.srv.QuotaMessages > 0 {
			caps += " QUOTA=RES-MESSAGE"
		}
	}
	return caps
}

// authenticatedCaps are the capabilities after login.
const authenticatedCaps = "IMAP4rev1 IMAP4rev2 LITERAL+ SASL-IR ENABLE IDLE UNSELECT NAMESPACE " +
	"UIDPLUS MOVE ESEARCH SEARCHRES LIST-EXTENDED LIST-STATUS SPECIAL-USE CREATE-SPECIAL-USE " +
	"CHILDREN STATUS=SIZE BINARY UNAUTHENTICATE UTF8=ACCEPT ID MULTIAPPEND CATENATE WITHIN PREVIEW SAVEDATE CONTEXT=SEARCH" +
	" SORT SORT=DISPLAY ESORT THREAD=REFERENCES THREAD=ORDEREDSUBJECT CONTEXT=SORT NOTIFY"

// login checks a plaintext login (LOGIN, and AUTHENTICATE PLAIN and LOGIN)
// and opens the user's mail.
func (s *session) login(username, password string) error {
	if !s.authAllowed() {
		return errPrivacyRequired
	}
	name, err := s.srv.Auth.Authenticate(s.ctx, username, password, s.c.ip)
	switch {
	case errors.Is(err, auth.ErrInvalidCredentials):
		return no("AUTHENTICATIONFAILED", "Invalid credentials")
	case errors.Is(err, auth.ErrThrottled):
		return no("UNAVAILABLE", "Too many failed logins, try again later")
	case err != nil:
		if !errors.Is(err, context.Canceled) {
			s.log.Error("imap: authentication", "err", err)
		}
		return no("UNAVAILABLE", "Authentication is not available now")
	}
	release, ok := s.srv.acquireUser(name)
	if !ok {
		s.log.Warn("imap: login refused: too many connections of this user", "user", name)
		return no("LIMIT", "Too many connections for this user")
	}
	u, err := s.srv.Store.User(name)
	if err != nil {
		release()
		s.log.Error("imap: open mail of user", "user", name, "err", err)
		return no("UNAVAILABLE", "Mail is not available now")
	}
	s.username, s.user, s.releaseUser = name, u, release
	s.state = stateAuth
	s.log = s.log.With("user", name)
	s.log.Info("imap: login", "tls", s.c.isTLS)
	if o := s.srv.Observer; o != nil {
		o.Authenticated(s.c.accepted, name)
	}
	return nil
}

// logout undoes login (UNAUTHENTICATE, RFC 8437).
func (s *session) logoutUser() {
	s.stopNotify()
	s.unselect()
	if s.releaseUser != nil {
		s.releaseUser()
	}
	s.log.Info("imap: unauthenticate")
	s.username, s.user, s.releaseUser = "", nil, nil
	s.rev2, s.utf8, s.c.out.utf8 = false, false, false
	s.condstore, s.qresync = false, false
	s.state = stateNotAuth
	s.log = s.connLog()
	if o := s.srv.Observer; o != nil {
		o.Authenticated(s.c.accepted, "")
	}
}
