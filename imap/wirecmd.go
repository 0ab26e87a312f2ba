package imap

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Commands answered in front of imapserver, rewrites of command lines, our
// own replies, and the rest of net.Conn.

// cmdID answers ID (RFC 2971) in any state, telling nothing about the
// server. imapserver does not know ID and would end the connection.
func (c *wireConn) cmdID(line []byte) error {
	lit, hasLit, _ := parseLiteral(line)
	if hasLit {
		return c.reject(lit, "BAD Literals are not supported in ID", maxBufferedLiteral, true)
	}
	c.mu.Lock()
	tag := c.tag
	c.mu.Unlock()
	c.endCommand()
	return c.reply("* ID NIL\r\n" + tag + " OK ID completed")
}

// cmdStartTLS does STARTTLS (RFC 3501 §6.2.1, RFC 2595). What the client
// sent after the command in the clear is dropped, so nothing can be
// injected into the TLS session.
func (c *wireConn) cmdStartTLS(line []byte) error {
	c.mu.Lock()
	tag, authed, isTLS := c.tag, c.authed, c.isTLS
	c.mu.Unlock()
	c.endCommand()
	if len(bytes.TrimRight(line, "\r\n")) != len(tag)+len(" STARTTLS") {
		return c.reply(tag + " BAD STARTTLS takes no arguments")
	}
	switch {
	case c.srv.TLSConfig == nil:
		return c.reply(tag + " NO STARTTLS is not available")
	case isTLS:
		return c.reply(tag + " BAD TLS is already active")
	case authed:
		return c.reply(tag + " BAD STARTTLS is only allowed before login")
	}
	if err := c.reply(tag + " OK Begin TLS negotiation now"); err != nil {
		return err
	}
	raw := c.conn()
	tc := tls.Server(raw, c.srv.TLSConfig)
	tc.SetDeadline(time.Now().Add(orDefault(c.srv.LoginTimeout, DefaultLoginTimeout)))
	if err := tc.Handshake(); err != nil {
		c.srv.log.Debug("imap: STARTTLS handshake failed", "conn", c.id, "ip", c.ip, "err", err)
		return io.EOF
	}
	tc.SetDeadline(time.Time{})
	c.rawMu.Lock()
	c.raw = tc
	c.rawMu.Unlock()
	c.br = bufio.NewReaderSize(tc, 4096)
	c.mu.Lock()
	c.isTLS = true
	c.mu.Unlock()
	return nil
}

// reply writes lines of our own. It is only called from the reading
// goroutine while imapserver waits for input, so no response of
// imapserver's is under way.
func (c *wireConn) reply(lines string) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if !c.out.atBoundary() {
		return io.EOF
	}
	c.countBad(lines)
	if err := c.flushLocked(); err != nil {
		return io.EOF
	}
	raw := c.conn()
	raw.SetWriteDeadline(time.Now().Add(time.Minute))
	_, err := io.WriteString(raw, lines+"\r\n")
	raw.SetWriteDeadline(time.Time{})
	if err != nil {
		return io.EOF
	}
	return nil
}

// countBad counts our own BAD replies and tells the Observer of the tagged
// reply among lines.
func (c *wireConn) countBad(lines string) {
	c.mu.Lock()
	tag, name, start := c.tag, c.name, c.cmdStart
	c.mu.Unlock()
	for _, l := range strings.Split(lines, "\r\n") {
		t, rest, ok := strings.Cut(l, " ")
		if !ok || t != tag {
			continue
		}
		c.mu.Lock()
		if strings.HasPrefix(rest, "BAD") {
			c.badCount++
		}
		c.cmdStart = time.Time{}
		c.mu.Unlock()
		c.observe(name, start, strings.HasPrefix(rest, "OK"))
	}
}

// bye says goodbye if no response is half written, and closes.
func (c *wireConn) bye(text string) {
	c.wmu.Lock()
	if c.out.atBoundary() {
		c.flushLocked()
		raw := c.conn()
		raw.SetWriteDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(raw, "* BYE "+text+"\r\n")
		c.out.closed = true
	}
	c.wmu.Unlock()
	c.Close()
}

