package imap

import (
	"errors"
	"strings"
	"sync"

	"github.com/emersion/go-imap/v2"

	"github.com/letterbox-mail/letterbox/store"
)

// What an active NOTIFY holds, and the passes that send its
// notifications: after every command, when a feed wakes the session
// while it waits for the next one, and in IDLE.

// maxNotifyMailboxes bounds the mailboxes one session watches; beyond it
// NOTIFY fails, or stops, with NOTIFICATIONOVERFLOW (§3.1, §6).
const maxNotifyMailboxes = 1000

var errNotifyOverflow = no("NOTIFICATIONOVERFLOW", "Too many mailboxes to watch")

type notifyState struct {
	spec    *notifySpec
	folders *store.FolderWatch // nil without groups for other mailboxes
	boxes   map[string]*notifyBox
	order   []string // the names of boxes, in LIST order
}

// notifyBox is a watched mailbox other than the selected one.
type notifyBox struct {
	mbox   *store.Mailbox
	cancel func()
	events notifyEvents // what its groups ask for

	mu  sync.Mutex
	got notifyEvents // what happened since the last pass
}

func (b *notifyBox) close() {
	b.cancel()
	b.mbox.Close()
}

func (b *notifyBox) take() notifyEvents {
	b.mu.Lock()
	defer b.mu.Unlock()
	g := b.got
	b.got = 0
	return g
}

// feed is the box's change-feed callback: it runs under the mailbox's
// lock in whichever goroutine made the change, so it only notes it.
func (b *notifyBox) feed(wake func()) func(store.Change) {
	return func(c store.Change) {
		var ev notifyEvents
		switch c.Kind {
		case store.Appended:
			ev = evMessageNew
		case store.Expunged:
			ev = evMessageExpunge
		case store.FlagsChanged:
			ev = evFlagChange
		case store.Invalidated:
			ev = evMessageNew | evMessageExpunge
		}
		b.mu.Lock()
		ev &= b.events
		b.got |= ev
		b.mu.Unlock()
		if ev != 0 {
			wake()
		}
	}
}

// notifyWake is the feeds' callback: note that there is something to
// send, and end the wait for the next command (or for DONE) if the
// connection can be woken.
func (s *session) notifyWake() {
	s.notifyPending.Store(true)
	if f := s.waker.Load(); f != nil {
		(*f)()
	}
}

// selectedWake is what the selected mailbox's queue calls outside IDLE.
func (s *session) selectedWake() func() {
	if s.notify != nil && s.notify.spec.selected != 0 {
		return s.notifyWake
	}
	return nil
}

func (s *session) startNotify(spec *notifySpec) error {
	n := &notifyState{spec: spec, boxes: make(map[string]*notifyBox)}
	s.notify = n
	if len(spec.groups) > 0 {
		fw, err := s.user.WatchFolders(s.notifyWake)
		if err != nil {
			s.stopNotify()
			return err
		}
		n.folders = fw
	}
	if n.watchesMessages() {
		entries, _, err := s.listEntries()
		if err == nil {
			err = s.rewatch(entries, false)
		}
		if err != nil {
			s.stopNotify()
			return err
		}
	}
	if s.sel != nil {
		s.sel.q.setWake(s.selectedWake())
	}
	if spec.status {
		items := &imap.StatusOptions{NumMessages: true, UIDNext: true, UIDValidity: true, NumUnseen: true, HighestModSeq: s.condstore}
		for _, name := range n.order {
			if s.sel != nil && s.sel.name == name {
				continue
			}
			if st, err := n.boxes[name].mbox.Counts(s.ctx); err == nil {
				s.writeStatus(name, items, st)
			}
		}
	}
	return nil
}

// stopNotify ends NOTIFY: NOTIFY NONE, a new NOTIFY SET, UNAUTHENTICATE,
// the end of the session, an overflow.
func (s *session) stopNotify() {
	n := s.notify
	if n == nil {
		return
	}
	s.notify = nil
	if n.folders != nil {
		n.folders.Close()
	}
	for _, b := range n.boxes {
		b.close()
	}
	if s.sel != nil {
		s.sel.q.setWake(nil)
	}
	s.notifyPending.Store(false)
}

// watchesMessages reports whether a group asks for message events, so
// that mailboxes are watched at all.
func (n *notifyState) watchesMessages() bool {
	for _, g := range n.spec.groups {
		if g.events&evMessages != 0 {
			return true
		}
	}
	return false
}

// rewatch brings the set of watched mailboxes in line with the folders
// and subscriptions (entries, as listEntries gives them): the groups'
// filters name folders, and folders come and go. A mailbox that comes
// into view later (created, renamed, subscribed) gets a STATUS at the next
// pass: whatever it holds is news.
func (s *session) rewatch(entries []listEntry, later bool) error {
	n := s.notify
	subscribed := make(map[string]bool)
	for _, e := range entries {
		subscribed[e.name] = e.subscribed
	}
	isSub := func(name string) bool { return subscribed[name] }
	want := make(map[string]notifyEvents)
	var order []string
	for _, e := range entries {
		if !e.exists {
			continue
		}
		for i := range n.spec.groups {
			if g := &n.spec.groups[i]; g.events&evMessages != 0 && g.matches(e.name, isSub) {
				want[e.name] |= g.events & evMessages
			}
		}
		if want[e.name] != 0 {
			order = append(order, e.name)
		}
	}
	if len(want) > maxNotifyMailboxes {
		return errNotifyOverflow
	}
	for name, b := range n.boxes {
		if ev, ok := want[name]; ok {
			b.mu.Lock()
			b.events = ev
			b.mu.Unlock()
			continue
		}
		b.close()
		delete(n.boxes, name)
	}
	for name, ev := range want {
		if n.boxes[name] != nil {
			continue
		}
		m, err := s.user.Open(s.ctx, name)
		if errors.Is(err, store.ErrNotFound) {
			continue // gone meanwhile: the folder feed says so next
		}
		if err != nil {
			return err
		}
		b := &notifyBox{mbox: m, events: ev}
		if later {
			b.got = ev & (evMessageNew | evMessageExpunge)
		}
		_, b.cancel = m.Watch(b.feed(s.notifyWake))
		n.boxes[name] = b
	}
	n.order = order[:0]
	for _, name := range order {
		if n.boxes[name] != nil {
			n.order = append(n.order, name)
		}
	}
	return nil
}

