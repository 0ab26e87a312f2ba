package imap

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2/imapserver"
)

// wireConn is the net.Conn imapserver reads and writes. It frames the
// client's input into command lines and literals and hands imapserver one
// line, or one piece of a literal, per Read. That is where the limits are
// enforced and where the traps of imapserver beta.8 are avoided:
//
//   - A literal over the limit is refused before imapserver sees it:
//     synchronizing, with a tagged NO and no continuation request (imapserver
//     would send neither, and the client would wait for ever);
//     non-synchronizing (LITERAL+), by reading and dropping its bytes first
//     (imapserver would read them as commands), or with BYE if it is huge.
//   - A literal announcement of 4 GB or more is just a literal over the limit.
//   - A line over MaxLineLength ends the connection with BYE (imapserver
//     would answer NO [SERVERBUG] and read the rest as a new command).
//   - ID is answered here (imapserver says BAD and BYE before login).
//   - STARTTLS is done here: imapserver never sees the *tls.Conn, so it
//     cannot do it, and it could not tell TLS from plain anyway.
//   - Read deadlines are ours: LoginTimeout or IdleTimeout between
//     commands, ReadTimeout within one (imapserver's 30 s would cut a
//     client that starts a command and pauses).
//
// The output side (wireout.go) watches responses for continuation
// requests and tagged replies, which move the input framing along, and
// writes the CAPABILITY lists.
type wireConn struct {
	srv *Server
	id  uint64
	ip  netip.Addr

	accepted net.Conn // as Serve accepted it, for the Observer

	rawMu sync.Mutex // guards raw, which STARTTLS replaces
	raw   net.Conn
	br    *bufio.Reader // used only by the reading goroutine

	mu       sync.Mutex // guards everything below
	isTLS    bool
	authed   bool
	imapConn *imapserver.Conn
	pending  []byte // the rest of the line being handed to imapserver
	lit      literalState
	inCmd    bool // a command's first line was passed on; its last was not
	tag      string
	name     string // upper case, "UID FETCH" for UID commands
	cmdBytes int
	litIndex int
	appendMb bool // APPEND whose mailbox name is a literal
	appendMs bool // the APPEND message literal was seen
	rawNext  bool // the next line answers a continuation request (SASL, DONE)
	peek822  bool // the FETCH asked for RFC822.PEEK
	saveOnly bool // a SEARCH RETURN (SAVE): no ESEARCH response
	cmdStart time.Time
	discard  bool // imapserver answered early: drop the rest of the command
	stopping bool
	wakeAt   time.Time // deadline we set; a timeout before it is Shutdown's wake-up
	badCount int

	wmu    sync.Mutex // serializes writes to raw; guards out and below
	out    outFilter
	wbuf   []byte      // responses waiting to be written (see Write)
	wtimer *time.Timer // flushes wbuf if nothing else does
	werr   error       // a failed write: the connection is dead

	closeOnce sync.Once
}

type literalState struct {
	active bool  // announced by the line passed last
	left   int64 // bytes still to pass on
	sync   bool  // synchronizing
	cont   bool  // imapserver sent the continuation request for it
}

func newWireConn(s *Server, raw net.Conn, ip netip.Addr, id uint64) *wireConn {
	_, isTLS := raw.(*tls.Conn)
	return &wireConn{
		srv:      s,
		id:       id,
		ip:       ip,
		accepted: raw,
		raw:      raw,
		br:       bufio.NewReaderSize(raw, 4096),
		isTLS:    isTLS,
	}
}

// Limits of the input framing.
const (
	// maxBufferedLiteral is what imapserver buffers in memory for a
	// string argument (its checkBufferedLiteral).
	maxBufferedLiteral = 4096
	// maxDrain bounds the bytes of a refused non-synchronizing literal
	// that are read and dropped to keep the connection; beyond it the
	// connection is closed.
	maxDrain = 1 << 20
)

var errLineTooLong = errors.New("imap: line too long")

func (c *wireConn) conn() net.Conn {
	c.rawMu.Lock()
	defer c.rawMu.Unlock()
	return c.raw
}

// Read implements net.Conn for imapserver.
func (c *wireConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		c.mu.Lock()
		if len(c.pending) > 0 {
			n := copy(p, c.pending)
			c.pending = c.pending[n:]
			c.mu.Unlock()
			return n, nil
		}
		if c.lit.left > 0 && !c.discard {
			want := min(int64(len(p)), c.lit.left)
			c.mu.Unlock()
			n, err := c.readRaw(p[:want], c.srvReadTimeout(), false)
			c.mu.Lock()
			c.lit.left -= int64(n)
			c.mu.Unlock()
			if n > 0 {
				return n, nil
			}
			return 0, c.readFailed(err, false)
		}
		c.mu.Unlock()
		if err := c.next(); err != nil {
			return 0, err
		}
	}
}