// shutdown asks the connection to say BYE before its next command, and
// wakes it if it waits for one.
func (c *wireConn) shutdown() {
	c.mu.Lock()
	c.stopping = true
	c.mu.Unlock()
	c.conn().SetReadDeadline(time.Now())
}

// Output coalescing. imapserver flushes after every response line, so a
// FETCH of 2,000 messages would be 2,000 writes, TLS records and system
// calls. Responses are gathered instead and written when the client has
// to act on them (a tagged reply, a continuation request, BYE), when
// coalesceMax bytes are waiting, or coalesceDelay after the first waiting
// byte (untagged updates during IDLE).
const (
	coalesceMax   = 32 << 10
	coalesceDelay = time.Millisecond
	flushTimeout  = time.Minute
)

// Write implements net.Conn for imapserver: responses pass through the
// output filter into the coalescing buffer.
func (c *wireConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.out.closed {
		return 0, net.ErrClosed
	}
	if c.werr != nil {
		return 0, c.werr
	}
	for _, b := range c.out.feed(c, p) {
		c.wbuf = append(c.wbuf, b...) // p is imapserver's buffer: copy
	}
	if c.out.urgent || len(c.wbuf) >= coalesceMax {
		c.out.urgent = false
		if err := c.flushLocked(); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	if len(c.wbuf) > 0 && c.wtimer == nil {
		c.wtimer = time.AfterFunc(coalesceDelay, c.timedFlush)
	}
	return len(p), nil
}

// flushLocked writes what is waiting. c.wmu is held.
func (c *wireConn) flushLocked() error {
	if c.wtimer != nil {
		c.wtimer.Stop()
		c.wtimer = nil
	}
	if len(c.wbuf) == 0 || c.werr != nil {
		return c.werr
	}
	raw := c.conn()
	// imapserver's own deadline may be over by now (it clears it when a
	// response ends), so a client that stops reading is bounded here.
	raw.SetWriteDeadline(time.Now().Add(flushTimeout))
	_, err := raw.Write(c.wbuf)
	raw.SetWriteDeadline(time.Time{})
	c.wbuf = c.wbuf[:0]
	if cap(c.wbuf) > 4*coalesceMax {
		c.wbuf = nil // one huge response should not pin its buffer
	}
	if err != nil {
		c.werr = err
	}
	return err
}

func (c *wireConn) timedFlush() {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.wtimer = nil
	c.flushLocked()
}

// Close implements net.Conn.
func (c *wireConn) Close() error {
	var err error
	c.closeOnce.Do(func() {
		c.wmu.Lock()
		c.flushLocked() // what imapserver wrote last, e.g. LOGOUT's OK
		c.wmu.Unlock()
		err = c.conn().Close()
		c.srv.forget(c)
	})
	return err
}

func (c *wireConn) LocalAddr() net.Addr  { return c.conn().LocalAddr() }
func (c *wireConn) RemoteAddr() net.Addr { return c.conn().RemoteAddr() }

// Deadlines are imapserver's, which we replace with ours: reads have the
// idle and login timeouts of the input framing, and writes go to the
// coalescing buffer, whose flush sets its own deadline (flushTimeout per
// at most coalesceMax bytes). imapserver sets a write deadline around every
// response; passing each through would cost more than the writes.
func (c *wireConn) SetDeadline(t time.Time) error      { return nil }
func (c *wireConn) SetReadDeadline(t time.Time) error  { return nil }
func (c *wireConn) SetWriteDeadline(t time.Time) error { return nil }

// setAuthenticated is called by the session on login and UNAUTHENTICATE.
func (c *wireConn) setAuthenticated(v bool) {
	c.mu.Lock()
	c.authed = v
	c.mu.Unlock()
}

func (c *wireConn) secure() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.isTLS
}

// saveOnlyRE matches SEARCH arguments whose only return option is SAVE.
// RFC 5182 §2.4: SAVE does not make the server return anything, but
// imapserver then returns ALL as for RETURN (); wireout.go drops it.
var saveOnlyRE = regexp.MustCompile(`(?i)^RETURN \(\s*SAVE\s*\)`)

