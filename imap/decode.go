package imap

import (
	"fmt"
	"io"
	"strconv"
	"strings"
)

// The decoder (RFC 3501 §9, RFC 9051 §9): a command arrives as line
// segments separated by literals. parser holds the segment being parsed and
// reads the next one only when a literal has been taken, so every limit is
// checked before anything is read or allocated:
//
//   - a segment longer than what is left of MaxLineLength is never
//     buffered: the connection ends with BYE;
//   - a literal's size is checked against the limit of the argument it is
//     (MaxLiteralSize for strings, AppendLimit for a message) and against
//     what is left of the command's budget before a continuation request
//     is sent or a byte of it read;
//   - a non-synchronizing literal (LITERAL+) over the limit is read and
//     dropped with the rest of its command (never run as commands), up to
//     MaxLiteralDrain, and the command gets NO [TOOBIG]; a bigger one ends
//     the connection.
//
// Parse methods panic with *syntaxError, *literalRefused or *ioError; the
// dispatcher recovers them at the command boundary.
type parser struct {
	c      *conn
	line   []byte // the current segment, without its line end
	pos    int
	trail  litInfo // literal announced at the end of line, not yet read
	budget int     // bytes the command may still take (lines, buffered literals)
	stream *litReader
}

// litInfo is a literal announcement at the end of a segment: "{n}",
// "{n+}" (RFC 7888), "~{n}" (literal8, RFC 3516).
type litInfo struct {
	ok     bool
	start  int // index of "{" or "~" in line
	size   int64
	sync   bool
	binary bool
	valid  bool // the size is a number that fits
}

// literalRefused is a literal over its limit: NO [TOOBIG].
type literalRefused struct{ text string }

func (e *literalRefused) Error() string { return e.text }

func (p *parser) fail(format string, args ...any) {
	msg := format
	if len(args) > 0 {
		msg = fmt.Sprintf(format, args...)
	}
	panic(&syntaxError{msg: msg})
}

// setLine makes seg the current segment.
func (p *parser) setLine(seg []byte) {
	n := len(seg)
	if n > 0 && seg[n-1] == '\n' {
		n--
		if n > 0 && seg[n-1] == '\r' {
			n--
		}
	}
	p.line, p.pos = seg[:n], 0
	p.trail = trailingLiteral(p.line)
}

// trailingLiteral finds a literal announcement at the end of a line.
func trailingLiteral(l []byte) litInfo {
	n := len(l)
	if n < 3 || l[n-1] != '}' {
		return litInfo{}
	}
	open := -1
	for i := n - 2; i >= 0; i-- {
		c := l[i]
		if c == '{' {
			open = i
			break
		}
		if (c < '0' || c > '9') && c != '+' {
			return litInfo{}
		}
	}
	if open < 0 {
		return litInfo{}
	}
	num := l[open+1 : n-1]
	li := litInfo{ok: true, start: open, sync: true}
	if len(num) > 0 && num[len(num)-1] == '+' {
		li.sync = false
		num = num[:len(num)-1]
	}
	if len(num) == 0 {
		return litInfo{}
	}
	for _, c := range num {
		if c < '0' || c > '9' {
			return litInfo{}
		}
	}
	if open > 0 && l[open-1] == '~' {
		li.binary = true
		li.start = open - 1
	}
	v, err := strconv.ParseInt(string(num), 10, 64)
	li.size, li.valid = v, err == nil
	return li
}

// nextSegment reads the segment that follows a literal.
func (p *parser) nextSegment() {
	seg, err := p.c.readLine(p.budget, p.c.lineDeadline())
	if err != nil {
		panic(&ioError{err})
	}
	p.budget -= len(seg)
	p.setLine(seg)
}

func (p *parser) atEnd() bool { return p.pos >= len(p.line) }

func (p *parser) peek() byte {
	if p.pos < len(p.line) {
		return p.line[p.pos]
	}
	return 0
}

// end checks that the command is over.
func (p *parser) end() {
	if !p.atEnd() {
		p.fail("unexpected %q at the end", clip(p.line[p.pos:]))
	}
}

func (p *parser) sp() {
	if p.peek() != ' ' {
		p.fail("expected a space")
	}
	p.pos++
}

// maybeSP takes a space if one comes.
func (p *parser) maybeSP() bool {
	if p.peek() == ' ' {
		p.pos++
		return true
	}
	return false
}

func (p *parser) expect(c byte) {
	if p.peek() != c {
		p.fail("expected %q", string(c))
	}
	p.pos++
}

func (p *parser) maybe(c byte) bool {
	if p.peek() == c && !p.atEnd() {
		p.pos++
		return true
	}
	return false
}

// takeFold takes a case-insensitive keyword if it comes.
func (p *parser) takeFold(kw string) bool {
	if len(p.line)-p.pos < len(kw) || !strings.EqualFold(string(p.line[p.pos:p.pos+len(kw)]), kw) {
		return false
	}
	p.pos += len(kw)
	return true
}

// atom reads ATOM-CHARs (and "]" if astring).
func (p *parser) atomChars(astring bool) string {
	start := p.pos
	for p.pos < len(p.line) && (isAtomChar(p.line[p.pos]) || astring && p.line[p.pos] == ']') {
		p.pos++
	}
	return string(p.line[start:p.pos])
}

func (p *parser) atom() string {
	s := p.atomChars(false)
	if s == "" {
		p.fail("expected an atom")
	}
	return s
}

