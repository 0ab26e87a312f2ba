package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"
)

// The cache, letterbox-cache, one per folder: what is costly to work out
// of a message and never changes (message files are immutable): its
// internal date, and whatever a protocol package asks to keep (IMAP keeps
// header fields, the parsed structure, SORT keys). It is filled on first
// use, shared by every process (records are appended under an fcntl lock
// on the file, and each process reads what others appended), bounded by
// what is on disk (a rewrite drops the records of expunged messages and
// older records of the same message), and can be deleted at any time:
// it is rebuilt as messages are looked at again.
//
//	header  "LBXCACHE" | uidvalidity u32 | 0 u32 | id u64   (24 bytes)
//	record  body length u32 | CRC-32C of body u32 | uid u32 | n u8 | (key u8, length uvarint, bytes)…
//
// A message's latest record holds all its items; a new one replaces it.

const (
	cacheName       = "letterbox-cache"
	cacheMagic      = "LBXCACHE"
	cacheHeaderSize = 24
	// cacheFlushSize is how much a process buffers before appending.
	cacheFlushSize = 64 << 10
	// cacheFlushDelay bounds how long an item waits in memory.
	cacheFlushDelay = time.Second
)

// CacheKey names one item cached for a message. Keys below 16 are the
// store's own; protocol packages choose theirs from 16 up.
type CacheKey uint8

// cacheDate is the store's own item: the internal date, Unix ns, varint.
const cacheDate CacheKey = 1

// CacheItem is one cached item of a message.
type CacheItem struct {
	Key   CacheKey
	Value []byte
}

// cache is the process's handle on a folder's cache file.
type cache struct {
	b *box

	mu       sync.Mutex
	f        *os.File
	id       uint64
	ino      uint64
	readOff  int64             // end of the records indexed
	off      map[uint32]int64  // uid → offset of its latest record
	pending  map[uint32][]byte // records not yet appended, by uid
	pendSize int
	timer    *time.Timer
	checked  time.Time // when the file was last looked at
	dead     int64     // bytes of records superseded
	// win is a window of the file read ahead: records are mostly read in
	// UID order, which is the order they were written in, so a FETCH of
	// many messages reads the file in large pieces, not one per message.
	win     []byte
	winOff  int64
	winHits int // records served from the current window
}

func newCache(b *box) *cache { return &cache{b: b, off: make(map[uint32]int64)} }

func (b *box) cachePath() string { return filepath.Join(b.path, cacheName) }

// CachedItems returns the cached items of a message (nil if none).
func (m *Mailbox) CachedItems(uid uint32) []CacheItem {
	rec := m.b.cache.get(uid)
	if rec == nil {
		return nil
	}
	items, _ := decodeCacheItems(rec)
	return items
}

// Cached returns one cached item of a message.
func (m *Mailbox) Cached(uid uint32, key CacheKey) ([]byte, bool) {
	for _, it := range m.CachedItems(uid) {
		if it.Key == key {
			return it.Value, true
		}
	}
	return nil, false
}

// Cache keeps items of a message, merged with what is cached already (an
// item with the same key is replaced). Values must not change afterwards.
// The items reach the file within a second, or sooner when many wait.
func (m *Mailbox) Cache(uid uint32, items ...CacheItem) {
	m.b.cache.put(uid, items)
}

// get returns the latest record body of uid: pending, or read from the file.
func (c *cache) get(uid uint32) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	if rec, ok := c.pending[uid]; ok {
		return rec
	}
	if err := c.openLocked(); err != nil {
		return nil
	}
	off, ok := c.off[uid]
	if !ok && time.Since(c.checked) > cacheFlushDelay {
		// Another process may have cached it since we last looked.
		c.followLocked()
		off, ok = c.off[uid]
	}
	if !ok {
		return nil
	}
	rec, err := c.readRecord(off)
	if err != nil || binary.LittleEndian.Uint32(rec) != uid {
		delete(c.off, uid)
		return nil
	}
	return rec
}

