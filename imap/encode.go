package imap

import (
	"bytes"
	"io"
	"net"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// output is the encoding side of a connection (RFC 3501 §7, RFC 9051 §7):
// responses are written into a buffer that goes to the client when the
// client has to act on it (a tagged reply, a continuation request, BYE,
// an update during IDLE) or when it is full, so a FETCH of 2,000 messages
// is a few large writes, not 2,000 small ones. Message literals are read
// from the store's Body straight into the buffer.
//
// The buffer comes from a pool and goes back to it whenever everything was
// written, so a connection waiting for a command (or in IDLE) holds none.
// A write error is sticky: every later write is dropped and the dispatcher
// ends the connection.
type output struct {
	dst  io.Writer    // the connection, or the compressor in front of it
	sync func() error // after a flush: push the compressor's bytes out
	buf  []byte
	err  error
	utf8 bool // strings may carry UTF-8 (UTF8=ACCEPT, IMAP4rev2)
}

// outBufSize is the size of the output buffer: a flush happens at the
// latest when this much is waiting.
const outBufSize = 32 << 10

var outPool = sync.Pool{New: func() any { b := make([]byte, 0, outBufSize); return &b }}

func (o *output) grab() {
	if o.buf == nil {
		o.buf = (*outPool.Get().(*[]byte))[:0]
	}
}

func (o *output) write(p []byte) {
	for len(p) > 0 && o.err == nil {
		o.grab()
		room := cap(o.buf) - len(o.buf)
		if room == 0 {
			o.flushBuf()
			continue
		}
		n := min(room, len(p))
		o.buf = append(o.buf, p[:n]...)
		p = p[n:]
	}
}

func (o *output) writeString(s string) {
	for len(s) > 0 && o.err == nil {
		o.grab()
		room := cap(o.buf) - len(o.buf)
		if room == 0 {
			o.flushBuf()
			continue
		}
		n := min(room, len(s))
		o.buf = append(o.buf, s[:n]...)
		s = s[n:]
	}
}

func (o *output) byte1(c byte) {
	if o.err != nil {
		return
	}
	o.grab()
	if len(o.buf) == cap(o.buf) {
		o.flushBuf()
		if o.err != nil {
			return
		}
	}
	o.buf = append(o.buf, c)
}

// flushBuf writes the buffer out, keeping it.
func (o *output) flushBuf() {
	if o.err != nil || len(o.buf) == 0 {
		return
	}
	_, o.err = o.dst.Write(o.buf)
	o.buf = o.buf[:0]
}

// flush writes everything out and gives the buffer back.
func (o *output) flush() error {
	o.flushBuf()
	if o.err == nil && o.sync != nil {
		o.err = o.sync()
	}
	if o.buf != nil {
		b := o.buf[:0]
		o.buf = nil
		outPool.Put(&b)
	}
	return o.err
}

// ReadFrom copies a literal's content from r into the buffer without a
// buffer of its own in between.
func (o *output) ReadFrom(r io.Reader) (int64, error) {
	var total int64
	for o.err == nil {
		o.grab()
		if len(o.buf) == cap(o.buf) {
			o.flushBuf()
			continue
		}
		n, err := r.Read(o.buf[len(o.buf):cap(o.buf)])
		o.buf = o.buf[:len(o.buf)+n]
		total += int64(n)
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
	return total, o.err
}

// Response grammar.

func (o *output) sp()           { o.byte1(' ') }
func (o *output) crlf()         { o.writeString("\r\n") }
func (o *output) atom(s string) { o.writeString(s) }
func (o *output) nilAtom()      { o.writeString("NIL") }
func (o *output) num64(n int64) { o.writeString(strconv.FormatInt(n, 10)) }

// num writes a number straight into the buffer: FETCH and SEARCH write one
// or more per message, and a string for each would be garbage to collect.
func (o *output) num(n uint64) {
	if o.err != nil {
		return
	}
	o.grab()
	if cap(o.buf)-len(o.buf) < 20 {
		o.flushBuf()
		if o.err != nil {
			return
		}
	}
	o.buf = strconv.AppendUint(o.buf, n, 10)
}

// str writes a string: quoted where the grammar allows it (no CR, LF or
// NUL, 8-bit only once UTF-8 is enabled), a literal otherwise.
func (o *output) str(s string) {
	if o.quotable(s) {
		o.quoted(s)
		return
	}
	o.writeString("{" + strconv.Itoa(len(s)) + "}\r\n")
	o.writeString(s)
}

func (o *output) quotable(s string) bool {
	if len(s) > 4096 {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == 0 || c == '\r' || c == '\n':
			return false
		case c >= 0x80 && !o.utf8:
			return false
		}
	}
	return !o.utf8 || utf8.ValidString(s)
}

func (o *output) quoted(s string) {
	o.byte1('"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			o.byte1('\\')
		}
		o.byte1(s[i])
	}
	o.byte1('"')
}

// nstr writes NIL for "".
func (o *output) nstr(s string) {
	if s == "" {
		o.nilAtom()
		return
	}
	o.str(s)
}

// literalHeader announces a literal of n bytes, a literal8 (RFC 3516) if
// binary.
func (o *output) literalHeader(n int64, binary bool) {
	if binary {
		o.byte1('~')
	}
	o.writeString("{" + strconv.FormatInt(n, 10) + "}\r\n")
}

// isAtom reports whether s can be sent as an atom (an astring's atom form
// if astring: "]" allowed).
func isAtom(s string, astring bool) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isAtomChar(s[i]) && !(astring && s[i] == ']') {
			return false
		}
	}
	return true
}

// isAtomChar is ATOM-CHAR of RFC 3501 §9: any CHAR but atom-specials.
func isAtomChar(c byte) bool {
	if c <= ' ' || c >= 0x7f {
		return false
	}
	switch c {
	case '(', ')', '{', '%', '*', '"', '\\', ']':
		return false
	}
	return true
}

// nulFilter replaces NUL with 0x80 in what passes, keeping its size: a
// message that holds NUL (delivered from outside) may not be sent in an
// ordinary literal (RFC 3501 §4.3, RFC 9051 §4.3). Dovecot does the same.
type nulFilter struct{ r io.Reader }

func (f nulFilter) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	q := p[:n]
	for {
		i := bytes.IndexByte(q, 0)
		if i < 0 {
			break
		}
		q[i] = 0x80
		q = q[i+1:]
	}
	return n, err
}

// deadlineWriter bounds every write to the connection: a client that
// stops reading is cut after timeout, and no goroutine hangs in Write.
type deadlineWriter struct {
	c       net.Conn
	timeout time.Duration
}

func (w deadlineWriter) Write(p []byte) (int, error) {
	w.c.SetWriteDeadline(time.Now().Add(w.timeout))
	return w.c.Write(p)
}