// word reads an atom made of letters, digits, "." "-" "=" and "+" (item
// and key names), upper-cased.
func (p *parser) word() string {
	start := p.pos
	for p.pos < len(p.line) {
		c := p.line[p.pos]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '=' || c == '+' || c == '_' {
			p.pos++
			continue
		}
		break
	}
	if p.pos == start {
		p.fail("expected a keyword")
	}
	return strings.ToUpper(string(p.line[start:p.pos]))
}

// number64 reads a number of at most max.
func (p *parser) number64(max uint64) uint64 {
	start := p.pos
	var v uint64
	for p.pos < len(p.line) && p.line[p.pos] >= '0' && p.line[p.pos] <= '9' {
		v = v*10 + uint64(p.line[p.pos]-'0')
		if v > max || p.pos-start > 20 {
			p.fail("number too big")
		}
		p.pos++
	}
	if p.pos == start {
		p.fail("expected a number")
	}
	return v
}

func (p *parser) number() uint32 { return uint32(p.number64(1<<32 - 1)) }

func (p *parser) nzNumber() uint32 {
	n := p.number()
	if n == 0 {
		p.fail("expected a number above zero")
	}
	return n
}

// quoted reads a quoted string (RFC 3501 §4.3): no CR, LF or NUL; "\" only
// before "\" and `"`.
func (p *parser) quoted() string {
	p.expect('"')
	var b []byte
	start := p.pos
	for {
		if p.atEnd() {
			p.fail("unterminated quoted string")
		}
		c := p.line[p.pos]
		switch c {
		case '"':
			s := string(p.line[start:p.pos])
			if b != nil {
				s = string(append(b, p.line[start:p.pos]...))
			}
			p.pos++
			return s
		case '\\':
			if p.pos+1 >= len(p.line) || (p.line[p.pos+1] != '"' && p.line[p.pos+1] != '\\') {
				p.fail("bad escape in quoted string")
			}
			b = append(b, p.line[start:p.pos]...)
			p.pos++
			start = p.pos
			p.pos++
		case 0, '\r', '\n':
			p.fail("control character in quoted string")
		default:
			p.pos++
		}
	}
}

// atLiteral reports whether a literal announcement starts here.
func (p *parser) atLiteral() bool {
	return p.trail.ok && p.pos == p.trail.start
}

// checkLiteral is everything done before a literal is read: its form, its
// size against max and the command's budget, and the continuation request
// that lets a synchronizing one come.
func (p *parser) checkLiteral(max int64, binary, counts bool) litInfo {
	if !p.atLiteral() {
		p.fail("expected a string")
	}
	li := p.trail
	switch {
	case !li.valid:
		p.fail("invalid literal size")
	case li.binary && !binary:
		p.fail("literal8 is not allowed here")
	case li.size > max || counts && li.size > int64(p.budget):
		panic(&literalRefused{text: "Literal too big for this command"})
	}
	p.pos = len(p.line)
	p.trail = litInfo{}
	if li.sync {
		if err := p.c.continuation("Ready for literal data"); err != nil {
			panic(&ioError{err})
		}
	}
	return li
}

// literal reads a literal of at most max bytes into memory.
func (p *parser) literal(max int64) []byte {
	li := p.checkLiteral(max, false, true)
	buf := make([]byte, li.size)
	if err := p.c.readFull(buf); err != nil {
		panic(&ioError{err})
	}
	p.budget -= len(buf)
	p.nextSegment()
	return buf
}

// litReader streams a literal (an APPEND message) from the connection.
type litReader struct {
	p      *parser
	left   int64
	size   int64
	binary bool
}

func (r *litReader) Read(b []byte) (int, error) {
	if r.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(b)) > r.left {
		b = b[:r.left]
	}
	n, err := r.p.c.readSome(b)
	r.left -= int64(n)
	if err != nil {
		return n, &ioError{err}
	}
	return n, nil
}

// literalStream starts a streamed literal; finishStream must follow.
func (p *parser) literalStream(max int64, binary bool) *litReader {
	li := p.checkLiteral(max, binary, false)
	p.stream = &litReader{p: p, left: li.size, size: li.size, binary: li.binary}
	return p.stream
}

// finishStream drops what the consumer left of a streamed literal and
// reads the next segment.
func (p *parser) finishStream() {
	r := p.stream
	if r == nil {
		return
	}
	p.stream = nil
	if r.left > 0 {
		if err := p.c.discard(r.left); err != nil {
			panic(&ioError{err})
		}
		r.left = 0
	}
	p.nextSegment()
}

// str reads a string: quoted or a literal of at most max bytes.
func (p *parser) str(max int64) string {
	switch p.peek() {
	case '"':
		return p.quoted()
	case '{':
		return string(p.literal(max))
	}
	p.fail("expected a string")
	return ""
}

// astring reads an atom or a string.
func (p *parser) astring() string {
	switch p.peek() {
	case '"', '{':
		return p.str(p.c.srv.maxLiteral())
	}
	s := p.atomChars(true)
	if s == "" {
		p.fail("expected an atom or a string")
	}
	return s
}

// nstring reads NIL (reported as ok false) or a string.
func (p *parser) nstring() (string, bool) {
	if p.takeFold("NIL") {
		return "", false
	}
	return p.str(p.c.srv.maxLiteral()), true
}

// list reads "(" item *(SP item) ")"; empty lists are allowed if empty.
func (p *parser) list(empty bool, item func()) {
	p.expect('(')
	if p.maybe(')') {
		if !empty {
			p.fail("empty list")
		}
		return
	}
	for {
		item()
		if p.maybe(')') {
			return
		}
		p.sp()
	}
}

func clip(b []byte) string {
	if len(b) > 20 {
		return string(b[:20]) + "..."
	}
	return string(b)
}
