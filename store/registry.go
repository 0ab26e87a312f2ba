package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// openBox returns the shared box of a folder, loading it on first use.
func (s *Store) openBox(ctx context.Context, root, name, path string) (*Mailbox, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, ErrClosed
	}
	b, ok := s.boxes[path]
	first := !ok
	if !ok {
		b = &box{s: s, w: s.watcher, name: name, root: root, path: path, kwCache: make(map[uint32][]string)}
		b.cache = newCache(b)
		s.boxes[path] = b
	}
	b.refs++
	if b.linger != nil {
		b.linger.Stop()
		b.linger = nil
	}
	s.mu.Unlock()

	err := b.refresh(ctx)
	if first && err == nil {
		b.startWatching()
	}
	if err != nil {
		s.release(b)
		return nil, err
	}
	return &Mailbox{b: b}, nil
}

// release drops one reference to a box. The last one lets it linger for
// Options.Linger before it is freed: a client that polls with STATUS and
// then SELECTs, or a delivery followed by a login, finds the index (and
// the \Recent marks, which live only here) still in memory.
func (s *Store) release(b *box) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b.refs--
	if b.refs > 0 {
		return
	}
	if s.opts.Linger > 0 && !s.closed && s.boxes[b.path] == b {
		b.linger = time.AfterFunc(s.opts.Linger, func() { s.drop(b) })
		return
	}
	s.dropLocked(b)
}

// drop frees a box whose linger time is over, unless it was opened again.
func (s *Store) drop(b *box) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if b.refs == 0 {
		s.dropLocked(b)
	}
}

func (s *Store) dropLocked(b *box) {
	if s.boxes[b.path] == b {
		delete(s.boxes, b.path)
	}
	free := func() {
		b.cache.close()
		b.mu.Lock()
		b.dropLockTemplate()
		if b.lazy != nil {
			// Nobody can read it any more: unloaded, not decoded.
			b.lazy.drop()
			b.lazy, b.loaded = nil, false
		}
		b.mu.Unlock()
	}
	if s.closed {
		// Close may be waiting for bg already: an Add now would race
		// its Wait (a session let go of its last mailbox during a
		// shutdown). Close has closed the box's cache and lock file
		// already; what is left is memory, so nobody needs to wait.
		go free()
	} else {
		// Write what waits, not under s.mu.
		s.bg.Add(1)
		go func() {
			defer s.bg.Done()
			free()
		}()
	}
	if s.watcher != nil {
		s.watcher.remove(b)
	}
	s.poller.remove(b)
}

// forget detaches a box from its path after the folder was deleted or
// renamed, so the next open of that name loads afresh.
func (s *Store) forget(path string) {
	s.mu.Lock()
	b, ok := s.boxes[path]
	if ok {
		delete(s.boxes, path)
		if s.watcher != nil {
			s.watcher.remove(b)
		}
	}
	s.mu.Unlock()
	if ok {
		b.mu.Lock()
		b.vanish()
		b.mu.Unlock()
		b.cache.close()
	}
}

// notify marks open boxes under a path as changed, for this process's own
// writes that bypass a box (Deliver).
func (s *Store) notify(path string) {
	s.mu.Lock()
	b, w := s.boxes[path], s.watcher
	s.mu.Unlock()
	if b != nil {
		b.dirtyNew.Store(true)
		if w != nil {
			w.kick(b)
		} else {
			s.poller.kick(b)
		}
	}
}

// addBackground counts one more background task for Close to wait for,
// unless the store is closed: an Add once Close's Wait may have begun
// would race it (a delivery or a session ending during a shutdown).
func (s *Store) addBackground() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.bg.Add(1)
	return true
}

// allocUIDValidity hands out a UIDVALIDITY for a new folder. Like Dovecot it
// is the current time, and above the last one given in this Maildir
// (dovecot-uidvalidity holds it in hex), so a folder deleted and created
// again in the same second still gets a new one.
func (s *Store) allocUIDValidity(root string) (uint32, error) {
	p := filepath.Join(root, "dovecot-uidvalidity")
	lock, err := acquireDotlock(context.Background(), p+".lock", s.opts.LockTimeout, s.opts.FileMode)
	if err != nil {
		return 0, err
	}
	defer lock.release()
	v := uint32(s.opts.Now().Unix())
	if data, err := os.ReadFile(p); err == nil {
		if last, err := strconv.ParseUint(strings.TrimSpace(string(data)), 16, 32); err == nil && uint32(last) >= v {
			v = uint32(last) + 1
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("store: read dovecot-uidvalidity: %w", err)
	}
	if err := writeFileAtomic(p, []byte(fmt.Sprintf("%08x", v)), s.opts.FileMode); err != nil {
		return 0, err
	}
	return v, nil
}

func fileIDOf(fi os.FileInfo) fileID {
	id := fileID{mtime: fi.ModTime().UnixNano(), size: fi.Size(), ok: true}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		id.ino = st.Ino
		id.ctime = st.Ctim.Nano()
	}
	return id
}