func (c *cache) put(uid uint32, items []CacheItem) {
	old := c.get(uid)
	var merged []CacheItem
	if old != nil {
		merged, _ = decodeCacheItems(old)
	}
	for _, it := range items {
		replaced := false
		for i := range merged {
			if merged[i].Key == it.Key {
				merged[i] = it
				replaced = true
			}
		}
		if !replaced {
			merged = append(merged, it)
		}
	}
	body := encodeCacheRecord(uid, merged)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pending == nil {
		c.pending = make(map[uint32][]byte)
	}
	c.pendSize += len(body) + recHeaderSize - len(c.pending[uid])
	c.pending[uid] = body
	if c.pendSize >= cacheFlushSize {
		c.flushLocked()
	} else if c.timer == nil {
		c.timer = time.AfterFunc(cacheFlushDelay, c.flush)
	}
}

func (c *cache) flush() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.flushLocked()
}

// flushLocked appends the pending records under an fcntl lock on the file,
// after reading what others appended (the records' offsets must be known).
func (c *cache) flushLocked() {
	if c.timer != nil {
		c.timer.Stop()
		c.timer = nil
	}
	if len(c.pending) == 0 {
		return
	}
	defer func() { c.pending, c.pendSize = nil, 0 }()
	if err := c.openLocked(); err != nil {
		return
	}
	fd := int(c.f.Fd())
	lk := syscall.Flock_t{Type: syscall.F_WRLCK, Whence: io.SeekStart}
	if err := fcntlLock(fd, &lk); err != nil {
		return
	}
	defer func() {
		lk.Type = syscall.F_UNLCK
		_ = fcntlLock(fd, &lk)
	}()
	c.followLocked()
	var buf []byte
	starts := make(map[uint32]int64, len(c.pending))
	for uid, body := range c.pending {
		starts[uid] = c.readOff + int64(len(buf))
		buf = appendRecord(buf, body)
	}
	if _, err := c.f.WriteAt(buf, c.readOff); err != nil {
		c.b.s.log.Debug("store: cannot write letterbox-cache", "mailbox", c.b.name, "err", err)
		_ = c.f.Truncate(c.readOff)
		return
	}
	for uid, off := range starts {
		if _, ok := c.off[uid]; ok {
			c.dead += int64(len(c.pending[uid]))
		}
		c.off[uid] = off
	}
	c.readOff += int64(len(buf))
	if c.readOff > 1<<20 && c.dead*2 > c.readOff {
		c.compactLocked()
	}
}

// compactLocked rewrites the cache with the latest record of each message
// still in the folder. The fcntl lock is held.
func (c *cache) compactLocked() {
	live := c.b.liveUIDs()
	h := make([]byte, cacheHeaderSize)
	copy(h, cacheMagic)
	binary.LittleEndian.PutUint32(h[8:], c.b.validity())
	binary.LittleEndian.PutUint64(h[16:], randomID())
	buf := h
	// In UID order: that is the order messages are read in (a FETCH of a
	// range), which the read-ahead window counts on.
	uids := make([]uint32, 0, len(c.off))
	for uid := range c.off {
		if live[uid] {
			uids = append(uids, uid)
		}
	}
	slices.Sort(uids)
	for _, uid := range uids {
		body, err := c.readRecord(c.off[uid])
		if err != nil {
			continue
		}
		buf = appendRecord(buf, body)
	}
	if err := replaceFile(c.b.cachePath(), buf, c.b.s.opts.FileMode); err != nil {
		return
	}
	c.closeLocked()
	c.checked = time.Time{}
}

