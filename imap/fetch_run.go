package imap

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"time"

	"github.com/letterbox-mail/letterbox/store"
)

// cmdFetch is FETCH and UID FETCH. Bodies are streamed from the message
// file into the output buffer; a non-PEEK body fetch sets \Seen (not in a
// mailbox opened with EXAMINE), which the other sessions hear of through
// the store's feed.
func (s *session) cmdFetch(cmd *command) error {
	a := parseFetch(cmd.p, cmd.uid)
	if err := s.fetchModifiers(cmd, &a); err != nil {
		return err
	}
	if a.vanished {
		if err := s.writeFetchVanished(a.set, a.changedSince); err != nil {
			return err
		}
	}
	return s.fetchTargets(&a, s.resolve(a.set))
}

// fetchTargets writes the FETCH responses of targets: FETCH's work once
// the command is decoded, and NOTIFY's for the fetch-att of MessageNew.
func (s *session) fetchTargets(ap *fetchArgs, targets []target) error {
	if len(targets) == 0 {
		return nil
	}
	a := *ap
	sel := s.sel
	seen := make(map[uint32]bool)
	if !sel.readOnly && a.setsSeen() {
		var unseen []uint32
		err := sel.mbox.Read(s.ctx, func(v *store.View) {
			for _, t := range targets {
				if i := v.Seq(t.uid) - 1; i >= 0 && !v.At(i).Flags.Has(store.FlagSeen) {
					unseen = append(unseen, t.uid)
				}
			}
		})
		if err != nil {
			return err
		}
		if len(unseen) > 0 {
			changed, err := sel.mbox.SetFlags(s.ctx, unseen, store.FlagsAdd, store.FlagSeen, nil, sel)
			if err != nil {
				return err
			}
			for _, m := range changed {
				seen[m.UID] = true
			}
		}
	}
	msgs := make([]store.Message, len(targets))
	present := make([]bool, len(targets))
	var at uint64
	err := sel.mbox.Read(s.ctx, func(v *store.View) {
		at = sel.q.position()
		a.queuedFlags = sel.q.unshownFlags(nil)
		for i, t := range targets {
			if j := v.Seq(t.uid) - 1; j >= 0 {
				msgs[i], present[i] = v.At(j), true
			}
		}
		if a.showsModSeq() && !showFlagsRequested(&a) {
			a.unshown = sel.q.unshownFlags(sel.shownAt)
		}
	})
	if err != nil {
		return err
	}
	gone := false
	pr := new(prepared) // one for all messages: fetchOne keeps nothing of it
	for i, t := range targets {
		if !present[i] {
			continue // expunged; the client will be told
		}
		if !a.changed(msgs[i]) {
			continue // CHANGEDSINCE
		}
		ok, err := s.fetchOne(&a, pr, t, msgs[i], seen[t.uid], at)
		if err != nil {
			return err
		}
		gone = gone || !ok
		if s.c.out.err != nil {
			return errConnClosed
		}
	}
	if gone {
		// RFC 2180 §4.1.3: the others were sent.
		return no("EXPUNGEISSUED", "Some of the requested messages no longer exist")
	}
	return nil
}

// setsSeen reports whether the fetch implicitly sets \Seen.
func (a *fetchArgs) setsSeen() bool {
	for _, it := range a.items {
		if it.kind == itemSection && !it.section.Peek || it.kind == itemBinary && !it.peek {
			return true
		}
	}
	return false
}

// prepared is what fetchOne computed before writing anything.
type prepared struct {
	info     *msgInfo
	own      msgInfo // info when nothing is read from the file
	date     time.Time
	saved    time.Time // SAVEDATE
	sections []section // per item, for sections and binaries
	sizes    []int64   // per item, for BINARY.SIZE
	preview  string
}

