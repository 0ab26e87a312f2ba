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
	var uids []uint32
	done := false
	defer func() {
		// MULTIAPPEND is all or nothing (RFC 3502 §6.3.11): on any
		// failure, a refused literal or a syntax error included, the
		// messages stored already go again.
		if !done && len(uids) > 0 {
			if _, err := mbox.Expunge(s.ctx, store.ExpungeOptions{UIDs: uids, Origin: origin}); err != nil {
				s.log.Error("imap: undo MULTIAPPEND", "err", err)
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
		var uid uint32
		if p.takeFold("CATENATE") {
			uid, err = s.appendCatenate(p, mbox, opts)
		} else {
			uid, err = s.appendLiteral(p, mbox, opts)
		}
		if err != nil {
			return err
		}
		uids = append(uids, uid)
		if p.atEnd() {
			break
		}
	}
	p.end()
	done = true
	v, err := s.uidValidity(mbox)
	if err != nil {
		return err
	}
	cmd.okCode = "APPENDUID " + itoa(int(v)) + " " + uidSetString(uids)
	return nil
}

var errEmptyMessage = no("", "Cannot save an empty message")

// appendLiteral stores one message sent as a literal or literal8.
func (s *session) appendLiteral(p *parser, mbox *store.Mailbox, opts store.AppendOptions) (uint32, error) {
	if !p.atLiteral() {
		p.fail("expected a message literal")
	}
	if p.trail.valid && p.trail.size <= opts.MaxSize {
		if err := s.checkQuotaAdd(p.trail.size, 1); err != nil {
			return 0, err
		}
	}
	if p.trail.valid && p.trail.size > opts.MaxSize {
		panic(&literalRefused{text: "Message too big (APPENDLIMIT=" + itoa64(opts.MaxSize) + ")"})
	}
	r := p.literalStream(opts.MaxSize, true)
	if r.size == 0 {
		p.finishStream()
		return 0, errEmptyMessage
	}
	if !r.binary {
		// A literal that ends early (the client went away) must store
		// nothing, whatever the reader makes of it.
		opts.Size = r.size
	}
	uid, err := s.storeMessage(mbox, r, r.binary, opts)
	if err != nil {
		return 0, err
	}
	p.finishStream()
	return uid, nil
}

// storeMessage appends a message read from r; a literal8 has its binary
// parts converted (binconv.go).
func (s *session) storeMessage(mbox *store.Mailbox, r io.Reader, binary bool, opts store.AppendOptions) (uint32, error) {
	if !binary {
		return mbox.Append(s.ctx, r, opts)
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
	uid, err := mbox.Append(s.ctx, pr, opts)
	pr.CloseWithError(errors.New("imap: append ended"))
	<-done
	return uid, err
}
