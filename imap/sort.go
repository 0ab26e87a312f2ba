package imap

import (
	"errors"
	"io/fs"
	"strings"

	"github.com/letterbox-mail/letterbox/imap/internal/mailsort"
	"github.com/letterbox-mail/letterbox/store"
)

// SORT and UID SORT (RFC 5256), with SORT=DISPLAY (RFC 5957), ESORT and
// CONTEXT=SORT (RFC 5267: RETURN options, PARTIAL, UPDATE), and THREAD
// and UID THREAD (RFC 5256 REFERENCES and ORDEREDSUBJECT). The messages
// are those SEARCH finds with the same program; their keys come from the
// cache (keySortKeys), filled from the message's header the first time.
// Strings compare with i;ascii-casemap (package mailsort).

// sortArgs is a decoded SORT.
type sortArgs struct {
	searchArgs // RETURN options, charset, search program
	criteria   []mailsort.Criterion
}

func parseSort(p *parser, uid bool) sortArgs {
	var a sortArgs
	p.sp()
	if p.takeFold("RETURN ") {
		parseReturnOpts(p, &a.searchArgs)
		p.sp()
	}
	a.criteria = parseSortCriteria(p)
	p.sp()
	a.charset = p.astring() // mandatory in SORT and THREAD
	p.sp()
	a.searchArgs.criteria = parseKeys(p, uid, 0)
	p.end()
	return a
}

// parseSortCriteria reads "(" ["REVERSE" SP] key *(SP ["REVERSE" SP] key) ")".
func parseSortCriteria(p *parser) []mailsort.Criterion {
	var out []mailsort.Criterion
	p.list(false, func() {
		var c mailsort.Criterion
		w := p.word()
		if w == "REVERSE" {
			c.Reverse = true
			if p.peek() != ' ' {
				p.fail("REVERSE needs a sort key after it")
			}
			p.sp()
			w = p.word()
		}
		k, ok := mailsort.ParseSortKey(w)
		if !ok {
			p.fail("unknown sort key %s", w)
		}
		c.Key = k
		out = append(out, c)
	})
	return out
}

// checkCharset accepts the charsets SEARCH takes: its strings are
// compared as UTF-8, which US-ASCII is part of.
func checkCharset(cs string) error {
	switch strings.ToUpper(cs) {
	case "UTF-8", "US-ASCII":
		return nil
	}
	return no("BADCHARSET (US-ASCII UTF-8)", "Only UTF-8 and US-ASCII are supported")
}

// cmdSort is SORT and UID SORT.
func (s *session) cmdSort(cmd *command) error {
	a := parseSort(cmd.p, cmd.uid)
	if err := checkCharset(a.charset); err != nil {
		return err
	}
	if a.searchArgs.criteria.usesModSeq() {
		s.enableCondstore()
	}
	if a.ret.ReturnSave {
		s.searchRes = nil // RFC 5182 §2.1: a failed command leaves "$" empty
	}
	found, modSeqs, err := s.searchModSeq(&a.searchArgs.criteria)
	if err != nil {
		return err
	}
	keys, err := s.sortKeys(found, needsOf(a.criteria))
	if err != nil {
		return err
	}
	sorted := make([]target, len(found))
	sortedModSeqs := make([]uint64, len(found))
	for i, j := range mailsort.Sort(keys, a.criteria) {
		sorted[i], sortedModSeqs[i] = found[j], modSeqs[j]
	}
	// RFC 7162 §3.1.5: with a MODSEQ search key, the highest MODSEQ of
	// what is returned (MIN and MAX in sort order).
	a.modSeq = a.resultModSeq(sorted, sortedModSeqs)
	if a.update {
		if err := s.startSortUpdate(cmd, &a, sorted); err != nil {
			return err
		}
	}
	if a.ret.ReturnSave {
		s.searchRes = savedResult(&a.searchArgs, sorted)
	}
	if a.esearch {
		// ESORT: ESEARCH with MIN, MAX, ALL and PARTIAL taken in sort
		// order (RFC 5267 §3.1); ranges only where it ascends (§3.2).
		s.writeSearch(cmd, &a.searchArgs, sorted)
		return nil
	}
	o := &s.c.out
	o.writeString("* SORT")
	for _, t := range sorted {
		o.sp()
		if cmd.uid {
			o.num(uint64(t.uid))
		} else {
			o.num(uint64(t.seq))
		}
	}
	if a.modSeq > 0 {
		o.writeString(" (MODSEQ " + utoa(a.modSeq) + ")")
	}
	o.crlf()
	return nil
}

