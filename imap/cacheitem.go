package imap

import (
	"encoding/binary"
	"errors"
	"slices"
	"strings"

	"github.com/letterbox-mail/letterbox/imap/internal/mailsort"
	"github.com/letterbox-mail/letterbox/store"
)

// What IMAP keeps of a message in the store's per-folder cache
// (store.Mailbox.Cache, letterbox-cache): filled the first time a message
// is read, shared by every process, kept across restarts, so that what
// clients fetch in bulk (header fields, ENVELOPE, BODYSTRUCTURE), SORT and
// THREAD, and SEARCH of those header fields need no message file. Message
// files never change and the cache is bound to UIDVALIDITY, so an item
// never goes stale.
//
// Four items, each a version byte (cacheVersion) and then its fields;
// integers are uvarints (varints where signed), strings a uvarint length
// and the bytes. An item of another version, or one that does not decode,
// counts as missing and is made again from the file: a format change
// just refills the cache.
//
//	keyHeader     bodyOff | flags (1: fields kept) | n | n extra names |
//	              (name, field)...: the top header's size, and its fields
//	              whose names are in headerFields or among the extra names
//	              (asked for by a client before), in their order, each as
//	              its lower-case name and its bytes exactly as written
//	keyEnvelope   date subject | from sender reply-to to cc bcc (address
//	              lists) | in-reply-to ids | message-id
//	keySortKeys   flags (1 HasSent, 2 ReplyOrFwd) | sent | subject from to
//	              cc display-from display-to message-id | references
//	keyStructure  the MIME tree: per part hdrOff, header length, body
//	              length, lines, type, subtype, parameters, header fields
//	              (a byte from fieldTable and the value; the top part
//	              without the envelope's fields, which keyEnvelope has),
//	              then 0 (leaf), 1 and its children (multipart) or 2 and
//	              the message inside (message/rfc822)
const (
	keyHeader    store.CacheKey = 16
	keyEnvelope  store.CacheKey = 17
	keySortKeys  store.CacheKey = 18
	keyStructure store.CacheKey = 19

	cacheVersion = 1
)

// headerFields are the header fields kept raw for every message: those
// Thunderbird (its default list), Outlook, Apple Mail, Evolution, K-9 and
// mbsync ask for with BODY.PEEK[HEADER.FIELDS (...)] when they list a
// folder, and those ENVELOPE and SORT are made of. A field a message does
// not have costs nothing. Other names a client asks for are added to a
// message's item when it is read for them (at most maxExtraFields).
var headerFields = []string{
	"from", "to", "cc", "bcc", "subject", "date", "message-id", "references", "in-reply-to",
	"reply-to", "sender", "content-type", "content-transfer-encoding", "mime-version",
	"priority", "x-priority", "importance", "x-msmail-priority", "newsgroups",
	"list-id", "list-post", "list-unsubscribe", "mailing-list", "x-beenthere",
	"content-class", "x-calendar-attachment", "x-tuid", "disposition-notification-to",
	"return-receipt-to", "x-spam-flag", "auto-submitted",
}

var headerFieldSet = func() map[string]bool {
	m := make(map[string]bool, len(headerFields))
	for _, n := range headerFields {
		m[n] = true
	}
	return m
}()

// Bounds of the header item.
const (
	maxExtraFields  = 16       // extra names kept per message
	maxExtraName    = 64       // longer names are never cached
	maxCachedFields = 64 << 10 // raw fields kept; beyond, none are
)

// fieldTable numbers the header fields the MIME parser keeps, for the
// structure item. The order is part of the format: append only.
var fieldTable = []string{
	"content-type", "content-transfer-encoding", "content-id", "content-description",
	"content-disposition", "content-language", "content-location", "content-md5",
	"date", "subject", "from", "sender", "reply-to", "to", "cc", "bcc",
	"in-reply-to", "message-id", "references",
}

// envelopeOnly are the fields of fieldTable the top part's structure item
// leaves out: ENVELOPE and the SORT keys have their own items.
func envelopeOnly(name string) bool {
	return name != "" && !slices.Contains(fieldTable[:8], name)
}

var errBadItem = errors.New("imap: bad cache item")

