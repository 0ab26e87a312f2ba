package imap

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/letterbox-mail/letterbox/store"
)

// boxRegistry keeps one sharedBox per open folder: one
// imapserver.MailboxTracker fed from the store's change feed, shared by
// every session that has the folder selected.
type boxRegistry struct {
	srv   *Server
	mu    sync.Mutex
	boxes map[string]*sharedBox
}

func newBoxRegistry(s *Server) *boxRegistry {
	return &boxRegistry{srv: s, boxes: make(map[string]*sharedBox)}
}

// sharedBox is an open folder with its tracker.
type sharedBox struct {
	reg  *boxRegistry
	key  string
	mbox *store.Mailbox
	refs int // guarded by reg.mu

	mu       sync.Mutex // held by the feed callback, which runs under the store's lock
	tracker  *imapserver.MailboxTracker
	cancel   func()
	sessions map[*selected]struct{}
	keywords []string
	appends  uint64 // messages appended so far, to claim \Recent
	invalid  bool
	closed   bool
}

func boxKey(u *store.User, name string) string { return u.Root() + "\x00" + name }

// acquire returns the shared box of a folder, opening it if needed.
func (r *boxRegistry) acquire(ctx context.Context, u *store.User, name string) (*sharedBox, error) {
	key := boxKey(u, name)
	r.mu.Lock()
	if sb := r.boxes[key]; sb != nil && !sb.isInvalid() {
		sb.refs++
		r.mu.Unlock()
		return sb, nil
	}
	r.mu.Unlock()

	mbox, err := u.Open(ctx, name)
	if err != nil {
		return nil, err
	}
	sb := &sharedBox{reg: r, key: key, mbox: mbox, sessions: make(map[*selected]struct{})}
	sb.mu.Lock()
	n, cancel := mbox.Watch(sb.onChange)
	sb.tracker = imapserver.NewMailboxTracker(uint32(n))
	sb.cancel = cancel
	sb.mu.Unlock()
	var kws []string
	if err := mbox.Read(ctx, func(v *store.View) { kws = v.Keywords() }); err != nil {
		cancel()
		mbox.Close()
		return nil, err
	}
	sb.mu.Lock()
	sb.learnKeywords(kws)
	sb.mu.Unlock()

	r.mu.Lock()
	if other := r.boxes[key]; other != nil && !other.isInvalid() {
		other.refs++
		r.mu.Unlock()
		sb.shut()
		return other, nil
	}
	sb.refs = 1
	r.boxes[key] = sb
	r.mu.Unlock()
	return sb, nil
}

func (r *boxRegistry) release(sb *sharedBox) {
	r.mu.Lock()
	sb.refs--
	last := sb.refs <= 0
	if last && r.boxes[sb.key] == sb {
		delete(r.boxes, sb.key)
	}
	r.mu.Unlock()
	if last {
		sb.shut()
	}
}

func (sb *sharedBox) shut() {
	sb.mu.Lock()
	sb.closed = true
	sb.mu.Unlock()
	sb.cancel()
	sb.mbox.Close()
}

func (sb *sharedBox) isInvalid() bool {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	return sb.invalid
}

// learnKeywords adds keywords not seen before and reports whether there
// were any. sb.mu is held.
func (sb *sharedBox) learnKeywords(kws []string) bool {
	added := false
	for _, k := range kws {
		known := false
		for _, x := range sb.keywords {
			if strings.EqualFold(x, k) {
				known = true
				break
			}
		}
		if !known {
			sb.keywords = append(sb.keywords, k)
			added = true
		}
	}
	return added
}

// onChange feeds the tracker. It runs under the store's lock for the
// folder, in the order of the changes, so the tracker's idea of the
// mailbox is the store's at every moment a View can see.
func (sb *sharedBox) onChange(c store.Change) {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	defer func() {
		// This runs in whatever goroutine changed the folder (a POP3
		// session, the store's watcher): a tracker panic (numbers out of
		// step) must not take it down. The sessions are ended instead.
		if v := recover(); v != nil {
			sb.reg.srv.log.Error("imap: mailbox tracker out of step with the store, ending its sessions", "panic", v)
			sb.invalid = true
			for sel := range sb.sessions {
				sel.invalid.Store(true)
				sel.wake()
			}
		}
	}()
	if sb.closed {
		return
	}
	switch c.Kind {
	case store.Appended:
		// One EXISTS per message: SessionTracker.EncodeSeqNum relies on it.
		sb.tracker.QueueNumMessages(uint32(c.Seq))
		sb.appends++
	case store.Expunged:
		sb.tracker.QueueExpunge(uint32(c.Seq))
	case store.FlagsChanged:
		if sb.learnKeywords(c.Keywords) {
			sb.tracker.QueueMailboxFlags(mailboxFlags(sb.keywords))
		}
		var source *imapserver.SessionTracker
		if sel, ok := c.Origin.(*selected); ok {
			if _, mine := sb.sessions[sel]; mine {
				source = sel.tracker
			}
		}
		sb.tracker.QueueMessageFlags(uint32(c.Seq), imap.UID(c.UID), imapFlags(c.Flags, c.Keywords), source)
	case store.KeywordsChanged:
		// The name is not in the change, and the view cannot be read
		// under the lock: look after it.
		go sb.refreshKeywords()
	case store.Invalidated:
		sb.invalid = true
		for sel := range sb.sessions {
			sel.invalid.Store(true)
		}
	}
	for sel := range sb.sessions {
		sel.wake()
	}
}

func (sb *sharedBox) refreshKeywords() {
	defer func() {
		if v := recover(); v != nil {
			sb.reg.srv.log.Error("imap: refresh keywords", "panic", v)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var kws []string
	if err := sb.mbox.Read(ctx, func(v *store.View) { kws = v.Keywords() }); err != nil {
		return
	}
	sb.mu.Lock()
	defer sb.mu.Unlock()
	if sb.closed || !sb.learnKeywords(kws) {
		return
	}
	sb.tracker.QueueMailboxFlags(mailboxFlags(sb.keywords))
	for sel := range sb.sessions {
		sel.wake()
	}
}
