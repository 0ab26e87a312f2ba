package imap

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-sasl"

	"github.com/letterbox-mail/letterbox/auth"
	"github.com/letterbox-mail/letterbox/store"
)

// session is one connection's imapserver backend. imapserver calls its
// methods from the connection's goroutine, one at a time (Idle runs while
// that goroutine waits for DONE).
type session struct {
	srv    *Server
	wc     *wireConn
	conn   *imapserver.Conn
	ctx    context.Context
	cancel context.CancelFunc
	log    *slog.Logger

	username    string
	user        *store.User
	releaseUser func()

	sel       *selected
	searchRes []uint32 // RFC 5182 "$": UIDs saved by SEARCH RETURN (SAVE)

	// imapserver runs Idle in a goroutine of its own and, when the
	// connection drops during IDLE, calls Close without waiting for it.
	// Close marks the session closed and waits for a running Idle, so
	// Idle never sees the selected mailbox torn down under it.
	idleMu sync.Mutex
	closed bool
	idling sync.WaitGroup
}

var (
	_ imapserver.SessionIMAP4rev2      = (*session)(nil)
	_ imapserver.SessionSASL           = (*session)(nil)
	_ imapserver.SessionUnauthenticate = (*session)(nil)
	_ imapserver.SessionAppendLimit    = (*session)(nil)
	_ imapserver.SessionNamespace      = (*session)(nil)
	_ imapserver.SessionMove           = (*session)(nil)
	_ imapserver.Session               = (*session)(nil)
)

func (s *Server) newSession(c *imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
	wc, ok := c.NetConn().(*wireConn)
	if !ok {
		return nil, nil, errors.New("imap: connection not from Server.Serve")
	}
	wc.mu.Lock()
	wc.imapConn = c
	wc.mu.Unlock()
	ctx, cancel := context.WithCancel(s.ctx)
	sess := &session{
		srv:    s,
		wc:     wc,
		conn:   c,
		ctx:    ctx,
		cancel: cancel,
		log:    s.connLog(wc),
	}
	sess.log.Debug("imap: connected", "tls", wc.secure())
	return sess, nil, nil
}

// connLog is the logger of a connection before login.
func (s *Server) connLog(wc *wireConn) *slog.Logger {
	return s.log.With("conn", wc.id, "ip", wc.ip.String())
}

// Close is called by imapserver when the connection ends.
func (s *session) Close() error {
	s.idleMu.Lock()
	s.closed = true
	s.idleMu.Unlock()
	s.cancel() // ends a running Idle
	s.idling.Wait()
	s.unselect()
	if s.releaseUser != nil {
		s.releaseUser()
		s.releaseUser = nil
	}
	s.log.Debug("imap: disconnected")
	return nil
}

var errPrivacyRequired = &imap.Error{
	Type: imap.StatusResponseTypeNo,
	Code: imap.ResponseCodePrivacyRequired,
	Text: "Use TLS (STARTTLS, or the implicit-TLS port) to log in",
}

// Login checks a plaintext login (LOGIN, and AUTHENTICATE through the
// SASL servers below).
func (s *session) Login(username, password string) error {
	if !s.wc.authAllowed() {
		return errPrivacyRequired
	}
	if s.user != nil {
		return newError(imap.StatusResponseTypeBad, "", "Already logged in")
	}
	name, err := s.srv.Auth.Authenticate(s.ctx, username, password, s.wc.ip)
	switch {
	case errors.Is(err, auth.ErrInvalidCredentials):
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeAuthenticationFailed, Text: "Invalid credentials"}
	case errors.Is(err, auth.ErrThrottled):
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeUnavailable, Text: "Too many failed logins, try again later"}
	case err != nil:
		if !errors.Is(err, context.Canceled) {
			s.log.Error("imap: authentication", "err", err)
		}
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeUnavailable, Text: "Authentication is not available now"}
	}
	release, ok := s.srv.acquireUser(name)
	if !ok {
		s.log.Warn("imap: login refused: too many connections of this user", "user", name)
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeLimit, Text: "Too many connections for this user"}
	}
	u, err := s.srv.Store.User(name)
	if err != nil {
		release()
		s.log.Error("imap: open mail of user", "user", name, "err", err)
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeUnavailable, Text: "Mail is not available now"}
	}
	s.username, s.user, s.releaseUser = name, u, release
	s.log = s.log.With("user", name)
	s.wc.setAuthenticated(true)
	s.log.Info("imap: login", "tls", s.wc.secure())
	if o := s.srv.Observer; o != nil {
		o.Authenticated(s.wc.accepted, name)
	}
	return nil
}

// AuthenticateMechanisms is not what CAPABILITY shows (wireConn does), but
// what AUTHENTICATE accepts.
func (s *session) AuthenticateMechanisms() []string { return []string{"PLAIN", "LOGIN"} }

// Authenticate starts a SASL exchange (RFC 3501 §6.2.2): PLAIN (RFC 4616),
// with or without an initial response (SASL-IR, RFC 4959), and LOGIN.
func (s *session) Authenticate(mech string) (sasl.Server, error) {
	if !s.wc.authAllowed() {
		return nil, errPrivacyRequired
	}
	switch strings.ToUpper(mech) {
	case "PLAIN":
		return saslErrors{sasl.NewPlainServer(func(identity, username, password string) error {
			if identity != "" && identity != username {
				return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeAuthorizationFailed, Text: "Acting as another user is not supported"}
			}
			return s.Login(username, password)
		})}, nil
	case "LOGIN":
		return saslErrors{&loginServer{login: s.Login}}, nil
	}
	return nil, newError(imap.StatusResponseTypeNo, "", "Unsupported authentication mechanism")
}

