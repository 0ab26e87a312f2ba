package imap

import (
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
}

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

// info returns the parsed structure of a message of the selected mailbox:
// only the top header unless full.
func (s *session) info(ctx context.Context, sel *selected, uid uint32, full bool) (*msgInfo, error) {
	k := msgKey{box: sel.key, uidValidity: sel.uidValidity, uid: uid}
	if info := s.srv.cache.get(k, full); info != nil {
		return info, nil
	}
	body, err := sel.mbox.OpenMessage(ctx, uid)
	if err != nil {
		return nil, err
	}
	defer body.Close()
	info := &msgInfo{size: body.Size, full: full}
	if full {
		info.root, err = parseMessage(body)
	} else {
		info.root, err = parseHeaderOnly(body)
	}
	if err != nil {
		return nil, err
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
