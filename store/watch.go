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

// watcher turns inotify events on open folders into syncs, so that
// sessions waiting in IDLE hear of a delivery or of another process's
// change within moments even when nobody reads the folder. It watches cur/
// and new/ (deliveries, other programs' renames) and the folder directory
// itself for writes to letterbox-log (other Letterbox processes on this
// host). Events are not interpreted beyond which of the three they touch:
// they mark it dirty and schedule one sync shortly after. Bursts collapse
// into one sync, and events for our own renames and removals (box.expect)
// are dropped: the index already has them. inotify sees only this host's
// changes; the poller covers the others.

const syncDelay = 20 * time.Millisecond

type watcher struct {
	s   *Store
	w   *fsnotify.Watcher
	log *slog.Logger

	mu      sync.Mutex
	dirs    map[string]*box // cur/, new/ or the folder directory → folder
	pending map[*box]bool
	done    chan struct{}
}

func newWatcher(s *Store) (*watcher, error) {
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	w := &watcher{s: s, w: fw, log: s.log, dirs: make(map[string]*box), pending: make(map[*box]bool), done: make(chan struct{})}
	go w.run()
	return w, nil
}

// startWatching adds the inotify watches of a folder just loaded.
//
// Watching a directory costs the kernel a walk over every entry of it it
// has cached, holding the directory's lock: some 5 to 10 ms of a core for
// a cur/ of 100,000 files here, during which every stat through it waits.
// So the watches are added after the first load, on their own goroutine,
// and nobody waits for them: a change that falls before they are in is
// caught by the sync kick schedules then; reads check the stamps anyway,
// and until then b.watched is false, so a recently changed cur/ is not
// trusted (racy, sync.go).
func (b *box) startWatching() {
	w := b.w
	if w == nil {
		return
	}
	if !b.s.addBackground() {
		return
	}
	go func() {
		defer b.s.bg.Done()
		if h := b.s.hooks.watchAdd; h != nil {
			h(b)
		}
		if w.add(b) {
			w.kick(b)
		}
	}()
}

func watchedDirs(b *box) []string {
	return []string{filepath.Join(b.path, "cur"), filepath.Join(b.path, "new"), b.path}
}

// add watches b's directories and reports whether they are b's when done.
// The system calls happen outside w.mu, so events of other folders are
// not held up meanwhile. A remove while they run takes b's claim away;
// the watches are then taken away again here, unless another box claimed
// the directory since.
func (w *watcher) add(b *box) bool {
	dirs := watchedDirs(b)
	w.mu.Lock()
	for _, dir := range dirs {
		w.dirs[dir] = b
	}
	w.mu.Unlock()
	for _, dir := range dirs {
		if err := w.w.Add(dir); err != nil && !errors.Is(err, fsnotify.ErrClosed) {
			// Out of inotify watches, or not there yet: the stamp
			// check before reads and the poller still see changes.
			w.log.Debug("store: cannot watch", "dir", dir, "err", err)
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	ours := true
	for _, dir := range dirs {
		switch w.dirs[dir] {
		case b:
		case nil:
			ours = false
			_ = w.w.Remove(dir)
		default:
			ours = false
		}
	}
	if ours {
		b.watched.Store(true)
	}
	return ours
}

// remove takes b's watches away (nothing if it has none).
func (w *watcher) remove(b *box) {
	w.mu.Lock()
	defer w.mu.Unlock()
	b.watched.Store(false)
	for _, dir := range watchedDirs(b) {
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
			dir, file := filepath.Split(ev.Name)
			dir = filepath.Clean(dir)
			w.mu.Lock()
			b := w.dirs[dir]
			w.mu.Unlock()
			if b == nil || b.expected(ev.Name) {
				continue
			}
			switch {
			case dir == b.path:
				if file != logName {
					continue
				}
				b.dirtyLog.Store(true)
			case filepath.Base(dir) == "new":
				b.dirtyNew.Store(true)
			default:
				b.dirtyCur.Store(true)
			}
			w.kick(b)
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
				b.dirtyCur.Store(true)
				b.dirtyNew.Store(true)
				b.dirtyLog.Store(true)
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
	if !w.s.addBackground() {
		return
	}
	time.AfterFunc(syncDelay, func() {
		defer w.s.bg.Done()
		w.mu.Lock()
		delete(w.pending, b)
		w.mu.Unlock()
		w.s.backgroundSync(b)
	})
}

// backgroundSync syncs a folder nobody is reading at the moment, so that
// its watchers hear of the change.
func (s *Store) backgroundSync(b *box) {
	if s.isClosed() || !b.needsSync() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b.mu.Lock()
	err := b.sync(ctx)
	b.mu.Unlock()
	if err != nil && !errors.Is(err, ErrNotFound) {
		s.log.Warn("store: background sync", "mailbox", b.name, "err", err)
	}
}

// poller checks the folders someone waits on every interval, for changes
// made through another host's mount of a shared file system, which no
// inotify event reports: three stats per folder (log, cur/, new/).
type poller struct {
	s        *Store
	interval time.Duration

	mu    sync.Mutex
	boxes map[*box]struct{}
	stop  chan struct{}
	done  chan struct{}
}

func newPoller(s *Store, interval time.Duration) *poller {
	return &poller{s: s, interval: interval, boxes: make(map[*box]struct{})}
}

func (p *poller) add(b *box) {
	if p.interval <= 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.boxes[b] = struct{}{}
	if p.stop == nil {
		p.stop, p.done = make(chan struct{}), make(chan struct{})
		go p.run(p.stop, p.done)
	}
}

func (p *poller) remove(b *box) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.boxes, b)
}

// kick syncs b soon, for a change of this process that bypassed it.
func (p *poller) kick(b *box) {
	if !p.s.addBackground() {
		return
	}
	go func() {
		defer p.s.bg.Done()
		p.s.backgroundSync(b)
	}()
}

func (p *poller) close() {
	p.mu.Lock()
	stop, done := p.stop, p.done
	p.stop = nil
	p.mu.Unlock()
	if stop != nil {
		close(stop)
		<-done
	}
}

func (p *poller) run(stop, done chan struct{}) {
	defer close(done)
	t := time.NewTicker(p.interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		p.mu.Lock()
		boxes := make([]*box, 0, len(p.boxes))
		for b := range p.boxes {
			boxes = append(boxes, b)
		}
		p.mu.Unlock()
		for _, b := range boxes {
			p.s.backgroundSync(b)
		}
	}
}
