package store

import (
	"context"
	"errors"
	"os"
	"runtime/debug"
	"slices"
	"syscall"
)

// The first load of a big folder is lazy. Decoding the whole log of a
// 100,000-message folder means some 13 MB of new memory, and on a VM the
// first touch of new memory is most of the cost (tens of milliseconds):
// a SELECT after a restart would wait for all of it. Yet SELECT needs only
// the UIDs, where the first unseen message is, the counters and the
// keywords. So the first load maps the log (the page cache's pages, no
// copy) and takes just that from it, keeping the file open; the whole
// index is decoded from the same bytes when an operation first needs it
// (materialize), and never for a session that only selects and IDLEs.
// This is what Dovecot gets from mapping its index. (Decoding at once on
// another goroutine was tried: its allocations and the garbage collector
// they start made the SELECT beside it 9 ms slower here.)
//
// b.lazy is set only by a folder's first load and cleared under b.mu for
// writing. b.rlock and b.lock never return with it set, so only code
// written for it sees a lazy index: Subscribe's and Peek's views, Watch,
// ClaimRecent's first look and the sync that decides whether anything
// changed.

// defaultLazyLoadMin is the number of messages from which a first load is
// lazy (Options.LazyLoadMin); below it the whole decode is quick anyway.
const defaultLazyLoadMin = 16384

// errNotLazy: the folder is loaded the ordinary way.
var errNotLazy = errors.New("store: folder too small for a lazy load")

// lazyIndex is a lazily loaded folder's index until the whole one is in.
type lazyIndex struct {
	uids []uint32 // ascending
	seen []bool   // FlagSeen of each

	// The log file as it was read, and how far: the whole index is
	// decoded from exactly these bytes, whatever happened to the file's
	// name since.
	f           *os.File
	limit       int64
	uidValidity uint32
}

// drop closes the log file of a lazy index that will never be decoded.
func (lz *lazyIndex) drop() {
	if lz != nil {
		lz.f.Close()
	}
}

func (lz *lazyIndex) last() uint32 {
	if len(lz.uids) == 0 {
		return 0
	}
	return lz.uids[len(lz.uids)-1]
}

func (lz *lazyIndex) find(uid uint32) int {
	i, ok := slices.BinarySearch(lz.uids, uid)
	if !ok {
		return -1
	}
	return i
}

// rlock takes b.mu for reading, with the whole index in.
func (b *box) rlock() {
	b.mu.RLock()
	for b.lazy != nil {
		b.mu.RUnlock()
		b.lock()
		b.mu.Unlock()
		b.mu.RLock()
	}
}

// lock takes b.mu for writing, with the whole index in.
func (b *box) lock() {
	b.mu.Lock()
	b.materialize()
}

// count is the number of messages. b.mu is held.
func (b *box) count() int {
	if b.lazy != nil {
		return len(b.lazy.uids)
	}
	return len(b.msgs)
}

