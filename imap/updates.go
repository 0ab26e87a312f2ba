package imap

import (
	"errors"
	"sort"
	"strings"
	"sync"

	"github.com/letterbox-mail/letterbox/store"
)

// Unsolicited updates of the selected mailbox (RFC 3501 §7.3.1 EXISTS,
// §7.4.1 EXPUNGE, §7.4.2 FETCH FLAGS, §7.2.6 FLAGS; RFC 9051 §7.4).
//
// Every session has one queue, fed by the store's change feed
// (store.Mailbox.Subscribe, which gives the view SELECT answers from) in
// the order the store made the changes, its own included. The client's
// idea of the mailbox (view: the UIDs in sequence order) changes only
// when the queue is drained, at the points the RFC allows: after a
// command (without EXPUNGE after FETCH, STORE and SEARCH) and at once
// during IDLE. Each change is sent in store order, so:
//
//   - a keyword is announced with "* FLAGS" before any FETCH uses it;
//   - a message's flags are never older than a state the session was
//     already shown: FETCH and STORE responses record the queue position
//     their flags were read at (shownAt), and queued flag changes up to it
//     are skipped;
//   - \Recent belongs to the messages in the view (RFC 3501 §2.3.2), so
//     RECENT never exceeds EXISTS.
//
// Each entry has its queue position (pos) and the change's MODSEQ: once
// CONDSTORE is enabled FETCH responses carry it, once QRESYNC is enabled
// expunges go out as VANISHED, and the session's HIGHESTMODSEQ moves with
// what was sent (condstore.go).
type updateQueue struct {
	mu      sync.Mutex
	entries []queued
	pos     uint64 // position of the last change queued
	max     int
	over    bool   // more than max changes waited: the session must end
	wake    func() // set during IDLE: wakes the session
}

type queued struct {
	pos uint64
	ch  store.Change
}

func newUpdateQueue(max int) *updateQueue {
	return &updateQueue{max: max}
}

// push is the store's feed callback: it runs under the mailbox's lock, in
// whatever goroutine changed it, so it only queues.
func (q *updateQueue) push(c store.Change) {
	q.mu.Lock()
	q.pos++
	if len(q.entries) >= q.max {
		q.over = true
		q.entries = nil
	} else if !q.over {
		q.entries = append(q.entries, queued{pos: q.pos, ch: c})
	}
	wake := q.wake
	q.mu.Unlock()
	if wake != nil {
		wake()
	}
}

// setWake sets (or with nil clears) the function that wakes the session.
func (q *updateQueue) setWake(f func()) {
	q.mu.Lock()
	q.wake = f
	q.mu.Unlock()
}

// pending reports whether changes wait to be sent.
func (q *updateQueue) pending() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.entries) > 0 || q.over
}

// position is the position of the last change queued. Read under the
// store's lock (in a Read callback) it says which changes a view holds.
func (q *updateQueue) position() uint64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.pos
}

// take removes and returns everything queued.
func (q *updateQueue) take() ([]queued, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	e, over := q.entries, q.over
	q.entries = nil
	return e, over
}

// putBack returns entries not sent yet to the front of the queue.
func (q *updateQueue) putBack(e []queued) {
	if len(e) == 0 {
		return
	}
	q.mu.Lock()
	q.entries = append(append([]queued(nil), e...), q.entries...)
	q.mu.Unlock()
}

// needsView reports whether what is queued needs a view of the mailbox
// to be sent (a new keyword's name), or nothing is queued.
func (q *updateQueue) needsView() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.entries) == 0 {
		return true
	}
	for _, e := range q.entries {
		if e.ch.Kind == store.KeywordsChanged {
			return true
		}
	}
	return false
}

func (q *updateQueue) hasAppends() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, e := range q.entries {
		if e.ch.Kind == store.Appended {
			return true
		}
	}
	return false
}

