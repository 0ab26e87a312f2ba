package main

// LMTP (RFC 2033) delivery, for Postfix's lmtp(8) client as Dovecot's LMTP
// server does it: virtual_transport = lmtp:unix:/run/letterbox/lmtp.
//
// The protocol is go-smtp's server in LMTP mode; this file is the backend.
//   - RCPT TO: the address is looked up in the users file, first whole
//     ("alice@example.org"), then by its local part ("alice"), letter case
//     ignored as logins do. No such user: 550 5.1.1, and the MTA bounces.
//     Postfix's virtual domains send user@domain; local delivery sends
//     user@myhostname, which the local-part rule maps to the login "user".
//     (go-smtp answers 501 to an address without a domain; Postfix always
//     sends one.)
//   - DATA: the message is spooled once, then written to each recipient's
//     INBOX with (*store.User).Deliver (tmp/, fsync, rename into new/,
//     open sessions notified), with "Return-Path: <sender>" and
//     "Delivered-To: rcpt" prepended, as dovecot-lmtp and Postfix's local
//     do. Each recipient gets its own reply (RFC 2033 §4.2): 250 when its
//     copy is on disk, 4xx when the store failed, so the MTA retries that
//     recipient only. A message is acknowledged only once it is on disk,
//     so a failure never loses mail; at worst a retry after a lost reply
//     delivers it twice.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/textproto"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/letterbox-mail/letterbox/auth"
	"github.com/letterbox-mail/letterbox/cmd/letterbox/internal/config"
	"github.com/letterbox-mail/letterbox/store"
)

// userDirectory finds the users LMTP accepts mail for.
// *auth.Authenticator implements it: a miss re-checks the users file, and
// an error other than auth.ErrUnknownUser means it cannot be read now.
type userDirectory interface {
	Lookup(name string) (string, error)
}

// Replies of the LMTP backend. Paths and errno text never reach the wire.
var (
	errNoSuchUser = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "No such user here"}
	errUsersTemp  = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Cannot look up users now, try again later"}
	errStoreTemp  = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Cannot store the message now, try again later"}
	errDiskFull   = &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 3, 1}, Message: "Mail system full, try again later"}
	errQuota      = &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 2, 2}, Message: "Mailbox full, try again later"}
	errReadFailed = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 4, 2}, Message: "Message not received completely, try again"}
	errBadAddress = &smtp.SMTPError{Code: 501, EnhancedCode: smtp.EnhancedCode{5, 1, 3}, Message: "Bad address syntax"}
)

// lmtpServer is go-smtp's server in LMTP mode with the backend below. It
// adds what go-smtp's Shutdown lacks: idle connections (Postfix caches
// them) are woken and closed at once, while a transaction in progress is
// allowed to finish.
type lmtpServer struct {
	srv *smtp.Server
	be  *lmtpBackend

	mu       sync.Mutex
	conns    map[*lmtpConn]struct{}
	draining bool
}

// spoolInMemory is the largest message kept in memory; bigger ones are
// spooled to an unlinked temporary file.
const spoolInMemory = 1 << 20

func newLMTPServer(cfg config.LMTP, hostname string, users userDirectory, st *store.Store, m *metrics, log *slog.Logger) *lmtpServer {
	ctx, cancel := context.WithCancel(context.Background())
	be := &lmtpBackend{
		users: users, store: st, metrics: m, log: log,
		ctx: ctx, cancel: cancel, spoolDir: os.TempDir(),
	}
	srv := smtp.NewServer(be)
	srv.LMTP = true
	srv.Domain = hostname
	srv.MaxMessageBytes = cfg.MaxMessageSize
	srv.MaxRecipients = cfg.MaxRecipients
	srv.ReadTimeout = cfg.Timeout
	srv.WriteTimeout = cfg.Timeout
	srv.EnableSMTPUTF8 = true // addresses are only looked up, the message is stored as it is
	srv.ErrorLog = lmtpErrorLog{log}
	return &lmtpServer{srv: srv, be: be, conns: make(map[*lmtpConn]struct{})}
}

// Serve serves LMTP on l until Shutdown or Close.
func (s *lmtpServer) Serve(l net.Listener) error {
	return s.srv.Serve(&lmtpListener{Listener: l, s: s})
}

// Shutdown stops accepting, ends idle connections with "421", lets a
// transaction in progress finish, and waits for all of them or ctx.
func (s *lmtpServer) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.draining = true
	for c := range s.conns {
		c.drain()
	}
	s.mu.Unlock()
	err := s.srv.Shutdown(ctx)
	if errors.Is(err, smtp.ErrServerClosed) {
		err = nil
	}
	return err
}

// Close closes the listeners and every connection at once.
func (s *lmtpServer) Close() error {
	s.be.cancel()
	err := s.srv.Close()
	if errors.Is(err, smtp.ErrServerClosed) {
		err = nil
	}
	return err
}

