package imap

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
)

// mimePart is one MIME entity of a message, located by byte offsets in the
// message as it goes on the wire (CRLF line ends, as store.Body reads it),
// so that any section can be sent straight from the file.
type mimePart struct {
	hdrOff  int64 // first byte of the header
	bodyOff int64 // first byte after the blank line ending the header
	end     int64 // end of the body: before the CRLF that belongs to the next boundary
	lines   int64 // lines in the body

	fields   []headerField // header fields BODYSTRUCTURE and ENVELOPE need
	typ, sub string        // lower case
	params   []param       // Content-Type parameters, RFC 2231 continuations joined

	children []*mimePart // multipart
	msg      *mimePart   // message/rfc822: the message inside
}

type headerField struct {
	name  string // lower case
	value string // raw, unfolded
}

type param struct{ key, value string }

// header returns the first value of a field, "" if absent.
func (p *mimePart) header(name string) string {
	for _, f := range p.fields {
		if f.name == name {
			return f.value
		}
	}
	return ""
}

func (p *mimePart) param(key string) string {
	for _, pr := range p.params {
		if pr.key == key {
			return pr.value
		}
	}
	return ""
}

func (p *mimePart) isMultipart() bool { return p.typ == "multipart" && len(p.children) > 0 }

// keptFields are the header fields remembered while parsing: those
// BODYSTRUCTURE, ENVELOPE and the SORT keys are made of (fieldTable).
var keptFields = func() map[string]bool {
	m := make(map[string]bool, len(fieldTable))
	for _, n := range fieldTable {
		m[n] = true
	}
	return m
}()

// Parser limits: a message beyond them still parses, with less detail.
const (
	maxLineKept   = 16 << 10 // bytes of one header line kept
	maxFieldsKept = 200      // header fields kept per part
	maxMIMEDepth  = 64       // nesting of multiparts and messages
	maxParts      = 10000    // parts per message
)

// parseMessage reads a whole message and returns its MIME structure.
func parseMessage(r io.Reader) (*mimePart, error) {
	p := &mimeParser{r: bufio.NewReaderSize(r, 32<<10)}
	root := p.entity(false, 0)
	if p.err != nil && !errors.Is(p.err, io.EOF) {
		return nil, p.err
	}
	return root, nil
}

// parseHeaderOnly reads just the top-level header.
func parseHeaderOnly(r io.Reader) (*mimePart, error) {
	p := &mimeParser{r: bufio.NewReaderSize(r, 8<<10), headerOnly: true}
	root := p.entity(false, 0)
	if p.err != nil && !errors.Is(p.err, io.EOF) {
		return nil, p.err
	}
	return root, nil
}

type mimeLine struct {
	start    int64
	n        int64  // length with the line end
	data     []byte // the first maxLineKept bytes
	lf       bool   // ends with LF
	lfBefore int64  // LFs in the message before this line
	prevN    int64  // length of the line before it
	prevCRLF bool   // the line before it ends with CRLF
}

func (l *mimeLine) blank() bool {
	return l.lf && (l.n == 1 || (l.n == 2 && l.data[0] == '\r'))
}

// content is the line without its line end.
func (l *mimeLine) content() []byte {
	d := l.data
	if l.lf && int64(len(d)) == l.n {
		d = bytes.TrimSuffix(d, []byte("\n"))
		d = bytes.TrimSuffix(d, []byte("\r"))
	}
	return d
}

type mimeParser struct {
	r          *bufio.Reader
	off        int64
	lfs        int64 // LFs read
	prevN      int64
	prevCRLF   bool
	partial    bool // the last line read has no LF
	back       *mimeLine
	bounds     []string
	err        error
	nparts     int
	headerOnly bool
}

