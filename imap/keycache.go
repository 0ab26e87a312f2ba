package imap

import (
	"container/list"
	"sync"

	"github.com/letterbox-mail/letterbox/imap/internal/mailsort"
)

// keyCache keeps the SORT and THREAD keys of recently sorted mailboxes in
// memory, for every session of the server. It is the one place where a
// copy in memory still pays besides the store's cache: a SORT or THREAD
// reads the keys of every message of a folder, clients sort again by
// another column or after each change, and the keys are small (about 500
// bytes a message with the map). Keys never change (message files are
// immutable, and a new UIDVALIDITY makes a new entry), so nothing is ever
// stale; expunged messages leave when their mailbox is evicted. Mailboxes
// are evicted least recently used first, beyond Server.MaxCachedSortKeys
// messages in all.
type keyCache struct {
	mu    sync.Mutex
	max   int
	n     int
	boxes map[boxID]*list.Element
	lru   *list.List
}

// boxID names a mailbox for good: its folder and UIDVALIDITY.
type boxID struct {
	folder      string // Maildir root and mailbox name
	uidValidity uint32
}

type boxKeys struct {
	id   boxID
	keys map[uint32]*mailsort.Keys // the header-derived keys only
}

func newKeyCache(max int) *keyCache {
	return &keyCache{max: max, boxes: make(map[boxID]*list.Element), lru: list.New()}
}

// lookup fills keys[i] for the UIDs it has and returns the indexes of
// those it has not.
func (c *keyCache) lookup(id boxID, uids []uint32, keys []mailsort.Keys) (missing []int) {
	if c == nil || c.max <= 0 {
		missing = make([]int, len(uids))
		for i := range uids {
			missing[i] = i
		}
		return missing
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var bk *boxKeys
	if e, ok := c.boxes[id]; ok {
		c.lru.MoveToFront(e)
		bk = e.Value.(*boxKeys)
	}
	for i, u := range uids {
		if bk != nil {
			if k, ok := bk.keys[u]; ok {
				keys[i] = *k
				continue
			}
		}
		missing = append(missing, i)
	}
	return missing
}

// add keeps the keys of some messages of a mailbox.
func (c *keyCache) add(id boxID, uids []uint32, keys []*mailsort.Keys) {
	if c == nil || c.max <= 0 || len(uids) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var bk *boxKeys
	if e, ok := c.boxes[id]; ok {
		c.lru.MoveToFront(e)
		bk = e.Value.(*boxKeys)
	} else {
		bk = &boxKeys{id: id, keys: make(map[uint32]*mailsort.Keys, len(uids))}
		c.boxes[id] = c.lru.PushFront(bk)
	}
	for i, u := range uids {
		if len(bk.keys) >= c.max {
			break // one mailbox bigger than the whole cache keeps what fits
		}
		if _, ok := bk.keys[u]; !ok {
			bk.keys[u] = keys[i]
			c.n++
		}
	}
	for c.n > c.max && c.lru.Len() > 1 {
		e := c.lru.Back()
		old := e.Value.(*boxKeys)
		c.lru.Remove(e)
		delete(c.boxes, old.id)
		c.n -= len(old.keys)
	}
}