// headItem is the decoded header item.
type headItem struct {
	bodyOff int64
	kept    bool     // fields holds the fields (the header was not too big)
	extra   []string // names kept besides headerFields, lower case
	fields  []byte   // (name, field) pairs (encodeFields)
}

// encodeField appends one kept field: its lower-case name and its bytes.
func encodeField(b []byte, lower string, field []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(lower)))
	b = append(b, lower...)
	b = binary.AppendUvarint(b, uint64(len(field)))
	return append(b, field...)
}

// eachField calls fn with the kept fields in order; it stops at the
// first that does not decode.
func (h *headItem) eachField(fn func(lower, field []byte)) {
	p := h.fields
	for len(p) > 0 {
		n, k := binary.Uvarint(p)
		if k <= 0 || n > uint64(len(p)-k) {
			return
		}
		name := p[k : k+int(n)]
		p = p[k+int(n):]
		n, k = binary.Uvarint(p)
		if k <= 0 || n > uint64(len(p)-k) {
			return
		}
		fn(name, p[k:k+int(n)])
		p = p[k+int(n):]
	}
}

// filter is HEADER.FIELDS of the kept fields: filterHeader of the whole
// header gives the same for names the item covers.
func (h *headItem) filter(names []string) []byte {
	var out []byte
	h.eachField(func(lower, field []byte) {
		for _, n := range names {
			if isLowerOf(lower, n) {
				out = append(out, field...)
				return
			}
		}
	})
	return append(out, "\r\n"...)
}

// allFields are the kept fields as SEARCH reads them.
func (h *headItem) allFields() []headerField {
	var out []headerField
	h.eachField(func(lower, field []byte) {
		out = append(out, headerField{name: string(lower), value: fieldValue(field)})
	})
	return out
}

// isLowerOf reports whether lower is strings.ToLower(name), without
// allocating for ASCII names.
func isLowerOf(lower []byte, name string) bool {
	if len(lower) == len(name) {
		for i := 0; i < len(name); i++ {
			c := name[i]
			if c >= 0x80 {
				return string(lower) == strings.ToLower(name)
			}
			if lowerASCII(c) != lower[i] {
				return false
			}
		}
		return true
	}
	return !asciiOnlyString(name) && string(lower) == strings.ToLower(name)
}

// covers reports whether the item holds every field of names (lower
// case: need.lower).
func (h *headItem) covers(lower []string) bool {
	if !h.kept {
		return false
	}
	for _, l := range lower {
		if !headerFieldSet[l] && !slices.Contains(h.extra, l) {
			return false
		}
	}
	return true
}

// encoder appends item fields.
type encoder []byte

func (e *encoder) uint(v uint64) { *e = binary.AppendUvarint(*e, v) }
func (e *encoder) int(v int64)   { *e = binary.AppendVarint(*e, v) }
func (e *encoder) byte1(c byte)  { *e = append(*e, c) }
func (e *encoder) str(s string)  { e.uint(uint64(len(s))); *e = append(*e, s...) }
func (e *encoder) strs(l []string) {
	e.uint(uint64(len(l)))
	for _, s := range l {
		e.str(s)
	}
}

// decoder reads item fields from a string (the item converted once, so
// that the strings it gives share its memory). A read past the end or a
// length that does not fit sets bad and gives zero values.
type decoder struct {
	s   string
	bad bool
}

func newDecoder(v []byte) *decoder {
	if len(v) == 0 || v[0] != cacheVersion {
		return &decoder{bad: true}
	}
	return &decoder{s: string(v[1:])}
}

func (d *decoder) uint() uint64 {
	if d.bad {
		return 0
	}
	var v uint64
	for i := 0; i < len(d.s) && i < binary.MaxVarintLen64; i++ {
		c := d.s[i]
		if c < 0x80 {
			if i == binary.MaxVarintLen64-1 && c > 1 {
				break
			}
			d.s = d.s[i+1:]
			return v | uint64(c)<<(7*i)
		}
		v |= uint64(c&0x7f) << (7 * i)
	}
	d.bad = true
	return 0
}

func (d *decoder) int() int64 {
	u := d.uint()
	v := int64(u >> 1)
	if u&1 != 0 {
		v = ^v
	}
	return v
}

