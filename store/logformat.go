package store

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math"
	"unsafe"
)

// The change log, letterbox-log, one per folder beside dovecot-uidlist.
//
//	header   "LBXLOG02" | uidvalidity u32 | 0 u32 | log id u64 | base modseq u64   (32 bytes)
//	record   body length u32 | CRC-32C of body u32 | body
//
// The first record is a snapshot (the whole index at the moment the log was
// written); every later record is one commit: the changes one transaction
// made under the folder's dotlock, all with the same MODSEQ. Integers in
// bodies are little-endian fixed width or unsigned varints, strings a
// varint length and the bytes. A record whose length runs past the end of
// the file is being written (or was cut by a crash) and is not read; a
// record whose CRC fails ends the log as well: the next writer truncates
// there and the changes it held are found again on disk.
//
// Bodies:
//
//	snapshot: 1 | modseq u64 | time i64 | nextUID u32 | firstRecent u32 |
//	          stamps (cur, new, uidlist) 3×u64 | horizon u64 |
//	          nkw | (slot u8, name)… | nmsg | (count, bytes, message…)… |
//	          nexp | (first uid, count, modseq)…
//	message:  Δuid | Δmodseq | size+1 | Δdate | Δsaved | name | ext
//	commit:   2 | modseq u64 | time i64 | nextUID u32 | firstRecent u32 |
//	          stamps before (cur, new, uidlist) 3×u64 | stamps after 3×u64 |
//	          nops | op…
//	op:       append  1 | uid | size+1 | date | name | ext
//	          flags   2 | uid | name
//	          expunge 3 | uid
//	          keyword 4 | slot u8 | name
//
// In a snapshot, messages come in chunks (logsnap.go), and Δ fields are
// the difference to the previous message's of the chunk (the first
// message's to zero): Δuid an unsigned varint of at least 1,
// the others signed varints. Neighbours have close UIDs, MODSEQs and dates,
// so a message takes a few bytes besides its name, and reading a snapshot
// of many messages reads little.
//
// A commit's modseq is 0 when it changes nothing a client sees (a file moved
// from new/ to cur/, stamps, \Recent claimed).

