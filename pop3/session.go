package pop3

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"runtime/debug"
	"sync"
	"syscall"
	"time"

	"github.com/letterbox-mail/letterbox/store"
)

// session is one client connection. Apart from the fields under mu, it is
// used only by its own goroutine.
type session struct {
	srv    *Server
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc
	remote netip.Addr

	// refusal, if not empty, is why the session is over a connection
	// limit: it is told so and closed. Only sessions without one count
	// in the limits (see Server.newSession and Server.endSession).
	refusal string
	// refusalLogged is 1 + the refusals not logged before this one, or
	// 0 if this one is not logged either (see Server.sampleRefusal).
	refusalLogged int

	br    *bufio.Reader
	bw    *bufio.Writer
	isTLS bool
	bad   int // bad commands so far

	state state
	user  string // from USER, waiting for PASS

	// TRANSACTION state
	mbox   *store.Mailbox
	unlock func()
	msgs   []message

	accepted net.Conn // as Serve accepted it, for the Observer

	mu      sync.Mutex
	conn    net.Conn // replaced by STLS
	waiting bool     // blocked reading the next command
	closing bool     // Shutdown asked the session to end
}

func newSession(srv *Server, c net.Conn, remote netip.Addr) *session {
	id := srv.nextID.Add(1)
	s := &session{
		srv:      srv,
		log:      srv.logger().With("conn", id, "remote", remote.String()),
		remote:   remote,
		conn:     c,
		accepted: c,
		state:    stateAuthorization,
	}
	s.ctx, s.cancel = context.WithCancel(srv.baseCtx)
	s.setConn(c)
	return s
}

// setConn (re)builds the reader and writer on c. After STLS this throws
// away whatever the client sent after the STLS command in plaintext, as
// RFC 2595 §4 and DESIGN.md require: it must not be taken as a command
// sent under TLS.
func (s *session) setConn(c net.Conn) {
	s.mu.Lock()
	s.conn = c
	s.mu.Unlock()
	s.br = bufio.NewReaderSize(c, s.srv.maxLineLength())
	s.bw = bufio.NewWriterSize(&deadlineWriter{c: c, d: s.srv.writeTimeout()}, 4096)
}

// deadlineWriter renews the write deadline before each write, so
// WriteTimeout bounds a stall, not a long download.
type deadlineWriter struct {
	c net.Conn
	d time.Duration
}

func (w *deadlineWriter) Write(p []byte) (int, error) {
	if err := w.c.SetWriteDeadline(time.Now().Add(w.d)); err != nil {
		return 0, err
	}
	return w.c.Write(p)
}

// serve runs the session to its end.
func (s *session) serve() {
	defer s.finish()
	s.log.Debug("pop3: connection")
	if s.refusalLogged > 0 {
		// Before the handshake: a refused client that never finishes
		// it was refused all the same.
		s.log.Warn("pop3: connection refused", "reason", s.refusal, "refused_since_last_logged", s.refusalLogged)
	}

	if tc, ok := s.conn.(*tls.Conn); ok {
		// Implicit TLS: handshake now, under a deadline, so a client
		// that never speaks TLS cannot hold the connection.
		if err := s.handshake(tc); err != nil {
			// A port check or a client that gave up is no news.
			level := slog.LevelInfo
			if clientGone(err) {
				level = slog.LevelDebug
			}
			s.log.Log(s.ctx, level, "pop3: TLS handshake failed", "err", err)
			return
		}
	}
	if s.refusal != "" {
		s.writeReply(&replyError{code: codeSysTemp, text: s.refusal})
		s.flush()
		return
	}
	// RFC 1939 §4 greeting. No software name or version: it only helps
	// attackers pick an exploit.
	s.writeLine("+OK POP3 server ready.")
	for {
		if err := s.flushIfIdle(); err != nil {
			return
		}
		line, err := s.readCommand()
		switch {
		case errors.Is(err, errLineTooLong):
			if !s.replyError(errBad("Line too long.")) {
				return
			}
		case err != nil:
			s.readFailed(err)
			return
		default:
			if !s.dispatch(line) {
				return
			}
		}
	}
}