// notifyPass sends what the feeds brought. between: the session waits
// for a command (not in IDLE, which polls the selected mailbox itself),
// so the selected mailbox's changes go out here if NOTIFY asks for them.
func (s *session) notifyPass(between bool) error {
	s.notifyPending.Store(false)
	n := s.notify
	if n == nil {
		return nil
	}
	if n.folders != nil {
		ev, err := n.folders.Changes()
		if err != nil {
			s.log.Warn("imap: notify: folders", "err", err)
		} else if len(ev) > 0 {
			// One listing for both: the events' attributes and what
			// to watch now.
			entries, subs, err := s.listEntries()
			if err != nil {
				s.log.Warn("imap: notify: list", "err", err)
			}
			s.writeFolderEvents(ev, entries, subs)
			if n.watchesMessages() {
				if err == nil {
					err = s.rewatch(entries, true)
				}
				if err != nil {
					s.notifyOverflow(err)
					return nil
				}
			}
		}
	}
	if between && s.sel != nil && n.spec.selected != 0 {
		if err := s.poll(n.spec.immediate, true, n.spec.selected&evFlagChange == 0); err != nil {
			return err
		}
	}
	for _, name := range n.order {
		b := n.boxes[name]
		got := b.take()
		if got == 0 || s.sel != nil && s.sel.name == name {
			continue // the selected mailbox speaks for itself
		}
		items := &imap.StatusOptions{HighestModSeq: s.condstore}
		if got&(evMessageNew|evMessageExpunge) != 0 {
			items.NumMessages, items.UIDNext = true, true
		}
		items.NumUnseen = true
		st, err := b.mbox.Counts(s.ctx)
		if err != nil {
			continue // deleted meanwhile: the folder feed reports it
		}
		s.writeStatus(name, items, st)
	}
	return nil
}

// notifyOverflow turns NOTIFY off when it cannot go on (§5.8).
func (s *session) notifyOverflow(err error) {
	s.log.Warn("imap: notify stopped", "err", err)
	s.stopNotify()
	s.c.out.writeString("* OK [NOTIFICATIONOVERFLOW] Too many mailboxes to watch, NOTIFY is off\r\n")
}

// wants reports whether a group asks for ev about a mailbox of these
// names (a renamed one matches by either).
func (n *notifyState) wants(ev notifyEvents, subscribed func(string) bool, names ...string) bool {
	for i := range n.spec.groups {
		g := &n.spec.groups[i]
		if g.events&ev == 0 {
			continue
		}
		for _, name := range names {
			if name != "" && g.matches(name, subscribed) {
				return true
			}
		}
	}
	return false
}

// writeFolderEvents sends MailboxName and SubscriptionChange events as
// LIST responses (§5.4, §5.5): a new or renamed mailbox with its
// attributes (a renamed one with OLDNAME, RFC 5465 §5.4), a deleted one
// \NonExistent, a subscription with \Subscribed and its end without.
func (s *session) writeFolderEvents(ev []store.FolderEvent, entries []listEntry, subs []string) {
	byName := make(map[string]listEntry, len(entries))
	for _, e := range entries {
		byName[e.name] = e
	}
	isSub := make(map[string]bool, len(subs))
	for _, n := range subs {
		isSub[n] = true
	}
	o := &s.c.out
	for _, e := range ev {
		need := evMailboxName
		subscribed := func(name string) bool { return isSub[name] }
		if e.Kind == store.FolderSubscribed || e.Kind == store.FolderUnsubscribed {
			need = evSubscriptionChange
			// The name was subscribed on one side of the change.
			subscribed = func(name string) bool { return name == e.Name || isSub[name] }
		}
		if !s.notify.wants(need, subscribed, e.Name, e.OldName) {
			continue
		}
		attrs := listAttrs(byName[e.Name], false)
		switch e.Kind {
		case store.FolderDeleted:
			attrs = []string{`\NonExistent`}
		case store.FolderSubscribed:
			attrs = append(attrs, `\Subscribed`)
		}
		o.writeString("* LIST (" + strings.Join(attrs, " ") + `) "/" `)
		s.writeName(e.Name)
		if e.Kind == store.FolderRenamed {
			o.writeString(` ("OLDNAME" (`)
			s.writeName(e.OldName)
			o.writeString("))")
		}
		o.crlf()
	}
}

// notifyFetch sends MessageNew's fetch-att for messages just announced
// with EXISTS (§5.2). The attributes were made PEEK when decoded: a
// notification does not set \Seen.
func (s *session) notifyFetch(uids []uint32) error {
	targets := make([]target, 0, len(uids))
	for _, uid := range uids {
		if seq := s.sel.seqOf(uid); seq > 0 {
			targets = append(targets, target{seq, uid})
		}
	}
	err := s.fetchTargets(s.notify.spec.fetch, targets)
	var pe *protoError
	if errors.As(err, &pe) {
		return nil // expunged meanwhile: the EXPUNGE follows
	}
	return err
}