type lmtpListener struct {
	net.Listener
	s *lmtpServer
}

func (l *lmtpListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	lc := &lmtpConn{Conn: c, s: l.s}
	l.s.mu.Lock()
	l.s.conns[lc] = struct{}{}
	lc.draining = l.s.draining
	l.s.mu.Unlock()
	return lc, nil
}

// lmtpConn tells an idle connection from a busy one. go-smtp sets a read
// deadline before reading each command line; from then until a read
// returns data the connection waits for a command, and between MAIL and
// the end of DATA (or RSET) a transaction is under way. Shutdown moves the
// deadline of a connection that waits outside a transaction to now, so
// go-smtp answers "421" and hangs up; any other gets the same when it
// next waits for a command outside a transaction. A client that stalls
// inside a transaction is cut off when the drain timeout ends; it has had
// no 250 for the message, so it sends it again later.
type lmtpConn struct {
	net.Conn
	s *lmtpServer

	mu       sync.Mutex
	waiting  bool // blocked, or about to block, reading a command
	busy     bool // in a transaction
	draining bool
	closed   sync.Once
}

func (c *lmtpConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.waiting = true
	if c.draining && !c.busy {
		t = time.Now()
	}
	return c.Conn.SetReadDeadline(t)
}

// setBusy marks the start (MAIL) and end (reset) of a transaction.
func (c *lmtpConn) setBusy(busy bool) {
	if c == nil {
		return
	}
	c.mu.Lock()
	c.busy = busy
	c.mu.Unlock()
}

func (c *lmtpConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.mu.Lock()
		c.waiting = false
		c.mu.Unlock()
	}
	return n, err
}

func (c *lmtpConn) drain() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.draining = true
	if c.waiting && !c.busy {
		c.Conn.SetReadDeadline(time.Now())
	}
}

func (c *lmtpConn) Close() error {
	c.closed.Do(func() {
		c.s.mu.Lock()
		delete(c.s.conns, c)
		c.s.mu.Unlock()
	})
	return c.Conn.Close()
}

// lmtpErrorLog sends go-smtp's own log lines (accept errors, broken
// connections, recovered panics) to slog.
type lmtpErrorLog struct{ log *slog.Logger }

func (l lmtpErrorLog) Printf(format string, v ...any) {
	l.log.Warn("lmtp: " + strings.TrimSpace(fmt.Sprintf(format, v...)))
}

func (l lmtpErrorLog) Println(v ...any) {
	l.log.Warn("lmtp: " + strings.TrimSpace(fmt.Sprintln(v...)))
}

// lmtpBackend is the go-smtp Backend.
type lmtpBackend struct {
	users    userDirectory
	store    *store.Store
	metrics  *metrics
	log      *slog.Logger
	spoolDir string

	ctx    context.Context // canceled by Close
	cancel context.CancelFunc
	nextID atomic.Uint64
}

func (b *lmtpBackend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	lc, _ := c.Conn().(*lmtpConn)
	return &lmtpSession{
		be:   b,
		conn: lc,
		log:  b.log.With("conn", b.nextID.Add(1), "client", c.Hostname()),
	}, nil
}

// resolve maps a recipient address to a user: the whole address first,
// then its local part.
func (b *lmtpBackend) resolve(addr string) (string, error) {
	candidates := []string{addr}
	if i := strings.LastIndexByte(addr, '@'); i > 0 {
		candidates = append(candidates, addr[:i])
	}
	for _, c := range candidates {
		name, err := b.users.Lookup(c)
		if err == nil {
			return name, nil
		}
		if !errors.Is(err, auth.ErrUnknownUser) {
			b.log.Error("lmtp: cannot read the users file", "err", err)
			return "", errUsersTemp
		}
	}
	return "", errNoSuchUser
}

// lmtpSession is one LMTP connection's transaction state.
type lmtpSession struct {
	be    *lmtpBackend
	conn  *lmtpConn // nil if not accepted by lmtpServer.Serve
	log   *slog.Logger
	from  string
	rcpts []lmtpRcpt
}

type lmtpRcpt struct {
	addr string // as the client sent it; go-smtp's key for its reply
	user string
}

var _ smtp.LMTPSession = (*lmtpSession)(nil)

func (s *lmtpSession) Reset() {
	s.from, s.rcpts = "", nil
	s.conn.setBusy(false)
}

func (s *lmtpSession) Logout() error { return nil }

func (s *lmtpSession) Mail(from string, _ *smtp.MailOptions) error {
	if strings.ContainsAny(from, "\r\n") {
		return errBadAddress
	}
	s.from = from
	s.conn.setBusy(true)
	return nil
}

func (s *lmtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if to == "" || strings.ContainsAny(to, "\r\n") {
		return errBadAddress
	}
	user, err := s.be.resolve(to)
	if err != nil {
		if err == errNoSuchUser {
			s.be.metrics.deliveries.WithLabelValues("unknown_user").Inc()
			s.log.Info("lmtp: unknown recipient", "rcpt", to, "from", s.from)
		}
		return err
	}
	s.rcpts = append(s.rcpts, lmtpRcpt{addr: to, user: user})
	return nil
}