// dispatch runs one command line and reports whether the session goes on.
func (s *session) dispatch(line string) bool {
	verb, arg, ok := parseCommand(line)
	var err error
	if cmd, known := commands[verb]; !ok || !known {
		err = errBad("Unknown command.")
	} else if cmd.states&s.state == 0 {
		if s.state == stateAuthorization {
			err = errBad("Not allowed before login.")
		} else {
			err = errBad("Not allowed after login.")
		}
	} else {
		s.logCommand(verb, arg)
		start := time.Now()
		err = cmd.fn(s, arg)
		if o := s.srv.Observer; o != nil {
			o.Command(s.accepted, verb, time.Since(start), err == nil || errors.Is(err, errQuit))
		}
	}
	if err == nil {
		return true
	}
	return s.replyError(err)
}

// errQuit ends the session after a handler has written its reply.
var errQuit = errors.New("pop3: session ends")

// replyError answers a failed command and reports whether the session goes
// on.
func (s *session) replyError(err error) bool {
	var fatal *fatalError
	switch {
	case errors.Is(err, errQuit):
		// Release the maildrop before the client reads the farewell:
		// it may log in again the moment it does.
		s.endTransaction()
		s.flush()
		return false
	case errors.As(err, &fatal):
		s.log.Info("pop3: session ended", "err", fatal.err)
		return false
	}
	re := toReply(s.log, err)
	s.writeReply(re)
	if re.close {
		s.flush()
		return false
	}
	if re.bad {
		s.bad++
		if s.bad >= s.srv.maxBadCommands() {
			s.log.Warn("pop3: too many bad commands")
			s.writeLine("-ERR Too many invalid commands, closing connection.")
			s.flush()
			return false
		}
	}
	return true
}

func (s *session) writeReply(re *replyError) {
	if re.code != "" {
		s.writeLine("-ERR [" + re.code + "] " + re.text)
	} else {
		s.writeLine("-ERR " + re.text)
	}
}

// logCommand logs a command at debug level, without what could be a
// password.
func (s *session) logCommand(verb, arg string) {
	if !s.log.Enabled(s.ctx, slog.LevelDebug) {
		return
	}
	switch verb {
	case "PASS", "AUTH":
		arg = "***"
	}
	if len(arg) > 64 {
		arg = arg[:64] + "…"
	}
	s.log.Debug("pop3: command", "cmd", verb, "arg", arg)
}

// Errors of readCommand.
var (
	errIdle = errors.New("pop3: idle timeout")
	// errCommandTimeout: a line began but did not end in time.
	errCommandTimeout = errors.New("pop3: command line timeout")
	errShutdown       = errors.New("pop3: server shutting down")
	// errLineTooLong: a line over MaxLineLength was read and dropped.
	errLineTooLong = errors.New("pop3: line too long")
	// errEndlessLine: a line went on long enough to use up the bad
	// command allowance.
	errEndlessLine = errors.New("pop3: endless line")
)

// readCommand waits for the next line from the client: for its first byte
// under the idle timeout, then for the rest of it under the command
// timeout. Shutdown wakes it (see shutdown).
func (s *session) readCommand() (string, error) {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return "", errShutdown
	}
	s.waiting = true
	idle := time.Now().Add(s.srv.idleTimeout())
	err := s.conn.SetReadDeadline(idle)
	s.mu.Unlock()
	if err != nil {
		return "", err
	}

	begun := s.br.Buffered() > 0 // a pipelined line has begun already
	if !begun {
		_, err = s.br.Peek(1)
		begun = err == nil
	}
	if err == nil {
		d := time.Now().Add(s.srv.commandTimeout())
		if idle.Before(d) {
			d = idle
		}
		err = s.lineDeadline(d)
	}
	var line string
	if err == nil {
		line, err = s.readLine()
	}

	s.mu.Lock()
	s.waiting = false
	closing := s.closing
	s.mu.Unlock()
	var ne net.Error
	switch {
	case err == nil || errors.Is(err, errLineTooLong) || errors.Is(err, errEndlessLine):
		return line, err
	case closing:
		return "", errShutdown
	case errors.As(err, &ne) && ne.Timeout():
		if begun {
			return "", errCommandTimeout
		}
		return "", errIdle
	}
	return "", err
}

// lineDeadline moves the read deadline to t once a line has begun, unless
// Shutdown has already moved it to the past.
func (s *session) lineDeadline(t time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return nil
	}
	return s.conn.SetReadDeadline(t)
}

