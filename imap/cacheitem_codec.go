package imap

import (
	"encoding/binary"
	"slices"

	"github.com/letterbox-mail/letterbox/imap/internal/mailsort"
)

// The encodings of the cache items (cacheitem.go describes them): an
// encoder that appends fields, a decoder that never reads past its input
// nor allocates more than it holds, and the envelope, keys and structure
// items.

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
