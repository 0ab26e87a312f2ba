package imap

import (
	"strings"

	"github.com/emersion/go-imap/v2"
)

// FETCH items (RFC 3501 §6.4.5, RFC 9051 §6.4.5, RFC 3516 BINARY, RFC 8970
// PREVIEW) as decoded: in the order sent, each with the name its response
// item gets. Items are echoed the way the client wrote them (header field
// names as atoms, the case kept), because clients look up what they asked
// for.

type itemKind uint8

const (
	itemUID itemKind = iota + 1
	itemFlags
	itemInternalDate
	itemRFC822Size
	itemEnvelope
	itemBody          // BODY: BODYSTRUCTURE without extension data
	itemBodyStructure // BODYSTRUCTURE
	itemSection       // BODY[...], BODY.PEEK[...], RFC822, RFC822.HEADER, RFC822.TEXT
	itemBinary        // BINARY[...], BINARY.PEEK[...]
	itemBinarySize    // BINARY.SIZE[...]
	itemPreview       // PREVIEW
	itemModSeq        // MODSEQ (RFC 7162 §3.1.4.2)
	itemSaveDate      // SAVEDATE (RFC 8514)
)

type fetchItem struct {
	kind    itemKind
	name    string                     // response item name, without <origin>
	section *imap.FetchItemBodySection // itemSection; Peek, Partial set
	part    []int                      // itemBinary, itemBinarySize
	partial *imap.SectionPartial       // itemBinary
	peek    bool                       // itemBinary
}

// fetchArgs is a decoded FETCH. opts holds the same request in go-imap's
// terms (for the differential test against imapclient's encoder).
type fetchArgs struct {
	set   imap.NumSet
	items []fetchItem
	opts  imap.FetchOptions
	needs *need // what the items need of a message (need())

	// RFC 7162 modifiers: CHANGEDSINCE (§3.1.4.1), VANISHED (§3.2.6).
	changedSince    uint64
	hasChangedSince bool
	vanished        bool
	// unshown: messages whose FLAGS go with their MODSEQ (condstore.go).
	unshown map[uint32]bool
	// queuedFlags: messages with a flag change queued when the view was
	// read; only theirs need recording in shownAt (fetchOne).
	queuedFlags map[uint32]bool
}

func parseFetch(p *parser, uid bool) fetchArgs {
	var a fetchArgs
	p.sp()
	a.set = p.numSet(uid)
	p.sp()
	if p.peek() == '(' {
		p.list(false, func() { a.addItem(p, p.word()) })
	} else {
		switch w := p.word(); w {
		case "ALL":
			for _, n := range []string{"FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE"} {
				a.addItem(p, n)
			}
		case "FAST":
			for _, n := range []string{"FLAGS", "INTERNALDATE", "RFC822.SIZE"} {
				a.addItem(p, n)
			}
		case "FULL":
			for _, n := range []string{"FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY"} {
				a.addItem(p, n)
			}
		default:
			a.addItem(p, w)
		}
	}
	if p.maybeSP() {
		// RFC 4466 fetch-modifiers: CHANGEDSINCE and VANISHED (RFC 7162).
		p.list(false, func() {
			switch w := p.word(); {
			case w == "CHANGEDSINCE" && !a.hasChangedSince:
				p.sp()
				a.changedSince, a.hasChangedSince = p.number64(maxModSeq), true
				a.opts.ChangedSince = a.changedSince
			case w == "VANISHED" && !a.vanished:
				a.vanished = true
			default:
				p.fail("unknown or repeated FETCH modifier %s", w)
			}
		})
	}
	p.end()
	if a.hasChangedSince {
		a.add(fetchItem{kind: itemModSeq, name: "MODSEQ"}) // §3.1.4.1: implied
	}
	if uid {
		a.add(fetchItem{kind: itemUID, name: "UID"})
		a.opts.UID = true
	}
	return a
}

// add appends an item; simple items only once.
func (a *fetchArgs) add(it fetchItem) {
	if it.kind != itemSection && it.kind != itemBinary && it.kind != itemBinarySize {
		for _, x := range a.items {
			if x.kind == it.kind {
				return
			}
		}
	}
	a.items = append(a.items, it)
}