// saslErrors turns the SASL library's own errors (a malformed response)
// into BAD.
type saslErrors struct{ sasl.Server }

func (w saslErrors) Next(response []byte) ([]byte, bool, error) {
	ch, done, err := w.Server.Next(response)
	var ie *imap.Error
	if err != nil && !errors.As(err, &ie) {
		err = newError(imap.StatusResponseTypeBad, "", "Malformed SASL response")
	}
	return ch, done, err
}

// loginServer is the LOGIN mechanism (draft-murchison-sasl-login): the
// server asks for "Username:" and "Password:".
type loginServer struct {
	login    func(user, pass string) error
	step     int
	username string
}

func (l *loginServer) Next(response []byte) ([]byte, bool, error) {
	switch l.step {
	case 0:
		l.step++
		if len(response) == 0 {
			return []byte("Username:"), false, nil
		}
		l.username = string(response)
		l.step++
		return []byte("Password:"), false, nil
	case 1:
		l.username = string(response)
		l.step++
		return []byte("Password:"), false, nil
	case 2:
		l.step++
		return nil, true, l.login(l.username, string(response))
	}
	return nil, false, fmt.Errorf("sasl: unexpected LOGIN response")
}

// Unauthenticate is RFC 8437 UNAUTHENTICATE.
func (s *session) Unauthenticate() error {
	s.unselect()
	if s.releaseUser != nil {
		s.releaseUser()
	}
	s.log.Info("imap: unauthenticate")
	s.username, s.user, s.releaseUser = "", nil, nil
	s.log = s.srv.connLog(s.wc)
	s.wc.setAuthenticated(false)
	if o := s.srv.Observer; o != nil {
		o.Authenticated(s.wc.accepted, "")
	}
	return nil
}

// Namespace: one personal namespace, empty prefix, "/" (RFC 2342).
func (s *session) Namespace() (*imap.NamespaceData, error) {
	return &imap.NamespaceData{
		Personal: []imap.NamespaceDescriptor{{Prefix: "", Delim: store.Separator}},
	}, nil
}

// AppendLimit is APPENDLIMIT (RFC 7889).
func (s *session) AppendLimit() uint32 { return uint32(s.srv.appendLimit()) }

func newError(t imap.StatusResponseType, code imap.ResponseCode, text string) *imap.Error {
	return &imap.Error{Type: t, Code: code, Text: text}
}

// fail turns an error into the reply of a command: every store error has
// its code; anything unexpected is logged and answered without details
// (no paths or errno text on the wire).
func (s *session) fail(op string, err error) error {
	var ie *imap.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ie):
		return err
	case errors.Is(err, store.ErrNotFound):
		return newError(imap.StatusResponseTypeNo, imap.ResponseCodeNonExistent, "No such mailbox")
	case errors.Is(err, store.ErrExists):
		return newError(imap.StatusResponseTypeNo, imap.ResponseCodeAlreadyExists, "Mailbox already exists")
	case errors.Is(err, store.ErrInvalidName):
		return newError(imap.StatusResponseTypeNo, imap.ResponseCodeCannot, "Invalid mailbox name")
	case errors.Is(err, store.ErrInboxOperation):
		return newError(imap.StatusResponseTypeNo, imap.ResponseCodeCannot, "Not possible with INBOX")
	case errors.Is(err, store.ErrTooManyKeywords):
		return newError(imap.StatusResponseTypeNo, imap.ResponseCodeLimit, "Too many keywords in this mailbox")
	case errors.Is(err, store.ErrTooBig):
		return newError(imap.StatusResponseTypeNo, imap.ResponseCodeTooBig, "Message too big")
	case errors.Is(err, store.ErrNoSuchMessage):
		return newError(imap.StatusResponseTypeNo, "EXPUNGEISSUED", "Message was expunged")
	case errors.Is(err, store.ErrHasChildren):
		return newError(imap.StatusResponseTypeNo, imap.ResponseCodeHasChildren, "Mailbox has children")
	case errors.Is(err, store.ErrLocked):
		return newError(imap.StatusResponseTypeNo, imap.ResponseCodeInUse, "Mailbox is in use, try again")
	case errors.Is(err, context.Canceled), errors.Is(err, store.ErrClosed):
		return newError(imap.StatusResponseTypeNo, imap.ResponseCodeUnavailable, "Server shutting down")
	}
	s.log.Error("imap: "+op, "err", err)
	return newError(imap.StatusResponseTypeNo, imap.ResponseCodeServerBug, "Internal error, see the server log")
}

// needUser guards commands imapserver lets through only when logged in.
func (s *session) needUser() error {
	if s.user == nil {
		return newError(imap.StatusResponseTypeBad, imap.ResponseCodeClientBug, "Not logged in")
	}
	return nil
}

func (s *session) needSelected() (*selected, error) {
	if s.sel == nil {
		return nil, newError(imap.StatusResponseTypeBad, imap.ResponseCodeClientBug, "No mailbox selected")
	}
	return s.sel, nil
}
