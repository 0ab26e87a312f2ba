package store

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"
	"unsafe"
)

// Following, loading, writing and compacting letterbox-log. See
// logformat.go for the format and txn.go for how commits are made.

var (
	errLogGone     = errors.New("store: letterbox-log missing")
	errLogReplaced = errors.New("store: letterbox-log replaced")
	errDiverged    = errors.New("store: index and letterbox-log disagree")
	errLogBehind   = errors.New("store: letterbox-log has records this process did not see when it caught up (client-side caching on a shared file system?)")
)

func (b *box) logPath() string { return filepath.Join(b.path, logName) }

// followLog applies the records other processes appended since we last
// looked. b.mu is held. It reports errLogGone or errLogReplaced when the
// file is not the one we follow, and errDiverged when a record does not
// fit the index; the caller then reloads.
func (b *box) followLog() error {
	f, fi, err := b.openLog()
	if err != nil {
		return err
	}
	defer f.Close()
	id := fileIDOf(fi)
	if id.ino != b.logIno || fi.Size() < b.logOff {
		return errLogReplaced
	}
	if id == b.logStat {
		return nil
	}
	b.materialize() // records to apply
	// Inode numbers are reused at once: only the log's id in its header
	// says it is the file we follow.
	if !b.sameLog(f) {
		return errLogReplaced
	}
	b.logVerified = true
	size := fi.Size()
	if size == b.logOff {
		b.logStat = id
		return nil
	}
	buf := make([]byte, size-b.logOff)
	n, err := f.ReadAt(buf, b.logOff)
	if err != nil && !errors.Is(err, io.EOF) {
		return wrapErr("read letterbox-log", err)
	}
	off, err := b.applyTail(buf[:n], 0, func(c *commit) error { return b.apply(c, nil) })
	b.logOff += int64(off)
	if err != nil {
		return err
	}
	if b.logOff == size {
		b.logStat = id
	}
	return nil
}

// sameLog reports whether the open log file is the one we follow.
func (b *box) sameLog(f *os.File) bool {
	var hb [logHeaderSize]byte
	if _, err := f.ReadAt(hb[:], 0); err != nil {
		return false
	}
	h, err := parseLogHeader(hb[:])
	return err == nil && h.id == b.logID
}

// readLog reads a whole log file into a fresh index. It returns errLogGone
// for a missing file and errBadLog for one that is not a usable log of
// this folder.
func (b *box) readLog(uidValidity uint32) (*box, error) {
	f, fi, err := b.openLog()
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := readWhole(f, fi.Size())
	if err != nil {
		return nil, wrapErr("read letterbox-log", err)
	}
	nb, err := b.parseLog(data, uidValidity)
	if err != nil {
		return nil, err
	}
	nb.readFrom(fi, int64(len(data)))
	return nb, nil
}