// poll sends what changed in the selected mailbox. The disk is checked
// first (the store's mtime check), so changes by other processes come too.
//
// During IDLE (idling) \Recent is not claimed: the client is not looking
// at the messages, and the next session to select the mailbox gets them.
// holdFlags keeps flag changes queued for a later poll (NOTIFY without
// FlagChange sends new and expunged messages only).
func (s *session) poll(allowExpunge, idling, holdFlags bool) error {
	sel := s.sel
	if sel == nil {
		return nil
	}
	claimed := false
	if !sel.readOnly && !idling && (sel.claimPending || sel.q.hasAppends()) {
		claimed = s.claimRecent(sel)
		sel.claimPending = false
	}
	var entries []queued
	var over bool
	var keywords []string
	read := false
	var viewHighest uint64 // HIGHESTMODSEQ of the view the queue was taken at
	var err error
	if idling && !sel.q.needsView() {
		// Woken in IDLE by the feed: the queue holds what changed, and
		// a thousand sessions need not each look at the disk for it.
		entries, over = sel.q.take()
		read = true
	} else {
		// Peek: after a SELECT of a big folder just loaded, the
		// tagged OK need not wait for its whole index.
		err = sel.mbox.Peek(s.ctx, func(v *store.View) {
			read = true
			entries, over = sel.q.take()
			viewHighest = v.HighestModSeq()
			for _, e := range entries {
				if e.ch.Kind == store.KeywordsChanged {
					keywords = v.Keywords()
					break
				}
			}
		})
	}
	if !read {
		entries, over = sel.q.take()
	}
	if errors.Is(err, store.ErrNotFound) {
		sel.gone = true
	} else if err != nil {
		s.log.Warn("imap: refresh", "mailbox", sel.name, "err", err)
	}
	if over {
		s.log.Warn("imap: too many changes waiting for the session", "mailbox", sel.name)
		s.c.bye("Too many changes in the mailbox, please reconnect")
		return errConnClosed
	}
	existsSent := false
	var fresh []uint32             // new messages sent, for NOTIFY's MessageNew fetch-att
	var held []queued              // flag changes kept for later (holdFlags)
	var touched, expunged []uint32 // for the searches kept alive
	var vanished []uint32          // QRESYNC: sent as one VANISHED
	var top uint64                 // highest MODSEQ of the changes handled
	deferred := false
	for i, e := range entries {
		switch e.ch.Kind {
		case store.Appended:
			if n := len(sel.uids); n == 0 || e.ch.UID > sel.uids[n-1] {
				s.flushVanished(&vanished)
				sel.uids = append(sel.uids, e.ch.UID)
				s.c.out.writeString("* " + itoa(len(sel.uids)) + " EXISTS\r\n")
				existsSent = true
				fresh = append(fresh, e.ch.UID)
				touched = append(touched, e.ch.UID)
				sel.claimPending = sel.claimPending || idling
			} else if sel.seqOf(e.ch.UID) == 0 {
				// A new message with a UID below one the client knows
				// (the store warns "uidlist gave an old UID to a new
				// file": two processes numbered at once). IMAP cannot
				// say that; the client must start again.
				s.log.Warn("imap: new message with an old UID, disconnecting", "mailbox", sel.name, "uid", e.ch.UID)
				sel.gone = true
			}
		case store.Expunged:
			if !allowExpunge {
				sel.q.putBack(entries[i:])
				entries = nil
				deferred = true
				break
			}
			if seq := sel.seqOf(e.ch.UID); seq > 0 {
				sel.uids = append(sel.uids[:seq-1], sel.uids[seq:]...)
				delete(sel.recent, e.ch.UID)
				delete(sel.shownAt, e.ch.UID)
				expunged = append(expunged, e.ch.UID)
				if s.qresync {
					vanished = append(vanished, e.ch.UID) // RFC 7162 §3.2.10.2
				} else {
					s.c.out.writeString("* " + itoa(seq) + " EXPUNGE\r\n")
				}
			}
		case store.FlagsChanged:
			if holdFlags {
				held = append(held, e)
				continue
			}
			seq := sel.seqOf(e.ch.UID)
			if seq > 0 && len(sel.live) > 0 {
				touched = append(touched, e.ch.UID)
			}
			if seq == 0 || e.pos <= sel.shownAt[e.ch.UID] {
				top = max(top, e.ch.ModSeq)
				continue
			}
			s.flushVanished(&vanished)
			fl := sel.flagsOf(s, e.ch.Flags, e.ch.Keywords, e.ch.UID)
			s.announce(e.ch.Keywords)
			o := &s.c.out
			o.writeString("* " + itoa(seq) + " FETCH (UID " + itoa(int(e.ch.UID)) + " FLAGS ")
			writeFlags(o, fl)
			if s.condstore {
				o.writeString(" MODSEQ (" + utoa(e.ch.ModSeq) + ")") // RFC 7162 §3.2.4
			}
			o.writeString(")\r\n")
		case store.KeywordsChanged:
			s.flushVanished(&vanished)
			s.announce(keywords)
		case store.Invalidated:
			sel.gone = true
		}
		if entries == nil {
			break
		}
		top = max(top, e.ch.ModSeq)
	}
	s.flushVanished(&vanished)
	if len(held) > 0 {
		// In front of any expunges deferred above: queue order stays.
		sel.q.putBack(held)
		deferred = true
	}
	// The client now knows every change handled: all of the view's if the
	// whole queue went out, else up to the last one sent.
	if read && !deferred && viewHighest > 0 {
		top = max(top, viewHighest)
	}
	sel.highestModSeq = max(sel.highestModSeq, top)
	if deferred && s.qresync && s.modSeqShown {
		// RFC 7162 §3.2.4: the response showed MODSEQs above an expunge
		// it may not report yet; a client keeping the highest MODSEQ it
		// saw is told where it really stands.
		s.writeHighestModSeq()
	}
	s.modSeqShown = false
	if len(sel.shownAt) > 0 && len(entries) > 0 {
		// Every change up to the last one taken is handled: what was
		// shown before it needs no protection any more. A held flag
		// change is not handled yet.
		last := entries[len(entries)-1].pos
		if len(held) > 0 {
			last = min(last, held[0].pos-1)
		}
		for uid, at := range sel.shownAt {
			if at <= last {
				delete(sel.shownAt, uid)
			}
		}
	}
	if sel.gone {
		s.log.Info("imap: selected mailbox was deleted, renamed or renumbered, disconnecting", "mailbox", sel.name)
		s.c.bye("Selected mailbox was deleted, renamed or renumbered, have to disconnect")
		return errConnClosed
	}
	s.updateLive(dedupUIDs(touched), expunged)
	if (existsSent || claimed) && !s.rev2 {
		if n := sel.recentCount(); n != sel.recentShown {
			sel.recentShown = n
			s.c.out.writeString("* " + itoa(n) + " RECENT\r\n")
		}
	}
	if n := s.notify; n != nil && n.spec.fetch != nil && len(fresh) > 0 {
		return s.notifyFetch(fresh)
	}
	return nil
}

