package imap

import (
	"errors"
	"io"

	"github.com/letterbox-mail/letterbox/store"
)

// cmdAppend is APPEND (RFC 3501 §6.3.11) with APPENDUID (RFC 4315),
// APPENDLIMIT (RFC 7889), literal8 (RFC 3516 §4.4), MULTIAPPEND (RFC 3502:
// several messages, all or none) and CATENATE (RFC 4469). Each message
// streams from its literal into the folder's tmp/; nothing checks its size
// after the fact: the literal is refused before a byte of it is read.
func (s *session) cmdAppend(cmd *command) error {
	p := cmd.p
	p.sp()
	name, err := s.mailbox(p)
	if err != nil {
		return err
	}
	var mbox *store.Mailbox
	var origin any
	if sel := s.sel; sel != nil && sel.name == name {
		mbox, origin = sel.mbox, sel
	} else {
		m, err := s.openDest(name)
		if err != nil {
			return err
		}
		defer m.Close()
		mbox = m
	}
	// MULTIAPPEND is all or nothing (RFC 3502 §6.3.11): each message is
	// staged as its literal arrives, and all go in together at the end;
	// on any failure, a refused literal or a syntax error included, the
	// staged ones are thrown away and no session sees any of them.
	var staged []*store.Staged
	done := false
	defer func() {
		if !done {
			for _, st := range staged {
				st.Discard()
			}
		}
	}()
	for {
		p.sp()
		opts := store.AppendOptions{MaxSize: s.srv.appendLimit(), Origin: origin}
		if p.peek() == '(' {
			f, kws, err := storeFlags(p.flagList())
			if err != nil {
				return err
			}
			opts.Flags, opts.Keywords = f, kws
			p.sp()
		}
		if p.peek() == '"' {
			opts.Date = p.dateTime()
			p.sp()
		}
		var st *store.Staged
		if p.takeFold("CATENATE") {
			st, err = s.appendCatenate(p, mbox, opts)
		} else {
			st, err = s.appendLiteral(p, mbox, opts)
		}
		if err != nil {
			return err
		}
		staged = append(staged, st)
		if p.atEnd() {
			break
		}
	}
	p.end()
	done = true
	uids, err := mbox.AppendStaged(s.ctx, staged, origin)
	if err != nil {
		return err
	}
	v, err := s.uidValidity(mbox)
	if err != nil {
		return err
	}
	cmd.okCode = "APPENDUID " + itoa(int(v)) + " " + uidSetString(uids)
	return nil
}

var errEmptyMessage = no("", "Cannot save an empty message")

// appendLiteral stages one message sent as a literal or literal8.
func (s *session) appendLiteral(p *parser, mbox *store.Mailbox, opts store.AppendOptions) (*store.Staged, error) {
	if !p.atLiteral() {
		p.fail("expected a message literal")
	}
	if p.trail.valid && p.trail.size <= opts.MaxSize {
		if err := s.checkQuotaAdd(p.trail.size, 1); err != nil {
			return nil, err
		}
	}
	if p.trail.valid && p.trail.size > opts.MaxSize {
		panic(&literalRefused{text: "Message too big (APPENDLIMIT=" + itoa64(opts.MaxSize) + ")"})
	}
	r := p.literalStream(opts.MaxSize, true)
	if r.size == 0 {
		p.finishStream()
		return nil, errEmptyMessage
	}
	if !r.binary {
		// A literal that ends early (the client went away) must store
		// nothing, whatever the reader makes of it.
		opts.Size = r.size
	}
	st, err := s.stageMessage(mbox, r, r.binary, opts)
	if err != nil {
		return nil, err
	}
	p.finishStream()
	return st, nil
}

// stageMessage stages a message read from r; a literal8 has its binary
// parts converted (binconv.go).
func (s *session) stageMessage(mbox *store.Mailbox, r io.Reader, binary bool, opts store.AppendOptions) (*store.Staged, error) {
	if !binary {
		return mbox.Stage(r, opts)
	}
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		pw.CloseWithError(convertBinary(pw, r))
	}()
	// The converted message may grow (base64): the limit applies to what
	// the client sent, checked when the literal was announced.
	opts.MaxSize = 0
	st, err := mbox.Stage(pr, opts)
	pr.CloseWithError(errors.New("imap: append ended"))
	<-done
	return st, err
}