// openLog opens the folder's log for reading; errLogGone if there is none.
func (b *box) openLog() (*os.File, os.FileInfo, error) {
	f, err := openRead(b.logPath())
	if err != nil {
		if isNotExist(err) {
			return nil, nil, errLogGone
		}
		return nil, nil, wrapErr("open letterbox-log", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, wrapErr("stat letterbox-log", err)
	}
	return f, fi, nil
}

// readFrom records the log file a fresh index was read from, and that it
// is followed to its end if read bytes were all it had.
func (nb *box) readFrom(fi os.FileInfo, read int64) {
	nb.logIno = fileIDOf(fi).ino
	if nb.logOff == read {
		nb.logStat = fileIDOf(fi)
	}
}

// parseLog decodes a log file's bytes into a fresh index. The names in it
// point into data.
func (b *box) parseLog(data []byte, uidValidity uint32) (*box, error) {
	return b.parseLogWith(data, uidValidity, func(nb *box, d *dec, s *snapshot) { s.msgs = d.snapMsgs() },
		func(nb *box, c *commit) error { return nb.apply(c, nil) })
}

// parseLogWith is parseLog with msgs decoding the snapshot's messages and
// apply applying the commits after it: the whole index's (parseLog) or a
// lazy one's (parseLogLight).
func (b *box) parseLogWith(data []byte, uidValidity uint32, msgs func(nb *box, d *dec, s *snapshot), apply func(nb *box, c *commit) error) (*box, error) {
	h, err := parseLogHeader(data)
	if err != nil || h.uidValidity != uidValidity {
		return nil, errBadLog
	}
	body, rn, ok, _ := nextRecord(data[logHeaderSize:])
	if !ok {
		return nil, errBadLog
	}
	nb := b.fresh()
	snap, err := decodeSnapshotWith(newDecShared(body), func(d *dec, s *snapshot) { msgs(nb, d, s) })
	if err != nil {
		return nil, errBadLog
	}
	// Keywords outlive data (which may be a mapping).
	for i, k := range snap.keywords {
		snap.keywords[i] = strings.Clone(k)
	}
	nb.uidValidity = uidValidity
	nb.applySnapshot(snap)
	nb.logID, nb.logVerified = h.id, true
	nb.logSnap = int64(rn)
	off, err := nb.applyTail(data, logHeaderSize+rn, func(c *commit) error { return apply(nb, c) })
	if err != nil {
		return nil, errBadLog
	}
	nb.logOff = int64(off)
	return nb, nil
}

// applyTail applies the commits of data from off on, up to its end or the
// first damaged record (then b.logBad is set: a writer died in the middle
// of one, or the disk lost it; the next writer cuts it off, and what it
// held is found again on disk, since stamps did not move). It returns the
// end of the last record applied, and apply's error if one failed.
func (b *box) applyTail(data []byte, off int, apply func(*commit) error) (int, error) {
	for off < len(data) {
		body, rn, ok, bad := nextRecord(data[off:])
		if bad {
			b.logBad = true
		}
		if !ok {
			break // damaged, or being written
		}
		c, err := decodeCommit(body)
		if err != nil {
			b.logBad = true
			break
		}
		if err := apply(c); err != nil {
			return off, err
		}
		off += rn
	}
	return off, nil
}

// readWhole reads f from its start, up to size bytes (fewer if it is
// shorter by now). A big file is read in two halves at once: most of the
// time goes to the first touch of the new buffer's pages, which two cores
// share well.
func readWhole(f *os.File, size int64) ([]byte, error) {
	data := make([]byte, size)
	adviseHugePages(unsafe.Pointer(unsafe.SliceData(data)), uintptr(size))
	if size < 1<<20 || runtime.GOMAXPROCS(0) < 2 {
		n, err := f.ReadAt(data, 0)
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
		return data[:n], nil
	}
	half := size / 2
	var n2 int
	var err2 error
	done := make(chan struct{})
	go func() {
		defer close(done)
		n2, err2 = f.ReadAt(data[half:], half)
	}()
	n1, err1 := f.ReadAt(data[:half], 0)
	<-done
	if err1 != nil && !errors.Is(err1, io.EOF) {
		return nil, err1
	}
	if int64(n1) < half {
		return data[:n1], nil
	}
	if err2 != nil && !errors.Is(err2, io.EOF) {
		return nil, err2
	}
	return data[:half+int64(n2)], nil
}

// fresh returns an empty index for the same folder, to load into.
func (b *box) fresh() *box {
	return &box{s: b.s, name: b.name, root: b.root, path: b.path, kwCache: make(map[uint32][]string)}
}

func (b *box) applySnapshot(s *snapshot) {
	b.highestModSeq = s.modseq
	b.nextUID = s.nextUID
	b.firstRecent = s.firstRecent
	b.seen = s.stamps
	b.horizon = s.horizon
	b.keywords = s.keywords
	b.expunged = s.expunged
	b.msgs = s.msgs
	b.rebuildKeywordCache()
}

// setName takes a file name as the log writes it: "new/<name>" for a file
// in new/, else the name in cur/.
func (e *entry) setName(n string) {
	if len(n) > 4 && n[:4] == "new/" {
		e.name, e.inNew = n[4:], true
	} else {
		e.name, e.inNew = n, false
	}
	_, info := splitName(e.name)
	e.flags, e.kw = parseInfo(info)
}

// appendLog writes one record at the end of the log. The dotlock is held
// and the index is caught up, so b.logOff is the end of the file. The log
// is not fsynced: a lost tail only costs MODSEQs that the time floor in
// nextModSeq makes good, and the changes it described are found again on
// disk because the stamps before them are still in the log.
func (b *box) appendLog(rec []byte) error {
	if h := b.s.hooks.logWrite; h != nil {
		if err := h(); err != nil {
			return err
		}
	}
	f, err := openFile(b.logPath(), os.O_RDWR, 0)
	if isNotExist(err) {
		return errLogGone
	}
	if err != nil {
		return wrapErr("open letterbox-log", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return wrapErr("stat letterbox-log", err)
	}
	if fileIDOf(fi).ino != b.logIno || (fi.Size() != b.logOff || !b.logVerified) && !b.sameLog(f) {
		// Replaced by hand while we hold the lock: ours is the state.
		return errLogGone
	}
	switch {
	case b.logBad:
		// Cut off a damaged or half-written record: its writer died, or
		// the disk lost it (we hold the lock, nobody is writing it).
		if err := f.Truncate(b.logOff); err != nil {
			return wrapErr("truncate letterbox-log", err)
		}
		b.logBad = false
	case fi.Size() != b.logOff:
		// Records we have not read: a file system that showed us an old
		// size when we caught up (a network file system with client
		// caching on). Never write over them.
		return errLogBehind
	}
	if _, err := f.WriteAt(rec, b.logOff); err != nil {
		_ = f.Truncate(b.logOff)
		return wrapErr("write letterbox-log", err)
	}
	b.logOff += int64(len(rec))
	if fi, err := f.Stat(); err == nil {
		b.logStat = fileIDOf(fi)
	}
	return nil
}

// writeLog replaces the log with a new one holding a snapshot of the index
// (write beside, fsync, rename). The dotlock is held.
func (b *box) writeLog() error {
	b.pruneExpunged()
	h := logHeader{uidValidity: b.uidValidity, id: randomID(), baseModSeq: b.highestModSeq}
	data := b.snapshot(h.marshal())
	snap := data[logHeaderSize:]
	// Whatever happens next, the log we followed is no more.
	b.logIno, b.logID = 0, 0
	// Not fsynced: a log cut short by a crash fails its CRC and is
	// rebuilt, and MODSEQs stay above what was handed out before (see
	// nextModSeq).
	if err := replaceFile(b.logPath(), data, b.s.opts.FileMode); err != nil {
		return noSpace(err)
	}
	id, err := statID(b.logPath())
	if err != nil {
		return wrapErr("stat letterbox-log", err)
	}
	b.logID, b.logIno, b.logOff, b.logStat, b.logSnap = h.id, id.ino, int64(len(data)), id, int64(len(snap))
	b.logBad, b.logVerified = false, true
	b.noLogSince = time.Time{}
	return nil
}

// snapshot appends a snapshot record of the index to buf.
func (b *box) snapshot(buf []byte) []byte {
	s := snapshot{
		modseq: b.highestModSeq, time: time.Now().UnixNano(), nextUID: b.nextUID,
		firstRecent: b.firstRecent, stamps: b.seen, horizon: b.horizon,
		keywords: b.keywords, expunged: b.expunged, msgs: b.msgs,
	}
	if cap(buf)-len(buf) < len(b.msgs)*64+256 {
		buf = append(make([]byte, 0, len(buf)+len(b.msgs)*64+256), buf...)
	}
	return s.marshal(buf)
}

// pruneExpunged forgets expunges older than the retention, and the oldest
// beyond the count limit; horizon moves up to the newest one forgotten.
func (b *box) pruneExpunged() {
	cutoff := uint64(time.Now().Add(-b.s.opts.ExpungeRetention).UnixMicro())
	sort.Slice(b.expunged, func(i, j int) bool { return b.expunged[i].modseq < b.expunged[j].modseq })
	drop := 0
	for drop < len(b.expunged) && (b.expunged[drop].modseq < cutoff || len(b.expunged)-drop > maxExpungeRanges) {
		if b.expunged[drop].modseq > b.horizon {
			b.horizon = b.expunged[drop].modseq
		}
		drop++
	}
	b.expunged = append(b.expunged[:0:0], b.expunged[drop:]...)
}

// maxExpungeRanges bounds the expunges a log remembers (runs of UIDs
// expunged together; a run is 20 bytes in memory).
const maxExpungeRanges = 100000

// maybeCompact rewrites the log once the records after its snapshot
// outweigh the snapshot, so a log stays within about twice the size of a
// snapshot of the folder. The dotlock is held and the index caught up.
func (b *box) maybeCompact(lock *dotlock) {
	tail := b.logOff - logHeaderSize - b.logSnap
	if tail < 256<<10 || tail < b.logSnap {
		return
	}
	if err := b.writeLog(); err != nil {
		b.s.log.Warn("store: compact letterbox-log", "mailbox", b.name, "err", err)
	}
	lock.touch()
}

func randomID() uint64 {
	var x [8]byte
	_, _ = rand.Read(x[:])
	return binary.LittleEndian.Uint64(x[:])
}

// catchUp brings the index up to the log's end with the dotlock held,
// loading or rebuilding the log as needed.
func (b *box) catchUp(ctx context.Context, lock *dotlock) error {
	if !b.loaded {
		return b.load(ctx, lock)
	}
	err := b.followLog()
	if err == nil {
		return nil
	}
	if errors.Is(err, errLogGone) || errors.Is(err, errLogReplaced) || errors.Is(err, errDiverged) {
		return b.reload(ctx, lock)
	}
	return err
}
