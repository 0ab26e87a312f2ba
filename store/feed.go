package store

import "context"

// The change feed: watchers of a folder hear of every change, in order,
// from whichever goroutine made it (or found it made by another process).

// Watch registers fn for the change feed and returns the number of messages
// at that moment: the state the first change applies to. fn is called in
// order, synchronously with the change and with the mailbox locked, so it
// must only queue the change. cancel unregisters fn.
func (m *Mailbox) Watch(fn func(Change)) (n int, cancel func()) {
	m.b.mu.Lock()
	defer m.b.mu.Unlock()
	return m.watchLocked(fn)
}

func (m *Mailbox) watchLocked(fn func(Change)) (n int, cancel func()) {
	b := m.b
	b.nextWatch++
	id := b.nextWatch
	if b.watchAt == nil {
		b.watchAt = make(map[int]int)
	}
	b.watchAt[id] = len(b.watchers)
	b.watchers = append(b.watchers, watcherFunc{id: id, fn: fn})
	b.s.poller.add(b)
	return b.count(), func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		b.unwatch(id)
		if len(b.watchers) == 0 {
			b.s.poller.remove(b)
		}
	}
}

// unwatch removes a watcher in constant time: the last one takes its
// place (the order watchers hear of a change in is no promise), so ten
// thousand IDLE sessions leaving at once cost no quadratic copying under
// the mailbox's lock. b.mu is held for writing.
func (b *box) unwatch(id int) {
	i, ok := b.watchAt[id]
	if !ok {
		return
	}
	last := len(b.watchers) - 1
	if i != last {
		b.watchers[i] = b.watchers[last]
		b.watchAt[b.watchers[i].id] = i
	}
	b.watchers[last] = watcherFunc{}
	b.watchers = b.watchers[:last]
	delete(b.watchAt, id)
}

// Subscribe is Watch with the state the feed starts from: it brings the
// index up to date, then registers fn and calls view with the index as it
// is when fn is registered, both under the mailbox's lock, so the view and
// the first change fn gets fit together exactly (an IMAP SELECT answers
// from the view and then reports changes from the feed). view must not
// block.
func (m *Mailbox) Subscribe(ctx context.Context, fn func(Change), view func(v *View)) (cancel func(), err error) {
	b := m.b
	if err := b.refresh(ctx); err != nil {
		return nil, err
	}
	b.mu.Lock()
	if b.gone {
		b.mu.Unlock()
		return nil, ErrNotFound
	}
	_, cancel = m.watchLocked(fn)
	view(&View{b: b, write: true})
	b.mu.Unlock()
	return cancel, nil
}

// emit delivers a change to every watcher. b.mu is held for writing.
func (b *box) emit(c Change) {
	for _, w := range b.watchers {
		w.fn(c)
	}
}