// claimRecent takes \Recent for messages that arrived while selected
// read-write (RFC 3501 §2.3.2: one session sees a message as recent).
// It reports whether it claimed any.
func (s *session) claimRecent(sel *selected) bool {
	uids, err := sel.mbox.ClaimRecent(s.ctx)
	if err != nil {
		return false // the Read that follows reports it
	}
	for _, u := range uids {
		sel.recent[u] = true
	}
	return len(uids) > 0
}

// announce sends "* FLAGS" if any of kws is new to the client: a keyword
// is defined before a FETCH shows it (RFC 3501 §7.2.6).
func (s *session) announce(kws []string) {
	sel := s.sel
	added := false
	for _, k := range kws {
		if !containsFold(sel.keywords, k) {
			sel.keywords = append(sel.keywords, k)
			added = true
		}
	}
	if !added {
		return
	}
	o := &s.c.out
	o.writeString("* FLAGS ")
	writeFlags(o, mailboxFlags(sel.keywords))
	o.crlf()
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

// seqOf is the client's sequence number of uid, 0 if it does not know it.
func (sel *selected) seqOf(uid uint32) int {
	i := sort.Search(len(sel.uids), func(i int) bool { return sel.uids[i] >= uid })
	if i < len(sel.uids) && sel.uids[i] == uid {
		return i + 1
	}
	return 0
}

func (sel *selected) recentCount() int {
	if len(sel.recent) == 0 {
		return 0
	}
	n := 0
	for u := range sel.recent {
		if sel.seqOf(u) > 0 {
			n++
		}
	}
	return n
}

// dedupUIDs drops repeated UIDs, keeping the first of each.
func dedupUIDs(u []uint32) []uint32 {
	if len(u) < 2 {
		return u
	}
	seen := make(map[uint32]bool, len(u))
	out := u[:0]
	for _, x := range u {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}