func (c *wireConn) srvReadTimeout() time.Duration {
	return orDefault(c.srv.ReadTimeout, DefaultReadTimeout)
}

// waitTimeout is how long the client may be silent before its next command
// or continuation line.
func (c *wireConn) waitTimeout() time.Duration {
	c.mu.Lock()
	authed := c.authed
	c.mu.Unlock()
	if authed {
		return orDefault(c.srv.IdleTimeout, DefaultIdleTimeout)
	}
	return orDefault(c.srv.LoginTimeout, DefaultLoginTimeout)
}

// armRead sets the read deadline for the next read, remembering it so a
// timeout before it is known as Shutdown's wake-up, and reports whether
// Shutdown asked the connection to stop.
func (c *wireConn) armRead(timeout time.Duration) (time.Time, bool) {
	deadline := time.Now().Add(timeout)
	c.conn().SetReadDeadline(deadline)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.wakeAt = deadline
	return deadline, c.stopping
}

// readRaw reads from the client with a deadline. A wake-up by Shutdown in
// the middle of a command is ignored: the command may finish.
func (c *wireConn) readRaw(p []byte, timeout time.Duration, atStart bool) (int, error) {
	for {
		deadline, stopping := c.armRead(timeout)
		if stopping && atStart && c.br.Buffered() == 0 {
			return 0, os.ErrDeadlineExceeded
		}
		n, err := c.br.Read(p)
		if n == 0 && errors.Is(err, os.ErrDeadlineExceeded) && !atStart && time.Now().Before(deadline) {
			continue // woken by Shutdown: let the command finish
		}
		return n, err
	}
}

// readLine reads one line of at most max bytes, CRLF included.
func (c *wireConn) readLine(max int, timeout time.Duration, atStart bool) ([]byte, error) {
	var line []byte
	for {
		deadline, stopping := c.armRead(timeout)
		if stopping && atStart && len(line) == 0 && c.br.Buffered() == 0 {
			return nil, os.ErrDeadlineExceeded
		}
		chunk, err := c.br.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > max {
			return nil, errLineTooLong
		}
		switch {
		case err == nil:
			return line, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, os.ErrDeadlineExceeded) && time.Now().Before(deadline) && (!atStart || len(line) > 0):
			continue // woken by Shutdown mid-line
		}
		return nil, err
	}
}

// readFailed turns a read error into the end of the connection, with a
// BYE saying why where there is a reason to give.
func (c *wireConn) readFailed(err error, atStart bool) error {
	switch {
	case errors.Is(err, errLineTooLong):
		c.bye("Line too long")
	case errors.Is(err, os.ErrDeadlineExceeded):
		c.mu.Lock()
		stopping := c.stopping
		c.mu.Unlock()
		switch {
		case stopping:
			c.bye("Server shutting down")
		case atStart:
			c.bye("Autologout; idle for too long")
		default:
			c.bye("Timed out in the middle of a command")
		}
	}
	return io.EOF
}

// next reads the next line from the client and decides what imapserver
// gets of it.
func (c *wireConn) next() error {
	c.mu.Lock()
	discard := c.discard
	c.discard = false
	rawNext := c.rawNext
	atStart := !c.inCmd && !rawNext
	c.mu.Unlock()

	if discard {
		err := c.discardCommand()
		c.endCommand()
		return err
	}
	if atStart {
		if reason := c.byeReason(); reason != "" {
			c.bye(reason)
			return io.EOF
		}
	}
	timeout := c.srvReadTimeout()
	if atStart || rawNext {
		timeout = c.waitTimeout()
	}
	c.mu.Lock()
	budget := c.srv.maxLine() - c.cmdBytes
	if atStart || rawNext {
		budget = c.srv.maxLine()
	}
	c.mu.Unlock()
	line, err := c.readLine(budget, timeout, atStart || rawNext)
	if err != nil {
		return c.readFailed(err, atStart || rawNext)
	}
	if rawNext {
		c.mu.Lock()
		c.rawNext = false
		if c.name == "IDLE" && bytes.EqualFold(bytes.TrimRight(line, "\r\n"), []byte("DONE")) {
			// imapserver takes only "DONE"; commands are case-insensitive.
			line = []byte("DONE\r\n")
		}
		c.pending = line
		c.mu.Unlock()
		return nil
	}
	if atStart {
		tag, name, rest := parseCommandLine(line)
		c.mu.Lock()
		c.tag, c.name = tag, name
		c.inCmd = true
		c.cmdBytes, c.litIndex = 0, 0
		c.appendMb = name == "APPEND" && bytes.HasPrefix(rest, []byte("{"))
		c.appendMs = false
		c.peek822 = false
		c.saveOnly = (name == "SEARCH" || name == "UID SEARCH") && saveOnlyRE.Match(rest)
		c.cmdStart = time.Now()
		c.mu.Unlock()
		switch name {
		case "ID":
			return c.cmdID(line)
		case "STARTTLS":
			return c.cmdStartTLS(line)
		case "FETCH", "UID FETCH":
			line = c.rewritePeek(line)
		}
	}
	if mailboxCommands[c.command()] && bytes.IndexByte(line, '&') >= 0 && c.utf8Names() {
		line = bytes.ReplaceAll(line, []byte("&"), []byte("&-"))
	}
	c.mu.Lock()
	c.cmdBytes += len(line)
	c.lit = literalState{} // the one before this line, if any, is over
	c.mu.Unlock()

	lit, hasLit, valid := parseLiteral(line)
	if !hasLit {
		c.mu.Lock()
		c.pending = line
		c.inCmd = false
		c.mu.Unlock()
		return nil
	}
	if !valid {
		return c.reject(lit, "BAD Invalid literal size", 0, atStart)
	}
	limit, isMessage := c.literalLimit()
	if lit.size > limit {
		if isMessage {
			return c.reject(lit, fmt.Sprintf("NO [TOOBIG] Message too big (APPENDLIMIT=%d)", limit), limit+maxDrain, atStart)
		}
		return c.reject(lit, "NO [TOOBIG] Literal too big for this command", maxDrain, atStart)
	}
	c.mu.Lock()
	c.litIndex++
	if isMessage {
		c.appendMs = true
	}
	c.lit = literalState{active: true, left: lit.size, sync: lit.sync}
	c.pending = line
	c.mu.Unlock()
	return nil
}

