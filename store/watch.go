package store

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
)

// watcher turns inotify events on open folders' cur/ and new/ into syncs,
// so that sessions waiting in IDLE hear of a delivery within moments even
// when nobody reads the folder. Events are not interpreted: any event marks
// the folder dirty and schedules one sync shortly after, which compares the
// directory with the index. Bursts collapse into one sync, and events for
// our own renames and removals (box.expect) are dropped: the index already
// has them.

const syncDelay = 50 * time.Millisecond

type watcher struct {
	w   *fsnotify.Watcher
	log *slog.Logger

	mu      sync.Mutex
	dirs    map[string]*box // cur/ or new/ directory → folder
	pending map[*box]bool
	done    chan struct{}
}

func newWatcher(log *slog.Logger) (*watcher, error) {
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	w := &watcher{w: fw, log: log, dirs: make(map[string]*box), pending: make(map[*box]bool), done: make(chan struct{})}
	go w.run()
	return w, nil
}

func (w *watcher) add(b *box) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, sub := range []string{"cur", "new"} {
		dir := filepath.Join(b.path, sub)
		w.dirs[dir] = b
		if err := w.w.Add(dir); err != nil && !errors.Is(err, fsnotify.ErrClosed) {
			// Out of inotify watches, or not there yet: the mtime
			// check before reads still sees changes.
			w.log.Debug("store: cannot watch", "dir", dir, "err", err)
		}
	}
}

func (w *watcher) remove(b *box) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, sub := range []string{"cur", "new"} {
		dir := filepath.Join(b.path, sub)
		if w.dirs[dir] == b {
			delete(w.dirs, dir)
			_ = w.w.Remove(dir)
		}
	}
	delete(w.pending, b)
}

func (w *watcher) close() error {
	err := w.w.Close()
	<-w.done
	return err
}

func (w *watcher) run() {
	defer close(w.done)
	for {
		select {
		case ev, ok := <-w.w.Events:
			if !ok {
				return
			}
			w.mu.Lock()
			b := w.dirs[filepath.Dir(ev.Name)]
			w.mu.Unlock()
			if b != nil && !b.expected(ev.Name) {
				b.dirty.Store(true)
				w.kick(b)
			}
		case err, ok := <-w.w.Errors:
			if !ok {
				return
			}
			// An overflow loses events: sync everything we watch.
			w.log.Warn("store: inotify", "err", err)
			w.mu.Lock()
			var all []*box
			for _, b := range w.dirs {
				all = append(all, b)
			}
			w.mu.Unlock()
			for _, b := range all {
				b.dirty.Store(true)
				w.kick(b)
			}
		}
	}
}

// kick schedules a sync of b unless one is already scheduled.
func (w *watcher) kick(b *box) {
	w.mu.Lock()
	if w.pending[b] {
		w.mu.Unlock()
		return
	}
	w.pending[b] = true
	w.mu.Unlock()
	time.AfterFunc(syncDelay, func() {
		w.mu.Lock()
		delete(w.pending, b)
		w.mu.Unlock()
		if !b.dirty.Load() {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		b.mu.Lock()
		err := b.sync(ctx)
		b.mu.Unlock()
		if err != nil && !errors.Is(err, ErrNotFound) {
			w.log.Warn("store: background sync", "mailbox", b.name, "err", err)
		}
	})
}
