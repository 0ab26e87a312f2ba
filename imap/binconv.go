package imap

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"strings"
)

// A message APPENDed as a literal8 (RFC 3516 §4.4) may carry parts whose
// content is raw binary (Content-Transfer-Encoding: binary). Maildir files
// go to clients with every bare LF as CRLF and in ordinary literals, which
// would change such a part and could put NUL into BODY[]. So, as Dovecot
// does, those parts are stored base64-encoded: BINARY[part] decodes them
// back to the exact bytes, BINARY.SIZE is exact, and BODY[part] is 7-bit.

// convertBinary copies a message from r to w with every leaf part whose
// transfer encoding is binary re-encoded as base64.
func convertBinary(w io.Writer, r io.Reader) error {
	c := &binConv{br: bufio.NewReaderSize(r, 32<<10), w: bufio.NewWriterSize(w, 32<<10)}
	c.entity(0)
	if c.rerr != nil && !errors.Is(c.rerr, io.EOF) {
		return c.rerr
	}
	if c.back != nil {
		c.write(c.back)
	}
	if c.err == nil {
		_, c.err = io.Copy(c.w, c.br) // what no part claimed
	}
	if c.err == nil {
		c.err = c.w.Flush()
	}
	return c.err
}

type binConv struct {
	br     *bufio.Reader
	w      *bufio.Writer
	bounds []string
	back   []byte // a line read and left for the caller
	rerr   error  // reading
	err    error  // writing
}

// line returns the next chunk: a whole line, or a piece of a long one
// (eol false).
func (c *binConv) line() (b []byte, eol bool) {
	if c.back != nil {
		b, c.back = c.back, nil
		return b, b[len(b)-1] == '\n'
	}
	if c.rerr != nil {
		return nil, false
	}
	b, err := c.br.ReadSlice('\n')
	if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
		c.rerr = err
	}
	if len(b) == 0 {
		return nil, false
	}
	return bytes.Clone(b), err == nil
}

// boundary reports whether a whole line is a boundary of an enclosing
// multipart: its level and whether it closes it.
func (c *binConv) boundary(b []byte) (int, bool, bool) {
	if len(b) < 3 || b[0] != '-' || b[1] != '-' {
		return 0, false, false
	}
	for i := len(c.bounds) - 1; i >= 0; i-- {
		rest, ok := bytes.CutPrefix(b[2:], []byte(c.bounds[i]))
		if !ok {
			continue
		}
		closing := bytes.HasPrefix(rest, []byte("--"))
		if closing {
			rest = rest[2:]
		}
		if len(bytes.TrimRight(rest, " \t\r\n")) == 0 {
			return i, closing, true
		}
	}
	return 0, false, false
}

func (c *binConv) write(b []byte) {
	if c.err == nil {
		_, c.err = c.w.Write(b)
	}
}

// entity copies a header and its body, up to a boundary of an enclosing
// multipart, which is left unread.
func (c *binConv) entity(depth int) {
	var header [][]byte
	var fields []headerField
	for {
		b, eol := c.line()
		if b == nil {
			break
		}
		if eol {
			if _, _, ok := c.boundary(b); ok {
				c.back = b
				break
			}
		}
		header = append(header, b)
		if eol && len(bytes.TrimRight(b, "\r\n")) == 0 {
			break
		}
	}
	fields = allFields(bytes.Join(header, nil))
	var ctype, cte string
	for _, f := range fields {
		switch f.name {
		case "content-type":
			ctype = f.value
		case "content-transfer-encoding":
			cte = strings.ToLower(strings.TrimSpace(stripComments(f.value)))
		}
	}
	typ, _, params, _ := parseContentType(ctype)
	boundary := ""
	for _, p := range params {
		if p.key == "boundary" {
			boundary = p.value
		}
	}
	switch {
	case typ == "multipart" && boundary != "" && depth < maxMIMEDepth:
		for _, h := range header {
			c.write(h)
		}
		c.multipart(boundary, depth)
	case cte == "binary" && typ != "multipart" && typ != "message":
		for _, h := range header {
			if isCTEField(h) {
				c.write([]byte("Content-Transfer-Encoding: base64\r\n"))
				continue
			}
			c.write(h)
		}
		c.encodeBody()
	default:
		for _, h := range header {
			c.write(h)
		}
		c.copyBody()
	}
}

// isCTEField reports whether a header line starts the
// Content-Transfer-Encoding field. Its value is one token, so it is never
// folded in practice; a folded one keeps its continuation lines, which
// are then harmless whitespace-led garbage after our line.
func isCTEField(h []byte) bool {
	name, _, ok := bytes.Cut(h, []byte(":"))
	return ok && strings.EqualFold(strings.TrimSpace(string(name)), "content-transfer-encoding")
}

// copyBody copies lines up to a boundary.
func (c *binConv) copyBody() {
	for {
		b, eol := c.line()
		if b == nil {
			return
		}
		if eol {
			if _, _, ok := c.boundary(b); ok {
				c.back = b
				return
			}
		}
		c.write(b)
	}
}

// multipart copies a multipart's body, converting its parts.
func (c *binConv) multipart(boundary string, depth int) {
	c.bounds = append(c.bounds, boundary)
	level := len(c.bounds) - 1
	defer func() { c.bounds = c.bounds[:level] }()
	for {
		b, eol := c.line()
		if b == nil {
			return
		}
		if eol {
			if idx, closing, ok := c.boundary(b); ok {
				if idx < level {
					c.back = b
					return
				}
				c.write(b)
				if closing {
					c.copyBody() // epilogue, up to an outer boundary
					return
				}
				c.entity(depth + 1)
				continue
			}
		}
		c.write(b)
	}
}

// encodeBody base64-encodes the body up to a boundary. The line end
// before a boundary belongs to the boundary (RFC 2046 §5.1.1), so it is
// held back until the next line is known.
func (c *binConv) encodeBody() {
	lw := &lineWrapper{w: c.w}
	enc := base64.NewEncoder(base64.StdEncoding, lw)
	var held []byte
	for {
		b, eol := c.line()
		if b == nil {
			break
		}
		if eol {
			if _, _, ok := c.boundary(b); ok {
				c.back = b
				break
			}
		}
		if held != nil {
			enc.Write(held)
			held = nil
		}
		if eol {
			end := len(b) - 1
			if end > 0 && b[end-1] == '\r' {
				end--
			}
			held = b[end:]
			b = b[:end]
		}
		enc.Write(b)
	}
	if held != nil && c.back == nil {
		enc.Write(held) // the message ends here: the line end is content
	}
	enc.Close()
	if lw.n > 0 {
		c.write([]byte("\r\n"))
	}
}

// lineWrapper breaks base64 text into lines of 76 characters (RFC 2045
// §6.8).
type lineWrapper struct {
	w   *bufio.Writer
	n   int
	err error
}

func (l *lineWrapper) Write(p []byte) (int, error) {
	total := len(p)
	if l.err != nil {
		return 0, l.err
	}
	for len(p) > 0 {
		k := min(76-l.n, len(p))
		if _, l.err = l.w.Write(p[:k]); l.err != nil {
			return 0, l.err
		}
		l.n += k
		p = p[k:]
		if l.n == 76 {
			l.w.WriteString("\r\n")
			l.n = 0
		}
	}
	return total, nil
}
