package imap

import (
	"bytes"
	"context"
	"io"

	"github.com/emersion/go-imap/v2"
	"github.com/letterbox-mail/letterbox/imap/internal/mailsort"
	"github.com/letterbox-mail/letterbox/store"
)

// What a command needs of a message comes from the store's cache
// (cacheitem.go) when it is there, and from the message file otherwise,
// which then fills the cache: one read of the file, one write of every
// item it gave. Nothing is kept in memory between commands; the store's
// cache is the one place (shared by processes, kept across restarts).

// need says what a command needs of one message.
type need struct {
	top      bool     // where the top header ends
	fields   []string // these top header fields, raw (HEADER.FIELDS, SEARCH HEADER)
	lower    []string // fields in lower case (withLower)
	header   bool     // the whole raw top header
	envelope bool
	keys     bool // the header's SORT and THREAD keys
	full     bool // the whole MIME tree, with offsets
}

// withLower sets lower from fields.
func (n need) withLower() need {
	n.lower = make([]string, len(n.fields))
	for i, f := range n.fields {
		n.lower[i] = lowerName(f)
	}
	return n
}

func (n need) any() bool {
	return n.top || n.fields != nil || n.header || n.envelope || n.keys || n.full
}

// msgInfo is what was loaded of a message.
type msgInfo struct {
	size int64
	// root is the MIME tree if full was needed; otherwise, if top or
	// header was, the top part with its offsets only.
	root *mimePart
	// The top header fields asked for: head, the cached ones, when it
	// covers them; header, the whole raw top header, otherwise.
	head   *headItem
	header []byte
	env    *envelopeData
	keys   mailsort.Keys
}

type msgKey struct {
	uid uint32
}

// msgSource is where a message is read from: a mailbox handle and the
// message's key.
type msgSource struct {
	mbox *store.Mailbox
	key  msgKey
}

func (s *session) source(sel *selected, uid uint32) msgSource {
	return msgSource{
		mbox: sel.mbox,
		key:  msgKey{uid: uid},
	}
}

// Bounds of what a message file is read for.
const (
	maxHeaderRead = 256 << 10 // a top header read to keep its fields
)

// load returns what n asks of a message of size bytes (as it goes on the
// wire: store.Message.Size).
func (s *session) load(src msgSource, size int64, n need) (*msgInfo, error) {
	if len(n.lower) != len(n.fields) {
		n = n.withLower()
	}
	info := &msgInfo{size: size}
	c := cachedItems(src)
	var (
		head  *headItem
		read  bool    // the file must be read: something is not cached
		full  bool    // ... all of it
		fresh [4]bool // items to make: header, envelope, keys, structure
		err   error
	)
	if n.top || n.fields != nil || n.header {
		if head, err = decodeHeaderItem(c[0]); err != nil {
			head, read, fresh[0] = nil, true, true
		} else if head.kept && !head.covers(n.lower) {
			read, fresh[0] = true, true // read once more for these fields
		}
	}
	if n.envelope {
		if info.env, err = decodeEnvelope(c[1]); err != nil {
			read, fresh[1] = true, true
		}
	}
	if n.keys && decodeSortKeys(c[2], &info.keys) != nil {
		read, fresh[2] = true, true
	}
	if n.full {
		if info.root, err = decodeStructure(c[3]); err != nil {
			read, full, fresh[3] = true, true, true
		}
	}
	if !read {
		if head == nil {
			return info, nil
		}
		if n.header || !head.covers(n.lower) {
			// Wanted whole, or too big to keep: from the file.
			if info.header, err = readRange(s.ctx, src.mbox, src.key.uid, 0, head.bodyOff); err != nil {
				return nil, err
			}
		} else {
			info.head = head
		}
		if info.root == nil {
			info.root = &mimePart{bodyOff: head.bodyOff}
		}
		return info, nil
	}

	body, err := src.mbox.OpenMessage(s.ctx, src.key.uid)
	if err != nil {
		return nil, err
	}
	p, err := parseFile(body, full)
	body.Close()
	if err != nil {
		return nil, err
	}
	for i := range 3 {
		// Whatever else is missing comes from the same read.
		fresh[i] = fresh[i] || c[i] == nil
	}
	var extra []string
	if head != nil {
		extra = head.extra
	}
	newHead, put := p.items(fresh, extra, n.fields)
	src.mbox.Cache(src.key.uid, put...)

	if info.root == nil {
		info.root = p.root
	}
	if n.envelope && info.env == nil {
		info.env = envelope(p.root)
	}
	if n.keys && fresh[2] {
		info.keys = keysOf(p.root)
	}
	switch {
	case n.header || n.fields != nil && !newHead.covers(n.lower):
		info.header = p.header
		if info.header == nil { // longer than maxHeaderRead
			if info.header, err = readRange(s.ctx, src.mbox, src.key.uid, 0, p.root.bodyOff); err != nil {
				return nil, err
			}
		}
	case n.fields != nil:
		info.head = newHead
	}
	return info, nil
}

// cachedItems returns a message's items: header, envelope, keys,
// structure (nil for those not cached).
func cachedItems(src msgSource) (c [4][]byte) {
	for _, it := range src.mbox.CachedItems(src.key.uid) {
		if it.Key >= keyHeader && it.Key <= keyStructure {
			c[it.Key-keyHeader] = it.Value
		}
	}
	return c
}

// parsed is a message read from its file.
type parsed struct {
	root   *mimePart // the whole tree, or the top part alone
	full   bool
	header []byte // the raw top header; nil if longer than maxHeaderRead
}