// openLocked opens the cache file (creating it) if it is not open, or if
// the file at its name is not the one open (deleted, rewritten).
func (c *cache) openLocked() error {
	p := c.b.cachePath()
	if c.f != nil {
		if time.Since(c.checked) < cacheFlushDelay {
			return nil
		}
		var st syscall.Stat_t
		if syscall.Stat(p, &st) == nil && st.Ino == c.ino {
			c.checked = time.Now()
			return nil
		}
		c.closeLocked()
	}
	f, err := openFile(p, os.O_RDWR, 0)
	if isNotExist(err) {
		f, err = c.create(p)
	}
	if err != nil {
		return err
	}
	var hb [cacheHeaderSize]byte
	if _, err := f.ReadAt(hb[:], 0); err != nil || string(hb[:8]) != cacheMagic || binary.LittleEndian.Uint32(hb[8:]) != c.b.validity() {
		// Another UIDVALIDITY, or not ours: start over.
		f.Close()
		os.Remove(p)
		if f, err = c.create(p); err != nil {
			return err
		}
		f.ReadAt(hb[:], 0)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	c.f, c.ino = f, fileIDOf(fi).ino
	c.id = binary.LittleEndian.Uint64(hb[16:])
	c.off = make(map[uint32]int64)
	c.readOff, c.dead = cacheHeaderSize, 0
	c.followLocked()
	return nil
}

// create makes a new cache file with its header, atomically (another
// process may be creating it at the same moment: whoever comes second
// opens the first one's).
func (c *cache) create(p string) (*os.File, error) {
	h := make([]byte, cacheHeaderSize)
	copy(h, cacheMagic)
	binary.LittleEndian.PutUint32(h[8:], c.b.validity())
	binary.LittleEndian.PutUint64(h[16:], randomID())
	tmp := p + ".tmp" + randomSuffix()
	if err := os.WriteFile(tmp, h, c.b.s.opts.FileMode); err != nil {
		os.Remove(tmp)
		return nil, err
	}
	err := os.Link(tmp, p)
	os.Remove(tmp)
	if err != nil && !errors.Is(err, os.ErrExist) {
		return nil, err
	}
	return openFile(p, os.O_RDWR, 0)
}

// followLocked indexes the records appended since readOff, reading the
// file in chunks: a cache can be a good part of a gigabyte, and only the
// record headers and UIDs are wanted here.
func (c *cache) followLocked() {
	c.checked = time.Now()
	fi, err := c.f.Stat()
	if err != nil || fi.Size() <= c.readOff {
		return
	}
	end := fi.Size()
	buf := make([]byte, min(1<<20, end-c.readOff))
	for c.readOff < end {
		n, err := c.f.ReadAt(buf, c.readOff)
		if n == 0 || err != nil && !errors.Is(err, io.EOF) {
			return
		}
		chunk := buf[:n]
		off := 0
		for off < len(chunk) {
			body, rn, ok, bad := nextRecord(chunk[off:])
			if bad || ok && len(body) < 5 {
				// Damaged: the next writer appends after it;
				// readers skip it.
				c.readOff += int64(off)
				return
			}
			if !ok {
				break // runs past the chunk, or half written
			}
			uid := binary.LittleEndian.Uint32(body)
			pos := c.readOff + int64(off)
			if old, ok := c.off[uid]; ok && old != pos {
				c.dead += int64(rn)
			}
			c.off[uid] = pos
			off += rn
		}
		c.readOff += int64(off)
		if off == 0 {
			// One record bigger than the buffer, or the end of what
			// is written so far.
			if l := recordLen(chunk); l > len(buf) && int64(l) <= end-c.readOff {
				buf = make([]byte, l)
				continue
			}
			return
		}
	}
}

// recordLen is the whole length of the record at the start of b, 0 if b
// is too short to say.
func recordLen(b []byte) int {
	if len(b) < recHeaderSize {
		return 0
	}
	return recHeaderSize + int(binary.LittleEndian.Uint32(b))
}

// cacheWindow is how much of the file one read brings in.
const cacheWindow = 256 << 10

// readRecord returns the body of the record at off (a copy: the window
// moves on).
func (c *cache) readRecord(off int64) ([]byte, error) {
	if off < c.winOff || off+recHeaderSize > c.winOff+int64(len(c.win)) {
		if err := c.readWindow(off); err != nil {
			return nil, err
		}
	} else {
		c.winHits++
	}
	w := c.win[off-c.winOff:]
	l := int(binary.LittleEndian.Uint32(w))
	if l < 5 || l > 1<<24 {
		return nil, errBadLog
	}
	if recHeaderSize+l > len(w) {
		if l+recHeaderSize > cacheWindow {
			return c.readLarge(off, l)
		}
		if err := c.readWindow(off); err != nil {
			return nil, err
		}
		if w = c.win; recHeaderSize+l > len(w) {
			return nil, io.ErrUnexpectedEOF
		}
	}
	body, ok := recordBody(w, l)
	if !ok {
		return nil, errBadLog
	}
	return bytes.Clone(body), nil
}

func (c *cache) readWindow(off int64) error {
	if c.win == nil {
		c.win = make([]byte, cacheWindow)
	}
	// Reading on from where the window ended is reading in file order:
	// read ahead. A jump elsewhere may be random access: read little.
	sequential := c.win != nil && off >= c.winOff && off <= c.winOff+int64(len(c.win))+4096
	c.win = c.win[:cap(c.win)]
	if !sequential && c.winHits < 4 {
		c.win = c.win[:8192]
	}
	c.winHits = 0
	n, err := c.f.ReadAt(c.win, off)
	c.win, c.winOff = c.win[:n], off
	if n < recHeaderSize {
		if err == nil || errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	return nil
}

// readLarge reads a record too big for the window.
func (c *cache) readLarge(off int64, l int) ([]byte, error) {
	buf := make([]byte, recHeaderSize+l)
	if _, err := c.f.ReadAt(buf, off); err != nil {
		return nil, err
	}
	body, ok := recordBody(buf, l)
	if !ok {
		return nil, errBadLog
	}
	return body, nil
}

func (c *cache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.flushLocked()
	c.closeLocked()
}

func (c *cache) closeLocked() {
	c.win, c.winOff = nil, 0
	if c.f != nil {
		c.f.Close()
		c.f = nil
	}
	c.off = make(map[uint32]int64)
}

func fcntlLock(fd int, lk *syscall.Flock_t) error {
	for {
		err := syscall.FcntlFlock(uintptr(fd), syscall.F_SETLKW, lk)
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}

func encodeCacheRecord(uid uint32, items []CacheItem) []byte {
	n := 5
	for _, it := range items {
		n += 1 + binary.MaxVarintLen32 + len(it.Value)
	}
	b := make([]byte, 0, n)
	b = binary.LittleEndian.AppendUint32(b, uid)
	b = append(b, byte(len(items)))
	for _, it := range items {
		b = append(b, byte(it.Key))
		b = binary.AppendUvarint(b, uint64(len(it.Value)))
		b = append(b, it.Value...)
	}
	return b
}

func decodeCacheItems(rec []byte) ([]CacheItem, error) {
	if len(rec) < 5 {
		return nil, errBadLog
	}
	n := int(rec[4])
	p := rec[5:]
	items := make([]CacheItem, 0, n)
	for i := 0; i < n; i++ {
		if len(p) < 2 {
			return nil, errBadLog
		}
		key := CacheKey(p[0])
		l, k := binary.Uvarint(p[1:])
		if k <= 0 || uint64(len(p)-1-k) < l {
			return nil, errBadLog
		}
		items = append(items, CacheItem{Key: key, Value: p[1+k : 1+k+int(l)]})
		p = p[1+k+int(l):]
	}
	return items, nil
}

// liveUIDs are the UIDs in the index.
func (b *box) liveUIDs() map[uint32]bool {
	b.rlock()
	defer b.mu.RUnlock()
	out := make(map[uint32]bool, len(b.msgs))
	for i := range b.msgs {
		out[b.msgs[i].uid] = true
	}
	return out
}

// validity is the folder's UIDVALIDITY, which the cache is bound to.
func (b *box) validity() uint32 {
	b.rlock()
	defer b.mu.RUnlock()
	return b.uidValidity
}