const (
	logName       = "letterbox-log"
	logMagic      = "LBXLOG02"
	logHeaderSize = 32
	recHeaderSize = 8

	recSnapshot = 1
	recCommit   = 2

	opAppend  = 1
	opFlags   = 2
	opExpunge = 3
	opKeyword = 4

	// maxRecord bounds one record: a snapshot of a few million messages.
	maxRecord = 1 << 30
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

var errBadLog = errors.New("store: damaged letterbox-log")

// logHeader is the fixed start of a log file.
type logHeader struct {
	uidValidity uint32
	id          uint64
	baseModSeq  uint64
}

func (h logHeader) marshal() []byte {
	b := make([]byte, logHeaderSize)
	copy(b, logMagic)
	binary.LittleEndian.PutUint32(b[8:], h.uidValidity)
	binary.LittleEndian.PutUint64(b[16:], h.id)
	binary.LittleEndian.PutUint64(b[24:], h.baseModSeq)
	return b
}

func parseLogHeader(b []byte) (logHeader, error) {
	if len(b) < logHeaderSize || string(b[:8]) != logMagic {
		return logHeader{}, errBadLog
	}
	return logHeader{
		uidValidity: binary.LittleEndian.Uint32(b[8:]),
		id:          binary.LittleEndian.Uint64(b[16:]),
		baseModSeq:  binary.LittleEndian.Uint64(b[24:]),
	}, nil
}

// stamps are the file-system states a record leaves behind (or found):
// hashes of the stat of cur/, new/ and dovecot-uidlist. Another process
// whose own stamps equal a commit's "before" may take its "after": it then
// knows the change on disk was this commit and need not read the directory.
type stamps struct {
	cur, new, uidlist uint64
}

// logOp is one change inside a commit.
type logOp struct {
	kind uint8
	uid  uint32
	size int64 // append: CRLF size, -1 unknown
	date int64 // append: internal date in Unix ns, 0 unknown
	name string
	ext  string // append: dovecot-uidlist extension fields
	slot uint8  // keyword
}

// commit is a decoded commit record.
type commit struct {
	modseq      uint64
	time        int64
	nextUID     uint32
	firstRecent uint32
	before      stamps
	after       stamps
	ops         []logOp
}

// expRange is a run of expunged UIDs that went with one MODSEQ.
type expRange struct {
	first, last uint32
	modseq      uint64
}

// snapshot is a decoded snapshot record.
type snapshot struct {
	modseq      uint64
	time        int64
	nextUID     uint32
	firstRecent uint32
	stamps      stamps
	horizon     uint64
	keywords    []string
	msgs        []entry // decoded straight into the index's form
	expunged    []expRange
}

// enc appends a record to a byte slice.
type enc struct {
	b     []byte
	start int // where the record starts in b
}

func (e *enc) u8(v uint8)      { e.b = append(e.b, v) }
func (e *enc) u32(v uint32)    { e.b = binary.LittleEndian.AppendUint32(e.b, v) }
func (e *enc) u64(v uint64)    { e.b = binary.LittleEndian.AppendUint64(e.b, v) }
func (e *enc) uv(v uint64)     { e.b = binary.AppendUvarint(e.b, v) }
func (e *enc) sv(v int64)      { e.b = binary.AppendVarint(e.b, v) }
func (e *enc) str(s string)    { e.uv(uint64(len(s))); e.b = append(e.b, s...) }
func (e *enc) stamps(s stamps) { e.u64(s.cur); e.u64(s.new); e.u64(s.uidlist) }

// newRecord starts a record in buf: room for the length and CRC that
// seal fills in once the body is written after them.
func newRecord(buf []byte, capacity int) enc {
	if buf == nil {
		buf = make([]byte, 0, capacity)
	}
	start := len(buf)
	return enc{b: append(buf, make([]byte, recHeaderSize)...), start: start}
}

// seal writes the record's length and CRC and returns the buffer.
func (e *enc) seal() []byte {
	body := e.b[e.start+recHeaderSize:]
	binary.LittleEndian.PutUint32(e.b[e.start:], uint32(len(body)))
	binary.LittleEndian.PutUint32(e.b[e.start+4:], crc32.Checksum(body, crcTable))
	return e.b
}

func (c *commit) marshal() []byte {
	e := newRecord(nil, 96+len(c.ops)*48)
	e.u8(recCommit)
	e.u64(c.modseq)
	e.u64(uint64(c.time))
	e.u32(c.nextUID)
	e.u32(c.firstRecent)
	e.stamps(c.before)
	e.stamps(c.after)
	e.uv(uint64(len(c.ops)))
	for _, op := range c.ops {
		e.u8(op.kind)
		switch op.kind {
		case opAppend:
			e.uv(uint64(op.uid))
			e.uv(uint64(op.size + 1))
			e.sv(op.date)
			e.str(op.name)
			e.str(op.ext)
		case opFlags:
			e.uv(uint64(op.uid))
			e.str(op.name)
		case opExpunge:
			e.uv(uint64(op.uid))
		case opKeyword:
			e.u8(op.slot)
			e.str(op.name)
		}
	}
	return e.seal()
}

// marshal appends the snapshot record to buf.
func (s *snapshot) marshal(buf []byte) []byte {
	e := newRecord(buf, 0)
	e.u8(recSnapshot)
	e.u64(s.modseq)
	e.u64(uint64(s.time))
	e.u32(s.nextUID)
	e.u32(s.firstRecent)
	e.stamps(s.stamps)
	e.u64(s.horizon)
	e.uv(uint64(len(s.keywords)))
	for i, k := range s.keywords {
		e.u8(uint8(i))
		e.str(k)
	}
	e.snapMsgs(s.msgs)
	e.uv(uint64(len(s.expunged)))
	for _, r := range s.expunged {
		e.uv(uint64(r.first))
		e.uv(uint64(r.last - r.first))
		e.uv(r.modseq)
	}
	return e.seal()
}

// dec reads a body; the first error sticks and every later read returns
// zero values, so decoders check once at the end.
type dec struct {
	b   []byte
	err error
	// s is b as a string: names are substrings of it, so decoding a
	// snapshot of many messages makes one allocation for all of them.
	s string
	o int
}

func newDec(b []byte) *dec { return &dec{b: b, s: string(b)} }

// newDecShared decodes b, whose bytes the caller never changes again:
// names are then substrings of b itself, without a copy of it.
func newDecShared(b []byte) *dec {
	if len(b) == 0 {
		return newDec(b)
	}
	return &dec{b: b, s: unsafe.String(&b[0], len(b))}
}

func (d *dec) fail() { d.err = errBadLog }

func (d *dec) need(n int) bool {
	if d.err != nil || n < 0 || len(d.b)-d.o < n {
		d.fail()
		return false
	}
	return true
}

func (d *dec) u8() uint8 {
	if !d.need(1) {
		return 0
	}
	d.o++
	return d.b[d.o-1]
}

func (d *dec) u32() uint32 {
	if !d.need(4) {
		return 0
	}
	d.o += 4
	return binary.LittleEndian.Uint32(d.b[d.o-4:])
}

func (d *dec) u64() uint64 {
	if !d.need(8) {
		return 0
	}
	d.o += 8
	return binary.LittleEndian.Uint64(d.b[d.o-8:])
}

func (d *dec) uv() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b[d.o:])
	if n <= 0 {
		d.fail()
		return 0
	}
	d.o += n
	return v
}

func (d *dec) sv() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b[d.o:])
	if n <= 0 {
		d.fail()
		return 0
	}
	d.o += n
	return v
}

