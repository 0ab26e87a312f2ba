package imap

import (
	"bytes"
	"errors"
	"io"
	"net/url"
	"strconv"
	"strings"

	"github.com/emersion/go-imap/v2"

	"github.com/letterbox-mail/letterbox/store"
)

// CATENATE (RFC 4469): APPEND builds a message from TEXT literals and
// URLs (RFC 5092) of messages or sections of the user's own mailboxes.
// The parts are decoded as the store reads the message, so literals stream
// like a plain APPEND's; the total is held to APPENDLIMIT.

// appendCatenate stages one message given as "CATENATE (" parts ")".
func (s *session) appendCatenate(p *parser, mbox *store.Mailbox, opts store.AppendOptions) (*store.Staged, error) {
	p.sp()
	p.expect('(')
	cr := &catenateReader{s: s, p: p, left: opts.MaxSize}
	opts.MaxSize = 0 // held by the reader
	st, err := mbox.Stage(cr, opts)
	if cr.cur != nil {
		cr.closeCur()
	}
	if cr.err != nil {
		if st != nil {
			st.Discard()
		}
		var pe *protoError
		var se *syntaxError
		var lr *literalRefused
		switch {
		case errors.As(cr.err, &lr):
			panic(lr) // the dispatcher drains what is left of the command
		case errors.As(cr.err, &pe), errors.As(cr.err, &se):
			return nil, cr.err
		}
		var ioe *ioError
		if errors.As(cr.err, &ioe) {
			return nil, ioe
		}
		return nil, cr.err
	}
	if err != nil {
		return nil, err
	}
	if cr.total == 0 {
		st.Discard()
		return nil, errEmptyMessage
	}
	return st, nil
}

// catenateReader reads the parts one after the other, decoding the next
// one when the one before is used up.
type catenateReader struct {
	s       *session
	p       *parser
	left    int64 // bytes the message may still have
	total   int64
	parts   int
	cur     io.Reader
	closer  io.Closer // of a URL part's message
	literal bool      // cur is a literal of the command
	done    bool
	err     error
}

func (cr *catenateReader) Read(b []byte) (int, error) {
	for {
		if cr.err != nil {
			return 0, cr.err
		}
		if cr.cur == nil {
			if cr.done {
				return 0, io.EOF
			}
			if err := cr.next(); err != nil {
				cr.err = err
				return 0, err
			}
			continue
		}
		n, err := cr.cur.Read(b)
		cr.total += int64(n)
		if err == io.EOF {
			if cerr := cr.closeCur(); cerr != nil {
				cr.err = cerr
				return n, cerr
			}
			if n > 0 {
				return n, nil
			}
			continue
		}
		if err != nil {
			cr.err = err
		}
		return n, err
	}
}

// closeCur ends the current part; after a literal the rest of the
// command line is read.
func (cr *catenateReader) closeCur() (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = parsePanic(v)
		}
	}()
	if cr.closer != nil {
		cr.closer.Close()
		cr.closer = nil
	}
	if cr.literal {
		cr.literal = false
		cr.p.finishStream()
	}
	cr.cur = nil
	return nil
}

// parsePanic turns a decoder panic into an error.
func parsePanic(v any) error {
	switch e := v.(type) {
	case *syntaxError:
		return e
	case *literalRefused:
		return e
	case *ioError:
		return e
	}
	panic(v)
}

// next decodes the next part, or the closing parenthesis.
func (cr *catenateReader) next() (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = parsePanic(v)
		}
	}()
	p := cr.p
	if cr.parts > 0 || p.peek() == ')' {
		if p.maybe(')') {
			if cr.parts == 0 {
				p.fail("CATENATE needs a part")
			}
			cr.done = true
			return nil
		}
		p.sp()
	}
	cr.parts++
	switch w := p.word(); w {
	case "TEXT":
		p.sp()
		if p.trail.valid && p.trail.size > cr.left {
			panic(&literalRefused{text: "Message too big"})
		}
		r := p.literalStream(cr.left, true)
		cr.left -= r.size
		cr.cur, cr.literal = r, true
	case "URL":
		p.sp()
		u := p.astring()
		r, n, closer, err := cr.s.openURL(u)
		if err != nil {
			return err
		}
		if n > cr.left {
			if closer != nil {
				closer.Close()
			}
			return no("TOOBIG", "Message too big")
		}
		cr.left -= n
		cr.cur, cr.closer = r, closer
	default:
		p.fail("unknown CATENATE part %s", w)
	}
	return nil
}

// badURL is NO [BADURL url] (RFC 4469 §5).
func badURL(u string) error {
	var b strings.Builder
	b.WriteString("BADURL ")
	if isAtom(u, false) {
		b.WriteString(u)
	} else {
		b.WriteString(strconv.Quote(u))
	}
	return no(b.String(), "Bad or unknown URL")
}

