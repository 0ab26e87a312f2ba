package imap

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/letterbox-mail/letterbox/store"
)

// Fetch is FETCH and UID FETCH (RFC 3501 §6.4.5, RFC 9051 §6.4.5, RFC 3516
// BINARY). Bodies are streamed from the message file; a non-PEEK body
// fetch sets \Seen (not in a mailbox opened with EXAMINE), which the other
// sessions hear of through the store's feed.
func (s *session) Fetch(w *imapserver.FetchWriter, numSet imap.NumSet, opts *imap.FetchOptions) error {
	sel, err := s.needSelected()
	if err != nil {
		return err
	}
	targets, err := s.targets(sel, numSet)
	if err != nil {
		return s.fail("fetch", err)
	}
	flagsChanged := make(map[uint32]bool)
	if !sel.readOnly && setsSeen(opts) && !(s.wc.peekRFC822() && onlyWholeMessage(opts)) {
		var unseen []uint32
		for _, t := range targets {
			if !t.msg.Flags.Has(store.FlagSeen) {
				unseen = append(unseen, t.msg.UID)
			}
		}
		if len(unseen) > 0 {
			changed, err := sel.mbox.SetFlags(s.ctx, unseen, store.FlagsAdd, store.FlagSeen, nil, sel)
			if err != nil {
				return s.fail("fetch: set \\Seen", err)
			}
			for _, m := range changed {
				flagsChanged[m.UID] = true
			}
			for i := range targets {
				if flagsChanged[targets[i].msg.UID] {
					targets[i].msg.Flags |= store.FlagSeen
				}
			}
		}
	}
	gone := false
	for _, t := range targets {
		ok, err := s.fetchOne(w, sel, t, opts, flagsChanged[t.msg.UID])
		if err != nil {
			return err
		}
		gone = gone || !ok
	}
	if gone {
		// RFC 2180 §4.1.3: the others were sent.
		return newError(imap.StatusResponseTypeNo, "EXPUNGEISSUED", "Some of the requested messages no longer exist")
	}
	return nil
}

// onlyWholeMessage reports whether the only non-PEEK items are BODY[] or
// RFC822: with RFC822.PEEK (see wireConn.rewritePeek) they are peeks.
func onlyWholeMessage(opts *imap.FetchOptions) bool {
	for _, bs := range opts.BodySection {
		if !bs.Peek && (len(bs.Part) > 0 || bs.Specifier != imap.PartSpecifierNone || bs.Partial != nil) {
			return false
		}
	}
	for _, bs := range opts.BinarySection {
		if !bs.Peek {
			return false
		}
	}
	return true
}

// setsSeen reports whether a fetch implicitly sets \Seen.
func setsSeen(opts *imap.FetchOptions) bool {
	for _, bs := range opts.BodySection {
		if !bs.Peek {
			return true
		}
	}
	for _, bs := range opts.BinarySection {
		if !bs.Peek {
			return true
		}
	}
	return false
}