// count reads a number of things that each take at least one byte.
func (d *decoder) count() int {
	n := d.uint()
	if n > uint64(len(d.s)) {
		d.bad = true
		return 0
	}
	return int(n)
}

// off reads a byte offset or length.
func (d *decoder) off() int64 {
	n := d.uint()
	if n > 1<<48 {
		d.bad = true
		return 0
	}
	return int64(n)
}

func (d *decoder) byte1() byte {
	if d.bad || len(d.s) == 0 {
		d.bad = true
		return 0
	}
	c := d.s[0]
	d.s = d.s[1:]
	return c
}

func (d *decoder) str() string {
	n := d.count()
	if d.bad {
		return ""
	}
	s := d.s[:n]
	d.s = d.s[n:]
	return s
}

func (d *decoder) strs() []string {
	n := d.count()
	if d.bad || n == 0 {
		return nil
	}
	out := make([]string, 0, n)
	for i := 0; i < n && !d.bad; i++ {
		out = append(out, d.str())
	}
	return out
}

// done reports whether everything decoded and nothing is left over.
func (d *decoder) done() bool { return !d.bad && d.s == "" }

func encodeHeaderItem(h *headItem) []byte {
	e := encoder{cacheVersion}
	e.uint(uint64(h.bodyOff))
	var flags byte
	if h.kept {
		flags |= 1
	}
	e.byte1(flags)
	e.strs(h.extra)
	return append(e, h.fields...)
}

func decodeHeaderItem(v []byte) (*headItem, error) {
	if len(v) == 0 || v[0] != cacheVersion {
		return nil, errBadItem
	}
	p := v[1:]
	num := func() uint64 {
		n, k := binary.Uvarint(p)
		if k <= 0 {
			p = nil
			return 1 << 62
		}
		p = p[k:]
		return n
	}
	h := &headItem{bodyOff: int64(num())}
	if len(p) == 0 || h.bodyOff > 1<<48 {
		return nil, errBadItem
	}
	flags := p[0]
	p = p[1:]
	h.kept = flags&1 != 0
	n := num()
	if flags&^1 != 0 || n > maxExtraFields {
		return nil, errBadItem
	}
	for range n {
		l := num()
		if l > uint64(len(p)) {
			return nil, errBadItem
		}
		h.extra = append(h.extra, string(p[:l]))
		p = p[l:]
	}
	if h.kept {
		h.fields = p // shares v, which nobody changes
	} else if len(p) != 0 {
		return nil, errBadItem
	}
	return h, nil
}

func encodeEnvelope(env *envelopeData) []byte {
	e := encoder{cacheVersion}
	e.str(env.date)
	e.str(env.subject)
	for _, l := range [][]address{env.from, env.sender, env.replyTo, env.to, env.cc, env.bcc} {
		e.uint(uint64(len(l)))
		for _, a := range l {
			switch {
			case a.groupStart:
				e.byte1(1)
				e.str(a.mailbox)
			case a.groupEnd:
				e.byte1(2)
			default:
				e.byte1(0)
				e.str(a.name)
				e.str(a.route)
				e.str(a.mailbox)
				e.str(a.host)
			}
		}
	}
	e.strs(env.inReplyTo)
	e.str(env.messageID)
	return e
}

func decodeEnvelope(v []byte) (*envelopeData, error) {
	d := newDecoder(v)
	env := &envelopeData{date: d.str(), subject: d.str()}
	for _, l := range []*[]address{&env.from, &env.sender, &env.replyTo, &env.to, &env.cc, &env.bcc} {
		n := d.count()
		if n == 0 {
			continue
		}
		list := make([]address, 0, n)
		for i := 0; i < n && !d.bad; i++ {
			switch d.byte1() {
			case 0:
				list = append(list, address{name: d.str(), route: d.str(), mailbox: d.str(), host: d.str()})
			case 1:
				list = append(list, address{groupStart: true, mailbox: d.str()})
			case 2:
				list = append(list, address{groupEnd: true})
			default:
				d.bad = true
			}
		}
		*l = list
	}
	env.inReplyTo = d.strs()
	env.messageID = d.str()
	if !d.done() {
		return nil, errBadItem
	}
	return env, nil
}