func (p *mimeParser) next() (*mimeLine, bool) {
	if p.back != nil {
		l := p.back
		p.back = nil
		return l, true
	}
	if p.err != nil {
		return nil, false
	}
	l := &mimeLine{start: p.off, lfBefore: p.lfs, prevN: p.prevN, prevCRLF: p.prevCRLF}
	crlf := false
	for {
		chunk, err := p.r.ReadSlice('\n')
		l.n += int64(len(chunk))
		if room := maxLineKept - len(l.data); room > 0 {
			l.data = append(l.data, chunk[:min(room, len(chunk))]...)
		}
		if err == nil {
			l.lf = true
			crlf = bytes.HasSuffix(chunk, []byte("\r\n")) || (len(chunk) == 1 && l.n > 1)
			break
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		p.err = err
		break
	}
	if l.n == 0 {
		return nil, false
	}
	p.off += l.n
	if l.lf {
		p.lfs++
	}
	p.partial = !l.lf
	p.prevN, p.prevCRLF = l.n, crlf
	return l, true
}

func (p *mimeParser) unread(l *mimeLine) { p.back = l }

// pos is where the next line starts.
func (p *mimeParser) pos() int64 {
	if p.back != nil {
		return p.back.start
	}
	return p.off
}

// boundary reports whether l is a boundary line of an enclosing multipart:
// the index in p.bounds and whether it closes that multipart.
func (p *mimeParser) boundary(l *mimeLine) (idx int, closing, ok bool) {
	d := l.data
	if len(d) < 3 || d[0] != '-' || d[1] != '-' {
		return 0, false, false
	}
	for i := len(p.bounds) - 1; i >= 0; i-- {
		b := p.bounds[i]
		if !bytes.HasPrefix(d[2:], []byte(b)) {
			continue
		}
		rest := d[2+len(b):]
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

// finish sets where a body that started at part.bodyOff ends: at the
// boundary line left unread (whose preceding line end belongs to it, RFC
// 2046 §5.1.1), or at the end of the message.
func (p *mimeParser) finish(part *mimePart, bodyLF int64) {
	cut := p.back
	if cut == nil {
		part.end = p.off
		part.lines = p.lfs - bodyLF
		if p.partial && part.end > part.bodyOff {
			part.lines++
		}
		return
	}
	if cut.start <= part.bodyOff {
		part.end, part.lines = part.bodyOff, 0
		return
	}
	eol := int64(1)
	if cut.prevCRLF {
		eol = 2
	}
	part.end = max(part.bodyOff, cut.start-eol)
	part.lines = cut.lfBefore - bodyLF - 1
	if cut.prevN-eol > 0 {
		part.lines++
	}
	part.lines = max(part.lines, 0)
}

// entity parses a header and the body that follows, up to a boundary of an
// enclosing multipart (left unread) or the end.
func (p *mimeParser) entity(inDigest bool, depth int) *mimePart {
	p.nparts++
	part := &mimePart{hdrOff: p.pos()}
	p.header(part)
	bodyLF := p.lfs
	if p.back != nil {
		bodyLF = p.back.lfBefore
	}
	part.contentType(inDigest)
	if p.headerOnly {
		return part
	}
	deeper := depth < maxMIMEDepth && p.nparts < maxParts
	switch {
	case part.typ == "multipart" && part.param("boundary") != "" && deeper:
		p.multipart(part, depth)
	case part.typ == "message" && (part.sub == "rfc822" || part.sub == "global") && deeper:
		part.msg = p.entity(false, depth+1)
	default:
		p.skipBody()
	}
	p.finish(part, bodyLF)
	return part
}

// header reads header lines up to the blank line.
func (p *mimeParser) header(part *mimePart) {
	var cur []byte
	var curName string
	flush := func() {
		if curName != "" && keptFields[curName] && len(part.fields) < maxFieldsKept {
			part.fields = append(part.fields, headerField{name: curName, value: unfold(cur)})
		}
		curName, cur = "", nil
	}
	defer flush()
	for {
		l, ok := p.next()
		if !ok {
			part.bodyOff = p.off
			return
		}
		if _, _, isB := p.boundary(l); isB {
			// A boundary inside the header: the part has no body.
			p.unread(l)
			part.bodyOff = l.start
			return
		}
		if l.blank() {
			part.bodyOff = l.start + l.n
			return
		}
		d := l.content()
		if len(d) > 0 && (d[0] == ' ' || d[0] == '\t') && curName != "" {
			cur = append(cur, "\r\n"...)
			cur = append(cur, d...)
			continue
		}
		flush()
		if name, value, ok := bytes.Cut(d, []byte(":")); ok && validFieldName(name) {
			curName = strings.ToLower(string(bytes.TrimRight(name, " \t")))
			cur = append(cur[:0], value...)
		}
	}
}

func validFieldName(b []byte) bool {
	b = bytes.TrimRight(b, " \t")
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c <= ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}

// unfold removes the CRLFs of folding and the space after the colon.
func unfold(v []byte) string {
	v = bytes.ReplaceAll(v, []byte("\r\n"), nil)
	return strings.TrimLeft(string(v), " \t")
}

// skipBody reads a leaf body up to a boundary (left unread) or the end.
func (p *mimeParser) skipBody() {
	for {
		l, ok := p.next()
		if !ok {
			return
		}
		if _, _, isB := p.boundary(l); isB {
			p.unread(l)
			return
		}
	}
}

// multipart reads the preamble, the parts and the epilogue, and leaves an
// outer boundary that ends it unread.
func (p *mimeParser) multipart(part *mimePart, depth int) {
	p.bounds = append(p.bounds, part.param("boundary"))
	level := len(p.bounds) - 1
	defer func() {
		p.bounds = p.bounds[:level]
		part.ensureChild()
	}()
	// Preamble.
	for {
		l, ok := p.next()
		if !ok {
			return
		}
		idx, closing, isB := p.boundary(l)
		if !isB {
			continue
		}
		if idx < level {
			p.unread(l)
			return
		}
		if closing {
			p.epilogue(level)
			return
		}
		break
	}
	// Parts, each ended by a boundary line.
	for {
		part.children = append(part.children, p.entity(part.sub == "digest", depth+1))
		l, ok := p.next()
		if !ok {
			return
		}
		idx, closing, _ := p.boundary(l)
		if idx < level {
			p.unread(l)
			return
		}
		if closing || p.nparts >= maxParts {
			p.epilogue(level)
			return
		}
	}
}

// epilogue skips lines up to an outer boundary (left unread) or the end.
func (p *mimeParser) epilogue(level int) {
	for {
		l, ok := p.next()
		if !ok {
			return
		}
		if idx, _, isB := p.boundary(l); isB && idx < level {
			p.unread(l)
			return
		}
	}
}

// ensureChild gives a multipart without parts an empty text/plain one, as
// BODYSTRUCTURE has no form for a multipart without children.
func (p *mimePart) ensureChild() {
	if len(p.children) == 0 {
		c := &mimePart{hdrOff: p.bodyOff, bodyOff: p.bodyOff, end: p.bodyOff, typ: "text", sub: "plain",
			params: []param{{"charset", "us-ascii"}}}
		p.children = append(p.children, c)
	}
}