// fetchOne writes the FETCH response of one message. It reports false,
// and writes nothing, if the message is gone from the disk. Everything that
// can fail is done before the response starts: a literal once announced
// must get exactly its size.
func (s *session) fetchOne(w *imapserver.FetchWriter, sel *selected, t target, opts *imap.FetchOptions, flagsChanged bool) (bool, error) {
	uid := t.msg.UID
	needHeader := opts.Envelope
	needFull := opts.BodyStructure != nil
	needRaw := false // the top header's bytes, to filter
	for _, bs := range opts.BodySection {
		switch {
		case needsStructure(bs.Part):
			needFull = true
		case filtersHeader(bs):
			needRaw = true
		case bs.Specifier != imap.PartSpecifierNone:
			needHeader = true
		}
	}
	for _, bs := range opts.BinarySection {
		needFull = needFull || needsStructure(bs.Part)
	}
	for _, bs := range opts.BinarySectionSize {
		needFull = needFull || needsStructure(bs.Part)
	}
	info := &msgInfo{size: t.msg.Size}
	var hdr []byte // the raw top header, if read along with info
	if needHeader || needFull || needRaw {
		var err error
		if needFull {
			info, err = s.info(sel, uid, true)
		} else if needRaw {
			info, hdr, err = s.header(sel, uid)
		} else {
			info, err = s.info(sel, uid, false)
		}
		if err != nil {
			return s.fetchFailed(uid, err)
		}
	}
	var date time.Time
	if opts.InternalDate {
		var err error
		if date, err = sel.mbox.InternalDate(uid); err != nil {
			return s.fetchFailed(uid, err)
		}
	}
	bodies := make([]section, len(opts.BodySection))
	for i, bs := range opts.BodySection {
		sec, err := s.bodySection(sel, uid, info, hdr, bs)
		if err != nil {
			return s.fetchFailed(uid, err)
		}
		bodies[i] = sec
	}
	binaries := make([]section, len(opts.BinarySection))
	for i, bs := range opts.BinarySection {
		sec, err := s.binarySection(sel, uid, info, bs.Part, bs.Partial)
		if errors.Is(err, errUnknownCTE) {
			return false, err
		}
		if err != nil {
			return s.fetchFailed(uid, err)
		}
		binaries[i] = sec
	}
	binSizes := make([]uint32, len(opts.BinarySectionSize))
	for i, bs := range opts.BinarySectionSize {
		sec, err := s.binarySection(sel, uid, info, bs.Part, nil)
		if errors.Is(err, errUnknownCTE) {
			return false, err
		}
		if err != nil {
			return s.fetchFailed(uid, err)
		}
		binSizes[i] = uint32(min(sec.size(), 1<<32-1))
	}

	rw := w.CreateMessage(t.seq)
	if opts.UID {
		rw.WriteUID(imap.UID(uid))
	}
	if opts.Flags || flagsChanged {
		rw.WriteFlags(sel.flagsOf(t.msg))
	}
	if opts.InternalDate {
		rw.WriteInternalDate(date)
	}
	if opts.RFC822Size {
		rw.WriteRFC822Size(t.msg.Size)
	}
	if opts.Envelope {
		rw.WriteEnvelope(envelope(info.root))
	}
	if opts.BodyStructure != nil {
		rw.WriteBodyStructure(bodyStructure(info.root))
	}
	for i, bs := range opts.BodySection {
		wc := rw.WriteBodySection(bs, bodies[i].size())
		if err := s.writeSection(wc, sel, uid, bodies[i]); err != nil {
			return true, err
		}
	}
	for i, bs := range opts.BinarySection {
		wc := rw.WriteBinarySection(bs, binaries[i].size())
		if err := s.writeSection(wc, sel, uid, binaries[i]); err != nil {
			return true, err
		}
	}
	for i, bs := range opts.BinarySectionSize {
		rw.WriteBinarySectionSize(bs, binSizes[i])
	}
	return true, rw.Close()
}

// fetchFailed decides whether a message is just gone (skipped) or there is
// a real problem.
func (s *session) fetchFailed(uid uint32, err error) (bool, error) {
	if errors.Is(err, store.ErrNoSuchMessage) || errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return false, s.fail("fetch", err)
}

// writeSection streams a section into its literal: exactly its size, even
// if the file misbehaves (then padded with spaces, and logged).
func (s *session) writeSection(wc io.WriteCloser, sel *selected, uid uint32, sec section) error {
	if sec.inMem {
		if _, err := wc.Write(sec.data); err != nil {
			return err
		}
		return wc.Close()
	}
	if sec.n > 0 {
		body, err := sel.mbox.OpenMessage(s.ctx, uid)
		var copied int64
		if err == nil {
			if _, err = io.CopyN(io.Discard, body, sec.off); err == nil {
				copied, err = io.CopyN(markWrites{wc}, body, sec.n)
			}
			body.Close()
		}
		if copied < sec.n {
			var we *writeError
			if errors.As(err, &we) {
				return err
			}
			s.log.Error("imap: message file changed while sending it", "mailbox", sel.name, "uid", uid, "err", err)
			pad := bytes.Repeat([]byte(" "), 4096)
			for left := sec.n - copied; left > 0; {
				n, werr := wc.Write(pad[:min(left, int64(len(pad)))])
				if werr != nil {
					return werr
				}
				left -= int64(n)
			}
		}
	}
	return wc.Close()
}

// writeError marks errors of the connection, as opposed to the file.
type writeError struct{ error }

func (e *writeError) Unwrap() error { return e.error }

type markWrites struct{ w io.Writer }

func (m markWrites) Write(p []byte) (int, error) {
	n, err := m.w.Write(p)
	if err != nil {
		err = &writeError{err}
	}
	return n, err
}