func encodeSortKeys(k *mailsort.Keys) []byte {
	e := encoder{cacheVersion}
	var flags byte
	if k.HasSent {
		flags |= 1
	}
	if k.ReplyOrFwd {
		flags |= 2
	}
	e.byte1(flags)
	e.int(k.Sent)
	for _, s := range []string{k.Subject, k.From, k.To, k.Cc, k.DisplayFrom, k.DisplayTo, k.MessageID} {
		e.str(s)
	}
	e.strs(k.References)
	return e
}

// decodeSortKeys fills the header-derived fields of k.
func decodeSortKeys(v []byte, k *mailsort.Keys) error {
	d := newDecoder(v)
	flags := d.byte1()
	k.HasSent, k.ReplyOrFwd = flags&1 != 0, flags&2 != 0
	k.Sent = d.int()
	for _, s := range []*string{&k.Subject, &k.From, &k.To, &k.Cc, &k.DisplayFrom, &k.DisplayTo, &k.MessageID} {
		*s = d.str()
	}
	k.References = d.strs()
	if flags&^3 != 0 || !d.done() {
		return errBadItem
	}
	return nil
}

func encodeStructure(root *mimePart) []byte {
	e := encoder{cacheVersion}
	encodePart(&e, root, true)
	return e
}

func encodePart(e *encoder, p *mimePart, top bool) {
	e.uint(uint64(p.hdrOff))
	e.uint(uint64(p.bodyOff - p.hdrOff))
	e.uint(uint64(p.end - p.bodyOff))
	e.uint(uint64(p.lines))
	e.str(p.typ)
	e.str(p.sub)
	e.uint(uint64(len(p.params)))
	for _, pr := range p.params {
		e.str(pr.key)
		e.str(pr.value)
	}
	n := 0
	for _, f := range p.fields {
		if !top || !envelopeOnly(f.name) {
			n++
		}
	}
	e.uint(uint64(n))
	for _, f := range p.fields {
		if top && envelopeOnly(f.name) {
			continue
		}
		e.byte1(byte(slices.Index(fieldTable, f.name)))
		e.str(f.value)
	}
	switch {
	case p.msg != nil:
		e.byte1(2)
		encodePart(e, p.msg, false)
	case len(p.children) > 0:
		e.byte1(1)
		e.uint(uint64(len(p.children)))
		for _, c := range p.children {
			encodePart(e, c, false)
		}
	default:
		e.byte1(0)
	}
}

func decodeStructure(v []byte) (*mimePart, error) {
	d := newDecoder(v)
	parts := 0
	root := decodePart(d, 0, &parts)
	if !d.done() {
		return nil, errBadItem
	}
	return root, nil
}

func decodePart(d *decoder, depth int, parts *int) *mimePart {
	*parts++
	if depth > maxMIMEDepth+1 || *parts > maxParts+1 {
		d.bad = true
		return nil
	}
	p := &mimePart{hdrOff: d.off()}
	p.bodyOff = p.hdrOff + d.off()
	p.end = p.bodyOff + d.off()
	p.lines = d.off()
	p.typ, p.sub = d.str(), d.str()
	if n := d.count(); n > 0 {
		p.params = make([]param, 0, n)
		for i := 0; i < n && !d.bad; i++ {
			p.params = append(p.params, param{d.str(), d.str()})
		}
	}
	if n := d.count(); n > 0 {
		p.fields = make([]headerField, 0, n)
		for i := 0; i < n && !d.bad; i++ {
			idx := int(d.byte1())
			if idx >= len(fieldTable) {
				d.bad = true
				break
			}
			p.fields = append(p.fields, headerField{name: fieldTable[idx], value: d.str()})
		}
	}
	switch d.byte1() {
	case 0:
	case 1:
		n := d.count()
		if n == 0 {
			d.bad = true
		}
		for i := 0; i < n && !d.bad; i++ {
			p.children = append(p.children, decodePart(d, depth+1, parts))
		}
	case 2:
		p.msg = decodePart(d, depth+1, parts)
	default:
		d.bad = true
	}
	if d.bad {
		return nil
	}
	return p
}