// literalLimit is the largest literal the current command may announce
// next, and whether that literal is an APPEND message.
func (c *wireConn) literalLimit() (int64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.name == "APPEND" && c.authed && !c.appendMs && !(c.appendMb && c.litIndex == 0) {
		return c.srv.appendLimit(), true
	}
	return maxBufferedLiteral, false
}

// reject refuses the literal the current command's last line announced.
// A non-synchronizing one is read and dropped first, with the rest of the
// command, up to drain bytes; above that the connection is closed. If the
// line was the command's first, imapserver has seen nothing of it and
// resp is our reply; otherwise imapserver is half-way through the command
// and gets an empty line instead, which it answers with BAD.
func (c *wireConn) reject(lit literal, resp string, drain int64, first bool) error {
	if !lit.sync {
		if lit.size < 0 || lit.size > drain {
			c.bye("Literal too big")
			return io.EOF
		}
		if err := c.skip(lit.size); err != nil {
			return c.readFailed(err, false)
		}
		if err := c.discardCommand(); err != nil {
			return err
		}
	}
	c.mu.Lock()
	tag := c.tag
	c.mu.Unlock()
	c.endCommand()
	if !first {
		c.mu.Lock()
		c.pending = []byte("\r\n")
		c.mu.Unlock()
		return nil
	}
	return c.reply(tag + " " + resp)
}

// skip reads and drops n bytes of a literal.
func (c *wireConn) skip(n int64) error {
	buf := make([]byte, 32*1024)
	for n > 0 {
		m, err := c.readRaw(buf[:min(int64(len(buf)), n)], c.srvReadTimeout(), false)
		n -= int64(m)
		if err != nil && n > 0 {
			return err
		}
	}
	return nil
}

// discardCommand reads and drops the rest of a command: the literal still
// under way and the lines after it, with their non-synchronizing literals.
// It stops at a synchronizing literal: the client waits for a continuation
// request, gets the tagged reply instead and drops the command itself.
func (c *wireConn) discardCommand() error {
	c.mu.Lock()
	left := c.lit.left
	c.lit = literalState{}
	c.mu.Unlock()
	if left > 0 {
		if left > maxDrain {
			c.bye("Literal too big")
			return io.EOF
		}
		if err := c.skip(left); err != nil {
			return c.readFailed(err, false)
		}
	}
	for {
		line, err := c.readLine(c.srv.maxLine(), c.srvReadTimeout(), false)
		if err != nil {
			return c.readFailed(err, false)
		}
		lit, hasLit, valid := parseLiteral(line)
		if !hasLit || (lit.sync && valid) {
			return nil
		}
		if !valid || lit.size > maxDrain {
			c.bye("Literal too big")
			return io.EOF
		}
		if err := c.skip(lit.size); err != nil {
			return c.readFailed(err, false)
		}
	}
}

func (c *wireConn) endCommand() {
	c.mu.Lock()
	c.inCmd = false
	c.lit = literalState{}
	c.pending = nil
	c.mu.Unlock()
}

// byeReason says why the connection must end before its next command.
func (c *wireConn) byeReason() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.stopping:
		return "Server shutting down"
	case c.badCount >= orDefault(c.srv.MaxBadCommands, DefaultMaxBadCommands):
		return "Too many invalid commands"
	}
	return ""
}