// mailboxCommands take mailbox names (or LIST patterns) but no other text
// that could hold "&".
var mailboxCommands = map[string]bool{
	"SELECT": true, "EXAMINE": true, "CREATE": true, "DELETE": true, "RENAME": true,
	"SUBSCRIBE": true, "UNSUBSCRIBE": true, "STATUS": true, "APPEND": true, "LIST": true,
	"LSUB": true, "COPY": true, "MOVE": true, "UID COPY": true, "UID MOVE": true,
}

// Once names are UTF-8 on the wire (UTF8=ACCEPT, RFC 6855 §3; IMAP4rev2,
// RFC 9051 §5.1), "&" is an ordinary character, but imapserver still
// decodes names as modified UTF-7, where a lone "&" is an error. In the
// lines of commands that carry names it is made "&-", which decodes to
// "&" (names sent as literals are left alone). wireout.go undoes
// imapserver's matching escape on the way out.

// rewritePeek turns RFC822.PEEK, which Outlook sends, into RFC822 for
// imapserver, which would answer "RFC822.PEEK {n}", an item name no client
// parses; the session then does not set \Seen (see peekRFC822).
func (c *wireConn) rewritePeek(line []byte) []byte {
	const peek = "RFC822.PEEK"
	up := bytes.ToUpper(line)
	if !bytes.Contains(up, []byte(peek)) {
		return line
	}
	var out []byte
	for {
		i := bytes.Index(up, []byte(peek))
		if i < 0 {
			break
		}
		end := i + len(peek)
		token := (i > 0 && (up[i-1] == ' ' || up[i-1] == '(')) &&
			(end == len(up) || strings.IndexByte(" )\r\n", up[end]) >= 0)
		if token {
			out = append(out, line[:i]...)
			out = append(out, "RFC822"...)
			c.mu.Lock()
			c.peek822 = true
			c.mu.Unlock()
		} else {
			out = append(out, line[:end]...)
		}
		line, up = line[end:], up[end:]
	}
	return append(out, line...)
}

// peekRFC822 reports whether the FETCH being executed asked for
// RFC822.PEEK (rewritten into RFC822).
func (c *wireConn) peekRFC822() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.peek822
}

// command is the name of the command being executed ("UID FETCH").
func (c *wireConn) command() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.name
}

// parseCommandLine splits "tag NAME rest": the name upper-cased, with the
// subcommand of UID.
func parseCommandLine(line []byte) (tag, name string, rest []byte) {
	line = bytes.TrimRight(line, "\r\n")
	t, r, _ := bytes.Cut(line, []byte(" "))
	n, r, _ := bytes.Cut(r, []byte(" "))
	name = string(bytes.ToUpper(n))
	if name == "UID" {
		var sub []byte
		sub, r, _ = bytes.Cut(r, []byte(" "))
		name += " " + string(bytes.ToUpper(sub))
	}
	return string(t), name, r
}

type literal struct {
	size int64
	sync bool
}

// parseLiteral finds a literal announcement ("{n}", "{n+}", "~{n}") at the
// end of a line. valid is false if the size is not a number that fits.
func parseLiteral(line []byte) (lit literal, has, valid bool) {
	l := bytes.TrimSuffix(line, []byte("\n"))
	l = bytes.TrimSuffix(l, []byte("\r"))
	if len(l) < 3 || l[len(l)-1] != '}' {
		return literal{}, false, false
	}
	open := bytes.LastIndexByte(l, '{')
	if open < 0 {
		return literal{}, false, false
	}
	num := l[open+1 : len(l)-1]
	lit.sync = true
	if bytes.HasSuffix(num, []byte("+")) {
		num = num[:len(num)-1]
		lit.sync = false
	}
	if len(num) == 0 {
		return literal{}, false, false
	}
	for _, ch := range num {
		if ch < '0' || ch > '9' {
			return literal{}, false, false
		}
	}
	n, err := strconv.ParseInt(string(num), 10, 64)
	if err != nil {
		lit.size = -1
		return lit, true, false
	}
	lit.size = n
	return lit, true, true
}