// readLogLazy is the first load of a big folder: the log's counters,
// keywords and expunges, and of its messages only UIDs and \Seen. It
// returns the partial index, which keeps the file open for materialize.
func (b *box) readLogLazy(uidValidity uint32) (*box, error) {
	f, fi, err := b.openLog()
	if err != nil {
		return nil, err
	}
	size := fi.Size()
	// A message takes some 40 to 100 bytes of log (a file name and a
	// few numbers); below 24 a folder is surely smaller than LazyLoadMin.
	lazyMin := b.s.opts.LazyLoadMin
	if lazyMin < 0 || size < 24*int64(lazyMin) || int64(int(size)) != size {
		f.Close()
		return nil, errNotLazy
	}
	data, err := syscall.Mmap(int(f.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		f.Close()
		return nil, errNotLazy
	}
	var nb *box
	err = guardFault(func() error {
		nb, err = b.parseLogLight(data, uidValidity)
		return err
	})
	syscall.Munmap(data)
	if err != nil {
		f.Close()
		return nil, err
	}
	nb.readFrom(fi, size)
	nb.lazy.f, nb.lazy.limit, nb.lazy.uidValidity = f, nb.logOff, uidValidity
	b.s.log.Debug("store: folder loaded lazily", "mailbox", b.name, "messages", len(nb.lazy.uids))
	return nb, nil
}

// parseLogLight is parseLog keeping only UIDs and \Seen of the messages.
// data is mapped: nothing may point into it afterwards.
func (b *box) parseLogLight(data []byte, uidValidity uint32) (*box, error) {
	small := false
	nb, err := b.parseLogWith(data, uidValidity, func(nb *box, d *dec, _ *snapshot) {
		nb.lazy, small = d.snapLight(b.s.opts.LazyLoadMin)
	}, (*box).applyLight)
	if small {
		return nil, errNotLazy
	}
	return nb, err
}

// snapLight reads a snapshot's messages into a lazy index; small when
// they are fewer than min (nothing is decoded then).
func (d *dec) snapLight(min int) (lz *lazyIndex, small bool) {
	spans, nm := d.snapSpans()
	if d.err != nil {
		return nil, false
	}
	if nm < min {
		d.fail()
		return nil, true
	}
	lz = &lazyIndex{uids: make([]uint32, nm), seen: make([]bool, nm)}
	ok := eachSpan(spans, func(sp snapSpan) bool {
		var ok bool
		err := guardFault(func() error {
			ok = d.chunk(sp).snapChunkLight(lz.uids[sp.at:sp.at+sp.n], lz.seen[sp.at:sp.at+sp.n])
			return nil
		})
		return err == nil && ok
	})
	if !ok || !ascendingSeams(spans, func(i int) uint32 { return lz.uids[i] }) {
		d.fail()
		return nil, false
	}
	return lz, false
}

// snapChunkLight is snapChunk keeping UIDs and \Seen.
func (d *dec) snapChunkLight(uids []uint32, seen []bool) bool {
	var m snapMsg
	for i := range uids {
		if !d.next(&m) {
			return false
		}
		f, _ := logNameFlags(m.name)
		uids[i], seen[i] = m.uid, f&FlagSeen != 0
	}
	return d.o == len(d.b)
}

// logNameFlags returns the flags of a file name as the log writes it.
func logNameFlags(n string) (Flag, uint32) {
	var e entry
	e.setName(n)
	return e.flags, e.kw
}

// applyLight is apply for a lazy index: the same checks and the same
// result, for UIDs and \Seen. It runs only in the first load: there is
// nobody to tell of the changes.
func (b *box) applyLight(c *commit) error {
	lz := b.lazy
	last := lz.last()
	var gone []int
	var goneUIDs []uint32
	for _, op := range c.ops {
		switch op.kind {
		case opExpunge:
			i := lz.find(op.uid)
			if i < 0 {
				return errDiverged
			}
			gone = append(gone, i)
			goneUIDs = append(goneUIDs, op.uid)
		case opFlags:
			if lz.find(op.uid) < 0 {
				return errDiverged
			}
		case opAppend:
			if op.uid <= last {
				return errDiverged
			}
			last = op.uid
		}
	}
	b.applyKeywords(c)
	if len(gone) > 0 {
		slices.Sort(gone)
		gone = slices.Compact(gone)
		lz.uids = removeAt(lz.uids, gone)
		lz.seen = removeAt(lz.seen, gone)
		b.noteExpunged(goneUIDs, c.modseq)
	}
	for _, op := range c.ops {
		switch op.kind {
		case opFlags:
			f, _ := logNameFlags(op.name)
			lz.seen[lz.find(op.uid)] = f&FlagSeen != 0
		case opAppend:
			f, _ := logNameFlags(op.name)
			lz.uids = append(lz.uids, op.uid)
			lz.seen = append(lz.seen, f&FlagSeen != 0)
		}
	}
	b.applyScalars(c, last)
	return nil
}

// materialize takes in the whole index of a lazily loaded folder: it
// decodes it from the bytes the lazy load read. b.mu is held for writing.
func (b *box) materialize() {
	lz := b.lazy
	if lz == nil {
		return
	}
	b.lazy = nil
	full, err := b.decodeLazy(lz)
	if err == nil && b.matches(lz, full) {
		b.msgs = full.msgs
		b.rebuildKeywordCache()
		b.s.log.Debug("store: whole index taken in", "mailbox", b.name, "messages", len(b.msgs))
		return
	}
	// The file failed to read, or the two decoders disagree: start
	// over the ordinary way. Sessions were shown the lazy index, so they
	// must drop the folder.
	b.s.log.Error("store: whole index of a folder differs from its first look, reloading", "mailbox", b.name, "err", err)
	b.invalidateIndex()
	if err := b.load(context.Background(), nil); err != nil {
		b.s.log.Warn("store: reload", "mailbox", b.name, "err", err)
	}
}

func (b *box) decodeLazy(lz *lazyIndex) (*box, error) {
	defer lz.f.Close()
	if h := b.s.hooks.lazyDecode; h != nil {
		if err := h(); err != nil {
			return nil, err
		}
	}
	data, err := readWhole(lz.f, lz.limit)
	if err != nil {
		return nil, wrapErr("read letterbox-log", err)
	}
	if int64(len(data)) != lz.limit {
		return nil, errBadLog
	}
	return b.parseLog(data, lz.uidValidity)
}

// matches reports whether full is the index lz and b describe.
func (b *box) matches(lz *lazyIndex, full *box) bool {
	if len(full.msgs) != len(lz.uids) || full.logOff != b.logOff ||
		full.nextUID != b.nextUID || full.firstRecent != b.firstRecent ||
		full.highestModSeq != b.highestModSeq || full.seen != b.seen ||
		!slices.Equal(full.keywords, b.keywords) || !slices.Equal(full.expunged, b.expunged) {
		return false
	}
	for i := range full.msgs {
		m := &full.msgs[i]
		if m.uid != lz.uids[i] || (m.flags&FlagSeen != 0) != lz.seen[i] {
			return false
		}
	}
	return true
}

// guardFault runs fn, turning a fault on mapped memory (the file cut
// short under us) into an error instead of a crash.
func guardFault(fn func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(interface{ Addr() uintptr }); !ok {
				panic(r)
			}
			err = errBadLog
		}
	}()
	return fn()
}
