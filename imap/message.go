package imap

import (
	"bytes"
	"container/list"
	"context"
	"io"
	"sync"

	"github.com/letterbox-mail/letterbox/store"
)

// msgInfo is what parsing a message file gave. It is cached: message files
// never change, and a key names one file for good (a new UIDVALIDITY makes
// new keys).
type msgInfo struct {
	size int64
	root *mimePart // the top entity; its parts only if full
	full bool
	// header is the raw top header, for HEADER.FIELDS and SEARCH HEADER
	// without opening the file again; nil if longer than maxHeaderKept.
	header []byte
}

// maxHeaderKept bounds the raw header a cache entry keeps.
const maxHeaderKept = 16 << 10

type msgKey struct {
	box         string // Maildir root and mailbox name
	uidValidity uint32
	uid         uint32
}

// msgCache is a bounded LRU of parsed messages, shared by all sessions.
type msgCache struct {
	mu  sync.Mutex
	max int
	m   map[msgKey]*list.Element
	l   *list.List
}

type cacheEntry struct {
	key  msgKey
	info *msgInfo
}

func newMsgCache(max int) *msgCache {
	return &msgCache{max: max, m: make(map[msgKey]*list.Element), l: list.New()}
}

func (c *msgCache) get(k msgKey, full bool) *msgInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[k]
	if !ok {
		return nil
	}
	info := e.Value.(*cacheEntry).info
	if full && !info.full {
		return nil
	}
	c.l.MoveToFront(e)
	return info
}

func (c *msgCache) put(k msgKey, info *msgInfo) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[k]; ok {
		if old := e.Value.(*cacheEntry).info; old.full && !info.full {
			return
		}
		e.Value.(*cacheEntry).info = info
		c.l.MoveToFront(e)
		return
	}
	c.m[k] = c.l.PushFront(&cacheEntry{k, info})
	for c.l.Len() > c.max {
		e := c.l.Back()
		c.l.Remove(e)
		delete(c.m, e.Value.(*cacheEntry).key)
	}
}

// msgSource is where a message is read from: a mailbox handle and the
// message's cache key.
type msgSource struct {
	mbox *store.Mailbox
	key  msgKey
}

func (s *session) source(sel *selected, uid uint32) msgSource {
	return msgSource{
		mbox: sel.mbox,
		key:  msgKey{box: s.user.Root() + "\x00" + sel.name, uidValidity: sel.uidValidity, uid: uid},
	}
}

// info returns the parsed structure of a message: only the top header
// unless full.
func (s *session) info(src msgSource, full bool) (*msgInfo, error) {
	k := src.key
	if info := s.srv.cache.get(k, full); info != nil {
		return info, nil
	}
	body, err := src.mbox.OpenMessage(s.ctx, k.uid)
	if err != nil {
		return nil, err
	}
	defer body.Close()
	return s.parse(k, body, body.Size, full)
}

// headPrefix keeps the first bytes written to it.
type headPrefix struct{ b []byte }

func (h *headPrefix) Write(p []byte) (int, error) {
	if room := maxHeaderKept - len(h.b); room > 0 {
		h.b = append(h.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

// header is info without full, together with the raw top header that
// HEADER.FIELDS and SEARCH HEADER filter: a message not yet cached is
// read once for both, not parsed and then opened again.
func (s *session) header(src msgSource) (*msgInfo, []byte, error) {
	k := src.key
	if info := s.srv.cache.get(k, false); info != nil {
		if info.header != nil {
			return info, info.header, nil
		}
		raw, err := readRange(s.ctx, src.mbox, k.uid, 0, info.root.bodyOff)
		return info, raw, err
	}
	body, err := src.mbox.OpenMessage(s.ctx, k.uid)
	if err != nil {
		return nil, nil, err
	}
	defer body.Close()
	// The parser stops after the header; every byte it consumed went
	// through seen, so the header is its prefix.
	var seen bytes.Buffer
	info, err := s.parse(k, io.TeeReader(body, &seen), body.Size, false)
	if err != nil {
		return nil, nil, err
	}
	return info, seen.Bytes()[:info.root.bodyOff], nil
}

// whole reads a whole message and returns it with its full structure,
// opening the file once.
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
	k := src.key
	if info := s.srv.cache.get(k, true); info != nil {
		return info, raw, nil
	}
	info, err := s.parse(k, bytes.NewReader(raw), body.Size, true)
	return info, raw, err
}

// parse parses a message of size bytes from r and caches the result.
func (s *session) parse(k msgKey, r io.Reader, size int64, full bool) (*msgInfo, error) {
	info := &msgInfo{size: size, full: full}
	head := &headPrefix{}
	r = io.TeeReader(r, head)
	var err error
	if full {
		info.root, err = parseMessage(r)
	} else {
		info.root, err = parseHeaderOnly(r)
	}
	if err != nil {
		return nil, err
	}
	if n := info.root.bodyOff; n <= int64(len(head.b)) {
		info.header = bytes.Clone(head.b[:n])
	}
	s.srv.cache.put(k, info)
	return info, nil
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