func (a *fetchArgs) addItem(p *parser, w string) {
	switch w {
	case "UID":
		a.add(fetchItem{kind: itemUID, name: w})
		a.opts.UID = true
	case "FLAGS":
		a.add(fetchItem{kind: itemFlags, name: w})
		a.opts.Flags = true
	case "INTERNALDATE":
		a.add(fetchItem{kind: itemInternalDate, name: w})
		a.opts.InternalDate = true
	case "SAVEDATE":
		a.add(fetchItem{kind: itemSaveDate, name: w})
	case "RFC822.SIZE":
		a.add(fetchItem{kind: itemRFC822Size, name: w})
		a.opts.RFC822Size = true
	case "ENVELOPE":
		a.add(fetchItem{kind: itemEnvelope, name: w})
		a.opts.Envelope = true
	case "BODYSTRUCTURE":
		a.add(fetchItem{kind: itemBodyStructure, name: w})
		a.opts.BodyStructure = &imap.FetchItemBodyStructure{Extended: true}
	case "RFC822", "RFC822.PEEK":
		// RFC822.PEEK is not in any RFC, but Outlook sends it; the
		// answer is named RFC822, the only name it parses.
		a.section(&imap.FetchItemBodySection{Peek: w == "RFC822.PEEK"}, "RFC822")
	case "RFC822.HEADER":
		a.section(&imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader, Peek: true}, w)
	case "RFC822.TEXT":
		a.section(&imap.FetchItemBodySection{Specifier: imap.PartSpecifierText}, w)
	case "BODY", "BODY.PEEK":
		if p.peek() != '[' {
			if w == "BODY.PEEK" {
				p.fail("BODY.PEEK needs a section")
			}
			a.add(fetchItem{kind: itemBody, name: w})
			if a.opts.BodyStructure == nil {
				a.opts.BodyStructure = &imap.FetchItemBodyStructure{}
			}
			return
		}
		bs, name := parseSection(p)
		bs.Peek = w == "BODY.PEEK"
		bs.Partial = parsePartial(p)
		a.section(bs, "BODY"+name)
	case "BINARY", "BINARY.PEEK", "BINARY.SIZE":
		part, name := parseBinarySection(p)
		if w == "BINARY.SIZE" {
			a.add(fetchItem{kind: itemBinarySize, name: "BINARY.SIZE" + name, part: part})
			a.opts.BinarySectionSize = append(a.opts.BinarySectionSize, &imap.FetchItemBinarySectionSize{Part: part})
			return
		}
		it := fetchItem{kind: itemBinary, name: "BINARY" + name, part: part, peek: w == "BINARY.PEEK", partial: parsePartial(p)}
		a.add(it)
		a.opts.BinarySection = append(a.opts.BinarySection, &imap.FetchItemBinarySection{Part: part, Partial: it.partial, Peek: it.peek})
	case "MODSEQ":
		a.add(fetchItem{kind: itemModSeq, name: w})
		a.opts.ModSeq = true
	case "PREVIEW":
		if p.maybeSP() {
			// RFC 8970 §3: PREVIEW (LAZY); we always have it.
			p.list(true, func() {
				if m := p.word(); m != "LAZY" {
					p.fail("unknown PREVIEW modifier %s", m)
				}
			})
		}
		a.add(fetchItem{kind: itemPreview, name: w})
	default:
		p.fail("unknown FETCH item %s", w)
	}
}

func (a *fetchArgs) section(bs *imap.FetchItemBodySection, name string) {
	a.add(fetchItem{kind: itemSection, name: name, section: bs})
	a.opts.BodySection = append(a.opts.BodySection, bs)
}

// maxPartDepth bounds section part numbers ("1.2.3...").
const maxPartDepth = 32

// parseSection reads "[" section-spec "]" and returns it with its name as
// it goes into the response ("[1.HEADER.FIELDS (From To)]").
func parseSection(p *parser) (*imap.FetchItemBodySection, string) {
	bs := &imap.FetchItemBodySection{}
	var b strings.Builder
	p.expect('[')
	b.WriteByte('[')
	for p.peek() >= '1' && p.peek() <= '9' {
		if len(bs.Part) >= maxPartDepth {
			p.fail("section part too deep")
		}
		n := p.nzNumber()
		if len(bs.Part) > 0 {
			b.WriteByte('.')
		}
		b.WriteString(itoa(int(n)))
		bs.Part = append(bs.Part, int(n))
		if !p.maybe('.') {
			break
		}
		if p.peek() < '1' || p.peek() > '9' {
			b.WriteByte('.')
			break
		}
	}
	if p.peek() != ']' {
		w := p.word()
		switch {
		case w == "HEADER":
			bs.Specifier = imap.PartSpecifierHeader
		case w == "TEXT":
			bs.Specifier = imap.PartSpecifierText
		case w == "MIME" && len(bs.Part) > 0:
			bs.Specifier = imap.PartSpecifierMIME
		case w == "HEADER.FIELDS" || w == "HEADER.FIELDS.NOT":
			bs.Specifier = imap.PartSpecifierHeader
			p.sp()
			var names []string
			p.list(false, func() { names = append(names, p.astring()) })
			if w == "HEADER.FIELDS" {
				bs.HeaderFields = names
			} else {
				bs.HeaderFieldsNot = names
			}
			b.WriteString(w + " (")
			for i, n := range names {
				if i > 0 {
					b.WriteByte(' ')
				}
				b.WriteString(echoName(n))
			}
			b.WriteString(")]")
			p.expect(']')
			return bs, b.String()
		default:
			p.fail("unknown section %s", w)
		}
		b.WriteString(w)
	} else if len(bs.Part) > 0 && b.String()[b.Len()-1] == '.' {
		p.fail("section part ends with a dot")
	}
	p.expect(']')
	b.WriteByte(']')
	return bs, b.String()
}

// echoName is a header field name as it goes back: an atom if it is one,
// a quoted string otherwise.
func echoName(n string) string {
	if isAtom(n, false) {
		return n
	}
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(n); i++ {
		if n[i] == '"' || n[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(n[i])
	}
	b.WriteByte('"')
	return b.String()
}

// parseBinarySection reads "[" [section-part] "]" (RFC 3516).
func parseBinarySection(p *parser) ([]int, string) {
	var part []int
	var b strings.Builder
	p.expect('[')
	b.WriteByte('[')
	for p.peek() != ']' {
		if len(part) >= maxPartDepth {
			p.fail("section part too deep")
		}
		if len(part) > 0 {
			p.expect('.')
			b.WriteByte('.')
		}
		n := p.nzNumber()
		b.WriteString(itoa(int(n)))
		part = append(part, int(n))
	}
	p.expect(']')
	b.WriteByte(']')
	return part, b.String()
}

// parsePartial reads an optional "<offset.size>".
func parsePartial(p *parser) *imap.SectionPartial {
	if !p.maybe('<') {
		return nil
	}
	off := p.number()
	p.expect('.')
	n := p.nzNumber()
	p.expect('>')
	return &imap.SectionPartial{Offset: int64(off), Size: int64(n)}
}
