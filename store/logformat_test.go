package store

import (
	"bytes"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func sampleCommit() *commit {
	return &commit{
		modseq: 1796594878419603, time: 1796594878419603000, nextUID: 42, firstRecent: 40,
		before: stamps{cur: 1, new: 2, uidlist: 3}, after: stamps{cur: 4, new: 5, uidlist: 6},
		ops: []logOp{
			{kind: opKeyword, slot: 3, name: "$Label1"},
			{kind: opExpunge, uid: 7},
			{kind: opFlags, uid: 9, name: "1700000000.M1P2.host,S=10,W=12:2,FSd"},
			{kind: opAppend, uid: 41, size: 1234, date: 1700000000123456789, name: "1700000001.M2P3.host,S=1200,W=1234:2,", ext: "W1234"},
			{kind: opAppend, uid: 42, size: -1, date: 0, name: "new/1700000002.M3P4.host"},
		},
	}
}

func sampleSnapshot() *snapshot {
	return &snapshot{
		modseq: 99, time: 5, nextUID: 10, firstRecent: 8, stamps: stamps{1, 2, 3}, horizon: 50,
		keywords: []string{"$Forwarded", "", "Later"},
		msgs: []entry{
			snapEntry(entry{uid: 1, modseq: 60, size: 100, mtime: 7, saved: 9}, "a:2,S"),
			snapEntry(entry{uid: 5, modseq: 99, size: -1, mtime: 0, ext: "W3 P0000"}, "new/b"),
			snapEntry(entry{uid: 300, modseq: 61, size: 0, mtime: 1700000000123456789, saved: -5}, "c:2,FSa"),
		},
		expunged: []expRange{{first: 2, last: 4, modseq: 70}, {first: 6, last: 6, modseq: 80}},
	}
}

// snapEntry is e with the file name as the log writes it.
func snapEntry(e entry, name string) entry {
	e.setName(name)
	return e
}

func TestLogRecordsRoundTrip(t *testing.T) {
	c := sampleCommit()
	rec := c.marshal()
	body, n, ok, bad := nextRecord(rec)
	if !ok || bad || n != len(rec) {
		t.Fatalf("nextRecord: ok=%v bad=%v n=%d of %d", ok, bad, n, len(rec))
	}
	got, err := decodeCommit(body)
	if err != nil || !reflect.DeepEqual(got, c) {
		t.Errorf("commit round trip:\n%+v\n%+v (%v)", got, c, err)
	}
	s := sampleSnapshot()
	rec = s.marshal(nil)
	body, _, ok, _ = nextRecord(rec)
	gs, err := decodeSnapshot(append([]byte(nil), body...))
	if !ok || err != nil || !reflect.DeepEqual(gs, s) || gs.msgs[2].flags != FlagFlagged|FlagSeen || gs.msgs[2].kw != 1 || !gs.msgs[1].inNew {
		t.Errorf("snapshot round trip:\n%+v\n%+v (%v)", gs, s, err)
	}
	// Any byte changed is caught by the CRC; any cut is a record being
	// written.
	for i := range rec {
		broken := bytes.Clone(rec)
		broken[i] ^= 0x40
		if _, _, ok, _ := nextRecord(broken); ok && i >= recHeaderSize {
			t.Errorf("byte %d changed and the record still reads", i)
		}
		if _, _, ok, bad := nextRecord(rec[:i]); ok || bad {
			t.Errorf("cut at %d: ok=%v bad=%v", i, ok, bad)
		}
	}
}

// FuzzLogRecord: whatever bytes a log holds (a damaged disk, another
// program), reading them never panics or allocates without bound, and what
// decodes encodes back to the same bytes.
func FuzzLogRecord(f *testing.F) {
	f.Add(sampleCommit().marshal())
	f.Add(sampleSnapshot().marshal(nil))
	f.Add([]byte{5, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		body, _, ok, _ := nextRecord(data)
		if !ok {
			// Read the body anyway, as if its CRC were right.
			if len(data) < recHeaderSize {
				return
			}
			body = data[recHeaderSize:]
		}
		if c, err := decodeCommit(body); err == nil {
			again, err := decodeCommit(c.marshal()[recHeaderSize:])
			if err != nil || !reflect.DeepEqual(again, c) {
				t.Errorf("commit does not survive a round trip: %+v", c)
			}
		}
		if s, err := decodeSnapshot(bytes.Clone(body)); err == nil {
			if _, err := decodeSnapshot(s.marshal(nil)[recHeaderSize:]); err != nil {
				t.Errorf("snapshot does not survive a round trip: %v", err)
			}
		}
		if items, err := decodeCacheItems(body); err == nil && len(body) >= 5 {
			uid := uint32(body[0]) | uint32(body[1])<<8 | uint32(body[2])<<16 | uint32(body[3])<<24
			if again, err := decodeCacheItems(encodeCacheRecord(uid, items)); err != nil || len(again) != len(items) {
				t.Errorf("cache record does not survive a round trip")
			}
		}
	})
}

// A snapshot of more messages than one chunk round-trips (decoded on
// several goroutines), and chunks whose UIDs do not ascend across their
// seam, or that hold fewer messages than they say, are refused.
func TestSnapshotChunks(t *testing.T) {
	n := 2*snapChunk + 100
	s := &snapshot{modseq: 7, nextUID: uint32(3*n + 1)}
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("17000%05d.M%dP1.host,S=%d:2,S", i, i, i)
		if i%3 == 0 {
			name = "new/" + name[:strings.IndexByte(name, ':')]
		}
		s.msgs = append(s.msgs, snapEntry(entry{uid: uint32(3*i + 1), modseq: uint64(1000 + i%7), size: int64(i), mtime: int64(i) * 1e9, saved: -int64(i)}, name))
	}
	rec := s.marshal(nil)
	body, _, ok, _ := nextRecord(rec)
	got, err := decodeSnapshot(bytes.Clone(body))
	if !ok || err != nil || !reflect.DeepEqual(got.msgs, s.msgs) {
		t.Fatalf("chunked snapshot round trip: ok=%v err=%v equal=%v", ok, err, err == nil && reflect.DeepEqual(got.msgs, s.msgs))
	}

	seam := slices.Clone(s.msgs)
	seam[snapChunk].uid = seam[snapChunk-1].uid // second chunk starts no higher
	body, _, _, _ = nextRecord((&snapshot{msgs: seam}).marshal(nil))
	if _, err := decodeSnapshot(bytes.Clone(body)); err == nil {
		t.Error("UIDs that do not ascend across a chunk seam were accepted")
	}

	// Claim one message more than the chunks hold.
	var e enc
	e.snapMsgs(s.msgs[:10])
	short := append([]byte{}, e.b...)
	short[0]++ // nmsg is the first varint (10 < 128: one byte)
	d := newDec(short)
	if msgs := d.snapMsgs(); d.err == nil {
		t.Errorf("a count beyond the chunks decoded %d messages", len(msgs))
	}
}