// Data is go-smtp's non-LMTP entry point, which LMTP mode never calls.
func (s *lmtpSession) Data(io.Reader) error {
	return &smtp.SMTPError{Code: 503, EnhancedCode: smtp.EnhancedCode{5, 5, 1}, Message: "LMTP only"}
}

// LMTPData spools the message and stores one copy per recipient, setting
// each recipient's reply. An error returned is the reply of every
// recipient without one.
func (s *lmtpSession) LMTPData(r io.Reader, status smtp.StatusCollector) error {
	sp, err := newSpool(r, s.be.spoolDir)
	if err != nil {
		if errors.Is(err, smtp.ErrDataTooLarge) {
			s.be.metrics.deliveries.WithLabelValues("too_big").Add(float64(len(s.rcpts)))
			s.log.Info("lmtp: message too big", "from", s.from, "recipients", len(s.rcpts))
			return smtp.ErrDataTooLarge
		}
		s.be.metrics.deliveries.WithLabelValues("failed").Add(float64(len(s.rcpts)))
		s.log.Info("lmtp: message not received", "from", s.from, "err", err)
		return errReadFailed
	}
	defer sp.Close()
	msgID := sp.messageID()

	done := make(map[lmtpRcpt]error) // a recipient given twice is stored once
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
func (s *lmtpSession) deliver(rc lmtpRcpt, sp *spool, msgID string) error {
	m := s.be.metrics
	u, err := s.be.store.User(rc.user)
	if err == nil {
		hdr := "Return-Path: <" + s.from + ">" + sp.eol + "Delivered-To: " + rc.addr + sp.eol
		err = u.Deliver(s.be.ctx, "", io.MultiReader(strings.NewReader(hdr), sp.reader()))
	}
	if err != nil {
		m.deliveries.WithLabelValues("failed").Inc()
		m.storeErrors.WithLabelValues("lmtp").Inc()
		s.log.Error("lmtp: delivery failed; the MTA will retry", "user", rc.user, "rcpt", rc.addr,
			"from", s.from, "msgid", msgID, "err", err)
		switch {
		case errors.Is(err, syscall.ENOSPC):
			return errDiskFull
		case errors.Is(err, syscall.EDQUOT):
			return errQuota
		}
		return errStoreTemp
	}
	m.deliveries.WithLabelValues("delivered").Inc()
	m.deliveredBytes.Add(float64(sp.size))
	s.log.Info("lmtp: delivered", "user", rc.user, "rcpt", rc.addr, "from", s.from, "msgid", msgID, "size", sp.size)
	return nil
}

// spool holds one message for as many reads as it has recipients: in
// memory up to spoolInMemory, else in a temporary file that is unlinked at
// once, so nothing is left behind whatever happens.
type spool struct {
	mem  []byte
	f    *os.File
	size int64
	eol  string // the message's line end, for the headers we prepend
}

func newSpool(r io.Reader, dir string) (*spool, error) {
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(io.LimitReader(r, spoolInMemory+1)); err != nil {
		return nil, err
	}
	sp := &spool{eol: lineEnd(buf.Bytes())}
	if buf.Len() <= spoolInMemory {
		sp.mem, sp.size = buf.Bytes(), int64(buf.Len())
		return sp, nil
	}
	f, err := os.CreateTemp(dir, "letterbox-lmtp-*")
	if err != nil {
		return nil, fmt.Errorf("lmtp: spool: %w", err)
	}
	os.Remove(f.Name())
	n, err := buf.WriteTo(f)
	if err == nil {
		var m int64
		m, err = io.Copy(f, r)
		n += m
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	sp.f, sp.size = f, n
	return sp, nil
}

// lineEnd is "\n" for a message whose first line ends in a bare LF (a
// client that does not send CRLF), else "\r\n" as SMTP has it.
func lineEnd(b []byte) string {
	if i := bytes.IndexByte(b, '\n'); i >= 0 && (i == 0 || b[i-1] != '\r') {
		return "\n"
	}
	return "\r\n"
}

func (sp *spool) reader() io.Reader {
	if sp.f != nil {
		return io.NewSectionReader(sp.f, 0, sp.size)
	}
	return bytes.NewReader(sp.mem)
}

// messageID returns the Message-ID header for the log, "" if none.
func (sp *spool) messageID() string {
	tr := textproto.NewReader(bufio.NewReader(io.LimitReader(sp.reader(), 64<<10)))
	h, _ := tr.ReadMIMEHeader() // a partial header is fine here
	id := h.Get("Message-Id")
	if len(id) > 200 {
		id = id[:200]
	}
	return id
}

func (sp *spool) Close() error {
	if sp.f != nil {
		return sp.f.Close()
	}
	return nil
}