// readLine reads one line of at most MaxLineLength bytes, CRLF included.
// The rest of a longer line is read and dropped, and each further
// MaxLineLength bytes of it count as one more bad command, so that an
// endless line ends the session instead of keeping it busy forever. A
// partial line before EOF is dropped.
func (s *session) readLine() (string, error) {
	line, err := s.br.ReadSlice('\n')
	if err == nil {
		return string(line), nil
	}
	if !errors.Is(err, bufio.ErrBufferFull) {
		return "", err
	}
	for {
		_, err = s.br.ReadSlice('\n')
		if !errors.Is(err, bufio.ErrBufferFull) {
			break
		}
		if s.bad++; s.bad >= s.srv.maxBadCommands() {
			return "", errEndlessLine
		}
	}
	if err != nil {
		return "", err
	}
	return "", errLineTooLong
}

// readFailed handles the end of a session on a read error: a farewell line
// where there is someone to say it to.
func (s *session) readFailed(err error) {
	switch {
	case errors.Is(err, errShutdown):
		s.writeReply(errShuttingDown)
	case errors.Is(err, errIdle):
		// RFC 1939 §3 says the server should close without a
		// response; Dovecot and the house style say goodbye, which
		// costs nothing and tells a human using telnet what happened.
		s.log.Info("pop3: idle timeout", "state", s.stateName())
		s.writeLine("-ERR Disconnected for inactivity.")
	case errors.Is(err, errCommandTimeout):
		s.log.Info("pop3: command line not finished in time", "state", s.stateName())
		s.writeLine("-ERR Command line not finished in time, closing connection.")
	case errors.Is(err, errEndlessLine):
		s.log.Warn("pop3: line too long, closing")
		s.writeLine("-ERR Line too long, closing connection.")
	case clientGone(err):
		s.log.Debug("pop3: client closed the connection", "state", s.stateName(), "err", err)
		return
	default:
		s.log.Info("pop3: read failed", "err", err)
		return
	}
	s.flush()
}

// clientGone tells a client that hung up (a port check, a client that
// gave up) from a failure worth logging.
func clientGone(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// handshake runs a TLS handshake under HandshakeTimeout. It counts as
// waiting for the client, so Shutdown cuts it short.
func (s *session) handshake(tc *tls.Conn) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return errShutdown
	}
	s.waiting = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.waiting = false
		s.mu.Unlock()
	}()
	timeout := s.srv.handshakeTimeout()
	if s.refusal != "" {
		// Only to be told to go away: a flood of clients that never
		// start TLS must not hold their descriptors for long.
		timeout = min(timeout, refusedHandshakeTimeout)
	}
	ctx, cancel := context.WithTimeout(s.ctx, timeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		return err
	}
	s.isTLS = true
	return nil
}

// shutdown is called by Server.Shutdown: a session waiting for a command is
// woken at once (its read fails on the past deadline); one running a
// command finishes it and sees closing before its next read.
func (s *session) shutdown() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closing = true
	if s.waiting {
		_ = s.conn.SetReadDeadline(time.Unix(1, 0))
	}
}

func (s *session) closeConn() {
	s.mu.Lock()
	c := s.conn
	s.mu.Unlock()
	c.Close()
}

// finish releases everything the session holds. The mailbox lock goes
// before the connection closes, so a client that sees the end of its
// session can log in again at once.
func (s *session) finish() {
	if r := recover(); r != nil {
		s.log.Error("pop3: panic in session", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		s.writeReply(errInternal)
		s.flush()
	}
	s.endTransaction()
	s.cancel()
	s.closeConn()
	s.srv.endSession(s)
}

// writeLine queues one reply line; CRLF is added. Not textproto's
// PrintfLine: that flushes every line, and pipelined replies (RFC 2449
// §6.6) should go out together (see flushIfIdle).
func (s *session) writeLine(line string) {
	s.bw.WriteString(line)
	s.bw.WriteString("\r\n")
}

func (s *session) writef(format string, args ...any) {
	fmt.Fprintf(s.bw, format, args...)
	s.bw.WriteString("\r\n")
}

// flush sends the queued replies. Errors surface on the next read.
func (s *session) flush() error { return s.bw.Flush() }

// flushIfIdle sends the queued replies unless more pipelined commands are
// already waiting (RFC 2449 §6.6): their replies then go out together.
func (s *session) flushIfIdle() error {
	// Only a whole line counts: a client that sent half a command and
	// waits for earlier replies must get them.
	if n := s.br.Buffered(); n > 0 {
		if buf, _ := s.br.Peek(n); bytes.IndexByte(buf, '\n') >= 0 {
			return nil
		}
	}
	return s.bw.Flush()
}

func (s *session) stateName() string {
	if s.state == stateTransaction {
		return "TRANSACTION"
	}
	return "AUTHORIZATION"
}