// fetchOne writes the FETCH response of one message. It reports false,
// and writes nothing, if the message file is gone. Everything that can
// fail is done before the response starts: a literal once announced must
// get exactly its size.
func (s *session) fetchOne(a *fetchArgs, pr *prepared, t target, m store.Message, seenNow bool, at uint64) (bool, error) {
	src := s.source(s.sel, t.uid)
	if err := s.prepare(pr, a, src, m); err != nil {
		if errors.Is(err, store.ErrNoSuchMessage) || errors.Is(err, fs.ErrNotExist) {
			return false, nil
		}
		return false, err
	}
	o := &s.c.out
	addFlags := seenNow || a.unshown[t.uid]
	showFlags := addFlags
	hasUID := false
	for _, it := range a.items {
		showFlags = showFlags || it.kind == itemFlags
		hasUID = hasUID || it.kind == itemUID
	}
	if showFlags {
		s.announce(m.Keywords)
		// shownAt protects the client from a queued change older than
		// what it is shown. Only changes queued before the view was read
		// can be older, so a message without one needs no record: every
		// change that comes later has a later position anyway. (A FETCH
		// 1:* (FLAGS) of 100,000 messages made 100,000 map entries.)
		if a.queuedFlags[t.uid] {
			s.sel.shownAt[t.uid] = at
		}
	}
	// RFC 7162 §3.2.4: setting \Seen is a change the response reports
	// with UID and MODSEQ once CONDSTORE is enabled.
	implied := seenNow && s.condstore
	o.writeString("* ")
	o.num(uint64(t.seq))
	o.writeString(" FETCH (")
	first := true
	sep := func() {
		if !first {
			o.sp()
		}
		first = false
	}
	if hasUID || implied {
		sep()
		o.writeString("UID ")
		o.num(uint64(t.uid))
	}
	for i, it := range a.items {
		switch it.kind {
		case itemUID:
			continue
		case itemFlags:
			sep()
			o.writeString("FLAGS ")
			writeFlags(o, s.sel.flagsOf(s, m.Flags, m.Keywords, t.uid))
		case itemInternalDate:
			sep()
			o.writeString("INTERNALDATE ")
			o.quoted(pr.date.Format("_2-Jan-2006 15:04:05 -0700"))
		case itemSaveDate:
			sep()
			o.writeString("SAVEDATE ")
			o.quoted(pr.saved.Format("_2-Jan-2006 15:04:05 -0700"))
		case itemRFC822Size:
			sep()
			o.writeString("RFC822.SIZE ")
			o.num(uint64(max(m.Size, 0)))
		case itemEnvelope:
			sep()
			o.writeString("ENVELOPE ")
			writeEnvelope(o, pr.info.env)
		case itemBody, itemBodyStructure:
			sep()
			o.writeString(it.name + " ")
			writeBodyStructure(o, pr.info.root, it.kind == itemBodyStructure)
		case itemSection, itemBinary:
			sep()
			o.writeString(it.name)
			partial := it.partial
			if it.kind == itemSection {
				partial = it.section.Partial
			}
			if partial != nil {
				o.writeString("<" + itoa64(partial.Offset) + ">")
			}
			o.sp()
			if err := s.writeSection(src, pr.sections[i], it.kind == itemBinary); err != nil {
				return true, err
			}
		case itemBinarySize:
			sep()
			o.writeString(it.name + " " + itoa64(pr.sizes[i]))
		case itemPreview:
			sep()
			o.writeString("PREVIEW ")
			o.str(pr.preview)
		case itemModSeq:
			sep()
			s.writeModSeqItem(m.ModSeq)
		}
	}
	if addFlags && !showFlagsRequested(a) {
		sep()
		o.writeString("FLAGS ")
		writeFlags(o, s.sel.flagsOf(s, m.Flags, m.Keywords, t.uid))
	}
	if implied && !a.showsModSeq() {
		sep()
		s.writeModSeqItem(m.ModSeq)
	}
	o.writeString(")\r\n")
	return true, nil
}

func showFlagsRequested(a *fetchArgs) bool {
	for _, it := range a.items {
		if it.kind == itemFlags {
			return true
		}
	}
	return false
}

// prepare reads and parses what the items need into pr, which it resets
// first (one is used for every message of a FETCH).
func (s *session) prepare(pr *prepared, a *fetchArgs, src msgSource, m store.Message) error {
	sections, sizes := pr.sections, pr.sizes
	*pr = prepared{}
	pr.own.size = m.Size
	pr.info = &pr.own
	var err error
	if n := a.need(); n.any() {
		if pr.info, err = s.load(src, m.Size, n); err != nil {
			return err
		}
	}
	if cap(sections) < len(a.items) {
		sections, sizes = make([]section, len(a.items)), make([]int64, len(a.items))
	}
	pr.sections, pr.sizes = sections[:len(a.items)], sizes[:len(a.items)]
	clear(pr.sections)
	clear(pr.sizes)
	for i, it := range a.items {
		switch it.kind {
		case itemInternalDate:
			if pr.date, err = src.mbox.InternalDate(src.key.uid); err != nil {
				return err
			}
		case itemSaveDate:
			if pr.saved, err = saveDate(src.mbox, src.key.uid); err != nil {
				return err
			}
		case itemSection:
			if pr.sections[i], err = s.bodySection(src, pr.info, it.section); err != nil {
				return err
			}
		case itemBinary:
			if pr.sections[i], err = s.binarySection(src, pr.info, it.part, it.partial); err != nil {
				return err
			}
		case itemBinarySize:
			sec, err := s.binarySection(src, pr.info, it.part, nil)
			if err != nil {
				return err
			}
			pr.sizes[i] = sec.size()
		case itemPreview:
			if pr.preview, err = s.preview(src, pr.info); err != nil {
				return err
			}
		}
	}
	return nil
}

// writeSection writes a section as a literal (a literal8 for BINARY,
// RFC 3516 §4.2): exactly its size, even if the file misbehaves (then
// padded with spaces, and logged). An ordinary literal never carries NUL.
func (s *session) writeSection(src msgSource, sec section, binary bool) error {
	o := &s.c.out
	o.literalHeader(sec.size(), binary)
	if sec.inMem {
		data := sec.data
		if !binary && bytes.IndexByte(data, 0) >= 0 {
			data = bytes.ReplaceAll(data, []byte{0}, []byte{0x80})
		}
		o.write(data)
		return nil
	}
	if sec.n == 0 {
		return nil
	}
	body, err := src.mbox.OpenMessage(s.ctx, src.key.uid)
	var copied int64
	if err == nil {
		if _, err = io.CopyN(io.Discard, body, sec.off); err == nil {
			var r io.Reader = io.LimitReader(body, sec.n)
			if !binary {
				r = nulFilter{r}
			}
			copied, err = o.ReadFrom(r)
		}
		body.Close()
	}
	if o.err != nil {
		return errConnClosed
	}
	if copied < sec.n {
		s.log.Error("imap: message file changed while sending it", "mailbox", s.sel.name, "uid", src.key.uid, "err", err)
		pad := bytes.Repeat([]byte(" "), 4096)
		for left := sec.n - copied; left > 0; {
			n := min(left, int64(len(pad)))
			o.write(pad[:n])
			left -= n
		}
	}
	return nil
}
