package imap

import (
	"encoding/binary"
	"errors"
	"slices"
	"strings"

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