func (d *dec) uid() uint32 {
	v := d.uv()
	if v == 0 || v > math.MaxUint32 {
		d.fail()
		return 0
	}
	return uint32(v)
}

func (d *dec) str() string {
	n := d.uv()
	if n > uint64(len(d.b)) || !d.need(int(n)) {
		d.fail()
		return ""
	}
	d.o += int(n)
	return d.s[d.o-int(n) : d.o]
}

func (d *dec) stamps() stamps { return stamps{cur: d.u64(), new: d.u64(), uidlist: d.u64()} }

// count reads a list length, refusing one the remaining bytes cannot hold
// (each element takes at least min bytes), so a damaged length cannot make
// us allocate gigabytes.
func (d *dec) count(min int) int {
	n := d.uv()
	if n > uint64((len(d.b)-d.o)/min) {
		d.fail()
		return 0
	}
	return int(n)
}

func decodeCommit(body []byte) (*commit, error) {
	d := newDec(body)
	if d.u8() != recCommit {
		return nil, errBadLog
	}
	c := &commit{modseq: d.u64(), time: int64(d.u64()), nextUID: d.u32(), firstRecent: d.u32()}
	c.before = d.stamps()
	c.after = d.stamps()
	n := d.count(2)
	c.ops = make([]logOp, 0, n)
	for i := 0; i < n && d.err == nil; i++ {
		op := logOp{kind: d.u8()}
		switch op.kind {
		case opAppend:
			op.uid = d.uid()
			op.size = int64(d.uv()) - 1
			op.date = d.sv()
			op.name = d.str()
			op.ext = d.str()
		case opFlags:
			op.uid = d.uid()
			op.name = d.str()
		case opExpunge:
			op.uid = d.uid()
		case opKeyword:
			op.slot = d.u8()
			op.name = d.str()
			if op.slot >= maxKeywords {
				d.fail()
			}
		default:
			d.fail()
		}
		c.ops = append(c.ops, op)
	}
	if d.err != nil || d.o != len(body) {
		return nil, errBadLog
	}
	return c, nil
}

// decodeSnapshot decodes a snapshot record. body must not change after:
// the names point into it.
func decodeSnapshot(body []byte) (*snapshot, error) {
	return decodeSnapshotWith(newDecShared(body), func(d *dec, s *snapshot) { s.msgs = d.snapMsgs() })
}

// decodeSnapshotWith decodes a snapshot record with msgs reading its
// messages.
func decodeSnapshotWith(d *dec, msgs func(d *dec, s *snapshot)) (*snapshot, error) {
	body := d.b
	if d.u8() != recSnapshot {
		return nil, errBadLog
	}
	s := &snapshot{modseq: d.u64(), time: int64(d.u64()), nextUID: d.u32(), firstRecent: d.u32()}
	s.stamps = d.stamps()
	s.horizon = d.u64()
	nk := d.count(2)
	for i := 0; i < nk && d.err == nil; i++ {
		slot := int(d.u8())
		name := d.str()
		if slot >= maxKeywords {
			d.fail()
			break
		}
		for len(s.keywords) <= slot {
			s.keywords = append(s.keywords, "")
		}
		s.keywords[slot] = name
	}
	msgs(d, s)
	ne := d.count(3)
	for i := 0; i < ne && d.err == nil; i++ {
		first := d.uid()
		span := d.uv()
		ms := d.uv()
		if uint64(first)+span > math.MaxUint32 {
			d.fail()
			break
		}
		s.expunged = append(s.expunged, expRange{first: first, last: first + uint32(span), modseq: ms})
	}
	if d.err != nil || d.o != len(body) {
		return nil, errBadLog
	}
	return s, nil
}

// nextRecord splits the record at the start of b. ok is false when b does
// not hold a whole record yet; bad when the record is damaged.
func nextRecord(b []byte) (body []byte, n int, ok, bad bool) {
	if len(b) < recHeaderSize {
		return nil, 0, false, false
	}
	l := binary.LittleEndian.Uint32(b)
	if l == 0 || l > maxRecord {
		return nil, 0, false, true
	}
	if uint64(len(b)) < uint64(recHeaderSize)+uint64(l) {
		return nil, 0, false, false
	}
	body, ok = recordBody(b, int(l))
	if !ok {
		return nil, 0, false, true
	}
	return body, recHeaderSize + int(l), true, false
}

// appendRecord appends body to buf as one record (the log's framing,
// which letterbox-cache shares).
func appendRecord(buf, body []byte) []byte {
	r := newRecord(buf, 0)
	r.b = append(r.b, body...)
	return r.seal()
}

// recordBody returns the body of the record at the start of b, whose
// length l its header gave and which b holds whole, and whether its CRC
// holds.
func recordBody(b []byte, l int) ([]byte, bool) {
	body := b[recHeaderSize : recHeaderSize+l]
	return body, crc32.Checksum(body, crcTable) == binary.LittleEndian.Uint32(b[4:])
}
