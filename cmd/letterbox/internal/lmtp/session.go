package lmtp

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"syscall"

	"github.com/emersion/go-smtp"

	"github.com/letterbox-mail/letterbox/auth"
	"github.com/letterbox-mail/letterbox/store"
)

// Replies of the backend: the one place errors become wire text. Paths
// and errno text never reach the wire.
var (
	errNoSuchUser = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "No such user here"}
	errUsersTemp  = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Cannot look up users now, try again later"}
	errStoreTemp  = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Cannot store the message now, try again later"}
	errNoSpace    = &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 3, 1}, Message: "Mail system full, try again later"}
	errQuota      = &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 2, 2}, Message: "Mailbox full, try again later"}
	errReadFailed = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 4, 2}, Message: "Message not received completely, try again"}
	errBadAddress = &smtp.SMTPError{Code: 501, EnhancedCode: smtp.EnhancedCode{5, 1, 3}, Message: "Bad address syntax"}
	errNotLMTP    = &smtp.SMTPError{Code: 503, EnhancedCode: smtp.EnhancedCode{5, 5, 1}, Message: "LMTP only"}
)

// storeReply is the reply to a failed delivery.
func storeReply(err error) *smtp.SMTPError {
	switch {
	case errors.Is(err, syscall.EDQUOT):
		return errQuota
	case errors.Is(err, store.ErrNoSpace), errors.Is(err, syscall.ENOSPC):
		// store.ErrNoSpace covers both errnos; they are checked
		// themselves too for store errors that do not carry it yet.
		return errNoSpace
	}
	return errStoreTemp
}

// backend is the go-smtp Backend.
type backend struct{ s *Server }

func (b *backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	lc, _ := c.Conn().(*conn)
	log := b.s.logger()
	if lc != nil {
		log = lc.log
	}
	return &session{s: b.s, conn: lc, log: log.With("client", c.Hostname())}, nil
}

// resolve maps a recipient address to a user: the whole address first,
// then its local part.
func (s *Server) resolve(addr string) (string, error) {
	candidates := []string{addr}
	if i := strings.LastIndexByte(addr, '@'); i > 0 {
		candidates = append(candidates, addr[:i])
	}
	for _, c := range candidates {
		name, err := s.Users.Lookup(c)
		if err == nil {
			return name, nil
		}
		if !errors.Is(err, auth.ErrUnknownUser) {
			s.logger().Error("lmtp: cannot read the users file", "err", err)
			return "", errUsersTemp
		}
	}
	return "", errNoSuchUser
}

// session is one connection's transaction state.
type session struct {
	s     *Server
	conn  *conn // nil if not accepted by Server.Serve
	log   *slog.Logger
	from  string
	rcpts []rcpt
}

type rcpt struct {
	addr string // as the client sent it; go-smtp's key for its reply
	user string
}

var _ smtp.LMTPSession = (*session)(nil)

func (s *session) Reset() {
	s.from, s.rcpts = "", nil
	s.conn.setBusy(false)
}

func (s *session) Logout() error { return nil }

func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	if strings.ContainsAny(from, "\r\n") {
		return errBadAddress
	}
	s.from = from
	s.conn.setBusy(true)
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if to == "" || strings.ContainsAny(to, "\r\n") {
		return errBadAddress
	}
	user, err := s.s.resolve(to)
	if err != nil {
		if err == errNoSuchUser {
			s.s.observe(UnknownUser, 0, 1)
			s.log.Info("lmtp: unknown recipient", "rcpt", to, "from", s.from)
		}
		return err
	}
	s.rcpts = append(s.rcpts, rcpt{addr: to, user: user})
	return nil
}

// Data is go-smtp's non-LMTP entry point, which LMTP mode never calls.
func (s *session) Data(io.Reader) error { return errNotLMTP }

// LMTPData spools the message and stores one copy per recipient, setting
// each recipient's reply. An error returned is the reply of every
// recipient without one.
func (s *session) LMTPData(r io.Reader, status smtp.StatusCollector) error {
	s.conn.beginData()
	sp, err := newSpool(r, s.s.spoolDir())
	if err != nil {
		if errors.Is(err, smtp.ErrDataTooLarge) {
			s.s.observe(TooBig, 0, len(s.rcpts))
			s.log.Info("lmtp: message too big", "from", s.from, "recipients", len(s.rcpts))
			return smtp.ErrDataTooLarge
		}
		if reply := storeReply(err); reply != errStoreTemp {
			// The spool file found the disk full: 452, as a store would.
			s.s.observe(StoreFailed, 0, len(s.rcpts))
			s.log.Error("lmtp: cannot spool the message; the MTA will retry", "from", s.from, "err", err)
			return reply
		}
		if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
			s.conn.expire()
		}
		s.s.observe(NotReceived, 0, len(s.rcpts))
		s.log.Info("lmtp: message not received", "from", s.from, "err", err)
		return errReadFailed
	}
	defer sp.Close()
	msgID := sp.messageID()

	done := make(map[rcpt]error) // a recipient given twice is stored once
	for _, rc := range s.rcpts {
		err, ok := done[rc]
		if !ok {
			err = s.deliver(rc, sp, msgID)
			done[rc] = err
		}
		status.SetStatus(rc.addr, err)
	}
	return nil
}

// deliver stores one recipient's copy and returns its reply: nil for 250.
func (s *session) deliver(rc rcpt, sp *spool, msgID string) error {
	u, err := s.s.Store.User(rc.user)
	if err == nil {
		hdr := "Return-Path: <" + s.from + ">" + sp.eol + "Delivered-To: " + rc.addr + sp.eol
		err = u.Deliver(s.s.ctx, "", io.MultiReader(strings.NewReader(hdr), sp.reader()))
	}
	if err != nil {
		s.s.observe(StoreFailed, sp.size, 1)
		s.log.Error("lmtp: delivery failed; the MTA will retry", "user", rc.user, "rcpt", rc.addr,
			"from", s.from, "msgid", msgID, "err", err)
		return storeReply(err)
	}
	s.s.observe(Delivered, sp.size, 1)
	s.log.Info("lmtp: delivered", "user", rc.user, "rcpt", rc.addr, "from", s.from, "msgid", msgID, "size", sp.size)
	return nil
}