// parseFile parses a message: all of it, or its top header.
func parseFile(r io.Reader, full bool) (*parsed, error) {
	head := &headPrefix{max: maxHeaderRead}
	r = io.TeeReader(r, head)
	p := &parsed{full: full}
	var err error
	if full {
		p.root, err = parseMessage(r)
	} else {
		p.root, err = parseHeaderOnly(r)
	}
	if err != nil {
		return nil, err
	}
	if n := p.root.bodyOff; n <= int64(len(head.b)) {
		p.header = head.b[:n:n]
	}
	return p, nil
}

// items makes the cache items marked fresh (header, envelope, keys,
// structure) from a parsed message. The header item keeps the fields of
// headerFields, of extra and of asked (names a client asked for), as
// long as they fit.
func (p *parsed) items(fresh [4]bool, extra, asked []string) (*headItem, []store.CacheItem) {
	h := &headItem{bodyOff: p.root.bodyOff, extra: extra}
	for _, n := range asked {
		l := lowerName(n)
		if !headerFieldSet[l] && !containsString(h.extra, l) && len(l) <= maxExtraName && len(h.extra) < maxExtraFields {
			h.extra = append(h.extra[:len(h.extra):len(h.extra)], l)
		}
	}
	if p.header != nil {
		h.fields, h.kept = keptFieldsOf(p.header, h.extra)
	}
	if !h.kept {
		h.extra = nil
	}
	var put []store.CacheItem
	if fresh[0] {
		put = append(put, store.CacheItem{Key: keyHeader, Value: encodeHeaderItem(h)})
	}
	if fresh[1] {
		put = append(put, store.CacheItem{Key: keyEnvelope, Value: encodeEnvelope(envelope(p.root))})
	}
	if fresh[2] {
		k := keysOf(p.root)
		put = append(put, store.CacheItem{Key: keySortKeys, Value: encodeSortKeys(&k)})
	}
	if fresh[3] && p.full {
		put = append(put, store.CacheItem{Key: keyStructure, Value: encodeStructure(p.root)})
	}
	return h, put
}

// keysOf computes the SORT and THREAD keys from the fields ENVELOPE is
// made of, so that both show the same (RFC 5256 §3, RFC 5957 §3).
func keysOf(root *mimePart) mailsort.Keys {
	return mailsort.FromHeader(func(name string) string { return root.header(lowerName(name)) })
}

// headPrefix keeps the first max bytes written to it.
type headPrefix struct {
	b   []byte
	max int
}

func (h *headPrefix) Write(p []byte) (int, error) {
	if room := h.max - len(h.b); room > 0 {
		h.b = append(h.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

// whole reads a whole message and returns it with its full structure,
// opening the file once; what the cache lacked is cached.
func (s *session) whole(src msgSource) (*msgInfo, []byte, error) {
	body, err := src.mbox.OpenMessage(s.ctx, src.key.uid)
	if err != nil {
		return nil, nil, err
	}
	raw, err := io.ReadAll(body)
	body.Close()
	if err != nil {
		return nil, nil, err
	}
	info := &msgInfo{size: int64(len(raw))}
	c := cachedItems(src)
	if info.root, err = decodeStructure(c[3]); err == nil {
		return info, raw, nil
	}
	p, err := parseFile(bytes.NewReader(raw), true)
	if err != nil {
		return nil, nil, err
	}
	fresh := [4]bool{c[0] == nil, c[1] == nil, c[2] == nil, true}
	var extra []string
	if h, err := decodeHeaderItem(c[0]); err == nil {
		extra = h.extra
	}
	_, put := p.items(fresh, extra, nil)
	src.mbox.Cache(src.key.uid, put...)
	info.root = p.root
	return info, raw, nil
}

// readRange reads n bytes at off of a message.
func readRange(ctx context.Context, mbox *store.Mailbox, uid uint32, off, n int64) ([]byte, error) {
	body, err := mbox.OpenMessage(ctx, uid)
	if err != nil {
		return nil, err
	}
	defer body.Close()
	if _, err := io.CopyN(io.Discard, body, off); err != nil {
		return nil, err
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(body, buf); err != nil {
		return nil, err
	}
	return buf, nil
}

// needOf is what a BODY[section] needs.
func needOf(bs *imap.FetchItemBodySection) need {
	switch {
	case len(bs.Part) > 0:
		return need{full: true}
	case len(bs.HeaderFields) > 0:
		return need{top: true, fields: bs.HeaderFields}
	case len(bs.HeaderFieldsNot) > 0:
		return need{top: true, header: true}
	case bs.Specifier != imap.PartSpecifierNone:
		return need{top: true}
	}
	return need{}
}

// need is what the items of a FETCH need of each message, worked out
// once per command.
func (a *fetchArgs) need() need {
	if a.needs == nil {
		n := a.makeNeed().withLower()
		a.needs = &n
	}
	return *a.needs
}

func (a *fetchArgs) makeNeed() need {
	var n need
	merge := func(m need) {
		n.top = n.top || m.top
		n.header = n.header || m.header
		n.envelope = n.envelope || m.envelope
		n.keys = n.keys || m.keys
		n.full = n.full || m.full
		switch {
		case n.fields == nil:
			n.fields = m.fields
		case m.fields != nil:
			n.fields = append(n.fields[:len(n.fields):len(n.fields)], m.fields...)
		}
	}
	for _, it := range a.items {
		switch it.kind {
		case itemEnvelope:
			n.envelope = true
		case itemBody, itemBodyStructure, itemPreview:
			n.full = true
		case itemSection:
			merge(needOf(it.section))
		case itemBinary, itemBinarySize:
			n.full = n.full || len(it.part) > 0
		}
	}
	return n
}