// openURL opens what an IMAP URL names (RFC 5092 §3: [imap://user@host]
// /mailbox[;UIDVALIDITY=v]/;UID=u[/;SECTION=s][/;PARTIAL=o.l], or
// relative to the selected mailbox ";UID=u..."), and returns a reader of
// its bytes and their number. Only the user's own messages can be named.
func (s *session) openURL(raw string) (io.Reader, int64, io.Closer, error) {
	rest := raw
	if i := strings.Index(strings.ToLower(rest), "imap://"); i == 0 {
		rest = rest[len("imap://"):]
		slash := strings.IndexByte(rest, '/')
		if slash < 0 {
			return nil, 0, nil, badURL(raw)
		}
		auth := rest[:slash]
		if at := strings.LastIndexByte(auth, '@'); at >= 0 {
			user, _, _ := strings.Cut(auth[:at], ";")
			if u, err := url.PathUnescape(user); err != nil || !strings.EqualFold(u, s.username) {
				return nil, 0, nil, badURL(raw)
			}
		}
		rest = rest[slash:]
	}
	var name string
	switch {
	case strings.HasPrefix(rest, "/"):
		end := strings.Index(rest, "/;")
		if end < 0 {
			return nil, 0, nil, badURL(raw)
		}
		name, rest = rest[1:end], rest[end+1:]
	case strings.HasPrefix(strings.ToUpper(rest), ";UID=") && s.sel != nil:
		name = s.sel.name
	default:
		return nil, 0, nil, badURL(raw)
	}
	var uidValidity, uid uint64
	if mb, v, ok := strings.Cut(name, ";"); ok {
		k, val, _ := strings.Cut(v, "=")
		if !strings.EqualFold(k, "UIDVALIDITY") {
			return nil, 0, nil, badURL(raw)
		}
		var err error
		if uidValidity, err = strconv.ParseUint(val, 10, 32); err != nil {
			return nil, 0, nil, badURL(raw)
		}
		name = mb
	}
	mboxName, err := url.PathUnescape(name)
	if err != nil {
		return nil, 0, nil, badURL(raw)
	}
	var section, partial string
	for _, f := range strings.Split(rest, "/") {
		k, v, ok := strings.Cut(f, "=")
		if !ok || !strings.HasPrefix(k, ";") {
			return nil, 0, nil, badURL(raw)
		}
		switch strings.ToUpper(k) {
		case ";UID":
			if uid, err = strconv.ParseUint(v, 10, 32); err != nil || uid == 0 {
				return nil, 0, nil, badURL(raw)
			}
		case ";SECTION":
			if section, err = url.PathUnescape(v); err != nil {
				return nil, 0, nil, badURL(raw)
			}
		case ";PARTIAL":
			partial = v
		default:
			return nil, 0, nil, badURL(raw) // URLAUTH and the like
		}
	}
	if uid == 0 {
		return nil, 0, nil, badURL(raw)
	}
	mbox, err := s.user.Open(s.ctx, store.CanonicalName(mboxName))
	if err != nil {
		return nil, 0, nil, badURL(raw)
	}
	defer mbox.Close()
	var v uint32
	var size int64
	found := false
	mbox.Read(s.ctx, func(view *store.View) {
		v = view.UIDValidity()
		if i := view.Seq(uint32(uid)) - 1; i >= 0 {
			found, size = true, view.At(i).Size
		}
	})
	if !found || uidValidity != 0 && uint64(v) != uidValidity {
		return nil, 0, nil, badURL(raw)
	}
	src := msgSource{mbox: mbox, key: msgKey{uid: uint32(uid)}}
	bs := &imap.FetchItemBodySection{}
	if section != "" {
		if bs, err = parseURLSection(section); err != nil {
			return nil, 0, nil, badURL(raw)
		}
	}
	if partial != "" {
		off, n, ok := strings.Cut(partial, ".")
		o, err1 := strconv.ParseInt(off, 10, 64)
		l, err2 := strconv.ParseInt(n, 10, 64)
		if !ok && err1 == nil {
			l, err2 = 1<<62, nil
		}
		if err1 != nil || err2 != nil || o < 0 || l <= 0 {
			return nil, 0, nil, badURL(raw)
		}
		bs.Partial = &imap.SectionPartial{Offset: o, Size: l}
	}
	info, err := s.load(src, size, needOf(bs))
	if err != nil {
		return nil, 0, nil, badURL(raw)
	}
	sec, err := s.bodySection(src, info, bs)
	if err != nil {
		return nil, 0, nil, badURL(raw)
	}
	if sec.inMem {
		return bytes.NewReader(sec.data), int64(len(sec.data)), nil, nil
	}
	// The handle closes when this returns; the reader keeps its own.
	m2, err := s.user.Open(s.ctx, mbox.Name())
	if err != nil {
		return nil, 0, nil, badURL(raw)
	}
	body, err := m2.OpenMessage(s.ctx, uint32(uid))
	if err != nil {
		m2.Close()
		return nil, 0, nil, badURL(raw)
	}
	if _, err := io.CopyN(io.Discard, body, sec.off); err != nil {
		body.Close()
		m2.Close()
		return nil, 0, nil, badURL(raw)
	}
	return io.LimitReader(body, sec.n), sec.n, closers{body, m2}, nil
}

type closers []io.Closer

func (cs closers) Close() error {
	for _, c := range cs {
		c.Close()
	}
	return nil
}

// parseURLSection decodes a URL's section ("1.2.MIME", "HEADER.FIELDS
// (To)") with the FETCH section grammar.
func parseURLSection(sec string) (bs *imap.FetchItemBodySection, err error) {
	defer func() {
		if v := recover(); v != nil {
			if _, ok := v.(*syntaxError); !ok {
				panic(v)
			}
			err = errors.New("bad section")
		}
	}()
	p := &parser{}
	p.setLine([]byte("[" + sec + "]"))
	bs, _ = parseSection(p)
	p.end()
	return bs, nil
}
