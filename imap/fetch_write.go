package imap

import (
	"sort"
	"strings"
)

// Encoding of ENVELOPE and BODYSTRUCTURE (RFC 3501 §7.4.2, RFC 9051
// §7.5.2) straight from the parsed message.

func writeEnvelope(o *output, env *envelopeData) {
	o.byte1('(')
	o.nstr(env.date)
	o.sp()
	o.nstr(env.subject)
	sender, replyTo := env.sender, env.replyTo
	if len(sender) == 0 {
		sender = env.from // RFC 3501 §7.4.2: defaults to From
	}
	if len(replyTo) == 0 {
		replyTo = env.from
	}
	for _, l := range [][]address{env.from, sender, replyTo, env.to, env.cc, env.bcc} {
		o.sp()
		writeAddresses(o, l)
	}
	o.sp()
	if len(env.inReplyTo) > 0 {
		o.str("<" + strings.Join(env.inReplyTo, "> <") + ">")
	} else {
		o.nilAtom()
	}
	o.sp()
	if env.messageID != "" {
		o.str("<" + env.messageID + ">")
	} else {
		o.nilAtom()
	}
	o.byte1(')')
}

func writeAddresses(o *output, l []address) {
	if len(l) == 0 {
		o.nilAtom()
		return
	}
	o.byte1('(')
	for _, a := range l {
		o.byte1('(')
		if a.groupEnd {
			o.writeString("NIL NIL NIL NIL)")
			continue
		}
		o.nstr(a.name)
		o.sp()
		o.nstr(a.route)
		o.sp()
		if a.groupStart && a.mailbox == "" {
			o.writeString(`""`) // NIL would end a group
		} else {
			o.nstr(a.mailbox)
		}
		o.sp()
		if a.host == "" && !a.groupStart {
			// An address without a domain ("MAILER-DAEMON"): NIL
			// would make it a group's start (RFC 3501 §7.4.2).
			o.writeString(`""`)
		} else {
			o.nstr(a.host)
		}
		o.byte1(')')
	}
	o.byte1(')')
}

// writeBodyStructure writes BODYSTRUCTURE (extended) or BODY.
func writeBodyStructure(o *output, p *mimePart, extended bool) {
	o.byte1('(')
	if p.isMultipart() {
		for _, c := range p.children {
			// No SP between the parts (RFC 3501 §9 body-type-mpart).
			writeBodyStructure(o, c, extended)
		}
		o.sp()
		o.str(p.sub)
		if extended {
			o.sp()
			writeParams(o, p.params)
			o.sp()
			writeDisposition(o, p)
			o.sp()
			writeLanguages(o, p)
			o.sp()
			o.nstr(p.header("content-location"))
		}
		o.byte1(')')
		return
	}
	typ, sub := p.typ, p.sub
	if typ == "multipart" {
		// A multipart without a boundary is sent as what it is, a leaf.
		typ, sub = "text", "plain"
	}
	o.str(typ)
	o.sp()
	o.str(sub)
	o.sp()
	writeParams(o, p.params)
	o.sp()
	o.nstr(p.header("content-id"))
	o.sp()
	o.nstr(p.header("content-description"))
	o.sp()
	enc := strings.ToLower(strings.TrimSpace(stripComments(p.header("content-transfer-encoding"))))
	if enc == "" {
		enc = "7bit"
	}
	o.str(enc)
	o.sp()
	o.num64(min(p.end-p.bodyOff, 1<<32-1))
	switch {
	case p.msg != nil:
		o.sp()
		writeEnvelope(o, envelope(p.msg))
		o.sp()
		writeBodyStructure(o, p.msg, extended)
		o.sp()
		o.num64(p.lines)
	case typ == "text":
		o.sp()
		o.num64(p.lines)
	}
	if extended {
		o.writeString(" NIL ") // MD5
		writeDisposition(o, p)
		o.sp()
		writeLanguages(o, p)
		o.sp()
		o.nstr(p.header("content-location"))
	}
	o.byte1(')')
}

// writeParams writes body parameters sorted by name, the first of a
// repeated name only. Parameter lists are short: no map, and the sort is
// an insertion sort in place of a copy.
func writeParams(o *output, ps []param) {
	if len(ps) == 0 {
		o.nilAtom()
		return
	}
	if len(ps) > 16 {
		writeManyParams(o, ps)
		return
	}
	var buf [16]param
	list := buf[:0]
	for _, p := range ps {
		dup := false
		for _, q := range list {
			if q.key == p.key {
				dup = true
				break
			}
		}
		if dup {
			continue
		}
		// Stable: equal keys cannot be, so insert after smaller ones.
		i := len(list)
		list = append(list, p)
		for i > 0 && list[i-1].key > p.key {
			list[i] = list[i-1]
			i--
		}
		list[i] = p
	}
	o.byte1('(')
	for i, p := range list {
		if i > 0 {
			o.sp()
		}
		o.str(p.key)
		o.sp()
		o.str(p.value)
	}
	o.byte1(')')
}

// writeManyParams is writeParams for a long list (a hostile one: the
// parser keeps every parameter).
func writeManyParams(o *output, ps []param) {
	seen := make(map[string]bool, len(ps))
	var list []param
	for _, p := range ps {
		if !seen[p.key] {
			seen[p.key] = true
			list = append(list, p)
		}
	}
	sort.SliceStable(list, func(i, j int) bool { return list[i].key < list[j].key })
	o.byte1('(')
	for i, p := range list {
		if i > 0 {
			o.sp()
		}
		o.str(p.key)
		o.sp()
		o.str(p.value)
	}
	o.byte1(')')
}

func writeDisposition(o *output, p *mimePart) {
	v := p.header("content-disposition")
	d, params := "", []param(nil)
	if v != "" {
		d, params = parseDisposition(v)
	}
	if d == "" {
		o.nilAtom()
		return
	}
	o.byte1('(')
	o.str(d)
	o.sp()
	writeParams(o, params)
	o.byte1(')')
}

func writeLanguages(o *output, p *mimePart) {
	v := strings.TrimSpace(stripComments(p.header("content-language")))
	var langs []string
	for _, l := range strings.Split(v, ",") {
		if l = strings.TrimSpace(l); l != "" {
			langs = append(langs, l)
		}
	}
	if len(langs) == 0 {
		o.nilAtom()
		return
	}
	o.byte1('(')
	for i, l := range langs {
		if i > 0 {
			o.sp()
		}
		o.str(l)
	}
	o.byte1(')')
}