// cmdThread is THREAD and UID THREAD.
func (s *session) cmdThread(cmd *command) error {
	p := cmd.p
	p.sp()
	alg := p.word()
	if alg != "REFERENCES" && alg != "ORDEREDSUBJECT" {
		p.fail("unknown thread algorithm %s", alg)
	}
	p.sp()
	charset := p.astring()
	p.sp()
	crit := parseKeys(p, cmd.uid, 0)
	p.end()
	if err := checkCharset(charset); err != nil {
		return err
	}
	if crit.usesModSeq() {
		s.enableCondstore() // RFC 7162 §3.1: a CONDSTORE-enabling command
	}
	found, err := s.search(&crit)
	if err != nil {
		return err
	}
	// Both algorithms use the sent date, which falls back on the
	// arrival date (RFC 5256 §2.2).
	keys, err := s.sortKeys(found, keyNeeds{header: true, fallback: true})
	if err != nil {
		return err
	}
	var threads []*mailsort.Thread
	if alg == "REFERENCES" {
		threads = mailsort.ThreadReferences(keys)
	} else {
		threads = mailsort.ThreadOrderedSubject(keys)
	}
	o := &s.c.out
	o.writeString("* THREAD")
	if len(threads) > 0 {
		o.sp()
		o.write(mailsort.AppendThreads(nil, threads, func(i int) uint32 {
			if cmd.uid {
				return found[i].uid
			}
			return uint32(found[i].seq)
		}))
	}
	o.crlf()
	return nil
}

// keyNeeds says which keys an ordering compares (the size is always
// there).
type keyNeeds struct {
	header   bool // anything from the header (the cache's keySortKeys)
	arrival  bool // every message's INTERNALDATE (ARRIVAL)
	fallback bool // the INTERNALDATE of messages without a sent date (DATE, THREAD)
}

func needsOf(criteria []mailsort.Criterion) keyNeeds {
	var n keyNeeds
	for _, c := range criteria {
		switch c.Key {
		case mailsort.SortArrival:
			n.arrival = true
		case mailsort.SortSize:
		case mailsort.SortDate:
			n.header, n.fallback = true, true
		default:
			n.header = true
		}
	}
	return n
}

// sortKeys returns the keys of messages of the selected mailbox, in the
// order given. A message that is gone (expunged by another session, not
// yet reported) gets empty keys: it still has its place.
func (s *session) sortKeys(ts []target, n keyNeeds) ([]mailsort.Keys, error) {
	sel := s.sel
	keys := make([]mailsort.Keys, len(ts))
	sizes := make([]int64, len(ts))
	present := make([]bool, len(ts))
	err := sel.mbox.Read(s.ctx, func(v *store.View) {
		for i, t := range ts {
			if j := v.Seq(t.uid) - 1; j >= 0 {
				sizes[i], present[i] = v.At(j).Size, true
			}
		}
	})
	if err != nil {
		return nil, err
	}
	if n.header {
		// From memory (keyCache), else from the store's cache, else
		// from the message file.
		id := boxID{folder: s.user.Root() + "\x00" + sel.name, uidValidity: sel.uidValidity}
		var fillUIDs []uint32
		var fillKeys []*mailsort.Keys
		for _, i := range s.srv.keys.lookup(id, uidsOf(ts), keys) {
			if !present[i] {
				continue
			}
			info, err := s.load(s.source(sel, ts[i].uid), sizes[i], need{keys: true})
			switch {
			case err == nil:
				keys[i] = info.keys
				k := info.keys
				fillUIDs, fillKeys = append(fillUIDs, ts[i].uid), append(fillKeys, &k)
			case errors.Is(err, store.ErrNoSuchMessage), errors.Is(err, fs.ErrNotExist):
			default:
				return nil, err
			}
		}
		s.srv.keys.add(id, fillUIDs, fillKeys)
	}
	for i, t := range ts {
		if !present[i] {
			keys[i] = mailsort.Keys{}
			continue
		}
		k := &keys[i]
		k.Size = sizes[i]
		// The arrival date is read only where it is compared: DATE
		// needs it for messages without a sent date alone.
		if n.arrival || n.fallback && !k.HasSent {
			d, err := sel.mbox.InternalDate(t.uid)
			if err == nil {
				k.Arrival = d.Unix()
			}
		}
	}
	return keys, nil
}
