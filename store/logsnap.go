package store

import (
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"
)

// A snapshot's messages are written in chunks of snapChunk, each with its
// message count and byte length in front and its Δ fields counted from
// zero, so that chunks decode independently: reading the log of a big
// folder after a restart uses every core. (Most of that time is the first
// touch of the new index's memory, which cores share well.)
//
//	msgs:  nmsg | (count, bytes, message…)…
const snapChunk = 8192

// snapMsgs appends the messages of a snapshot.
func (e *enc) snapMsgs(msgs []entry) {
	e.uv(uint64(len(msgs)))
	var chunk enc
	for start := 0; start < len(msgs); start += snapChunk {
		end := min(start+snapChunk, len(msgs))
		chunk.b = chunk.b[:0]
		var prev entry
		for i := start; i < end; i++ {
			m := &msgs[i]
			chunk.uv(uint64(m.uid - prev.uid))
			chunk.sv(int64(m.modseq - prev.modseq))
			chunk.uv(uint64(m.size + 1))
			chunk.sv(m.mtime - prev.mtime)
			chunk.sv(m.saved - prev.saved)
			if m.inNew {
				chunk.uv(uint64(len("new/") + len(m.name)))
				chunk.b = append(chunk.b, "new/"...)
				chunk.b = append(chunk.b, m.name...)
			} else {
				chunk.str(m.name)
			}
			chunk.str(m.ext)
			prev = *m
		}
		e.uv(uint64(end - start))
		e.uv(uint64(len(chunk.b)))
		e.b = append(e.b, chunk.b...)
	}
}

// snapSpan is one chunk found in a snapshot.
type snapSpan struct {
	at, n    int // first message, count
	off, len int // bytes in the body
}

// snapSpans reads the message count and the chunk heads of a snapshot.
func (d *dec) snapSpans() (spans []snapSpan, nm int) {
	nm = d.count(7)
	for got := 0; got < nm && d.err == nil; {
		n, size := d.uv(), d.uv()
		if n == 0 || n > uint64(nm-got) || size < 7*n || size > uint64(len(d.b)-d.o) {
			d.fail()
			break
		}
		spans = append(spans, snapSpan{at: got, n: int(n), off: d.o, len: int(size)})
		d.o += int(size)
		got += int(n)
	}
	return spans, nm
}

// chunk returns a decoder of one chunk.
func (d *dec) chunk(sp snapSpan) *dec {
	return &dec{b: d.b[sp.off : sp.off+sp.len], s: d.s[sp.off : sp.off+sp.len]}
}

// eachSpan runs decode on every chunk, on as many goroutines as there are
// cores, and reports whether all of them succeeded.
func eachSpan(spans []snapSpan, decode func(snapSpan) bool) bool {
	var bad atomic.Bool
	workers := min(runtime.GOMAXPROCS(0), len(spans))
	if workers <= 1 {
		for _, sp := range spans {
			if !decode(sp) {
				bad.Store(true)
			}
		}
		return !bad.Load()
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < len(spans); i = int(next.Add(1)) - 1 {
				if !decode(spans[i]) {
					bad.Store(true)
				}
			}
		})
	}
	wg.Wait()
	return !bad.Load()
}

// ascendingSeams reports whether each chunk's first UID is above the last
// one of the chunk before.
func ascendingSeams(spans []snapSpan, uid func(i int) uint32) bool {
	for _, sp := range spans[min(1, len(spans)):] {
		if uid(sp.at) <= uid(sp.at-1) {
			return false
		}
	}
	return true
}

// snapMsgs reads the messages of a snapshot: the chunk heads in order,
// then the chunks on as many goroutines as there are cores.
func (d *dec) snapMsgs() []entry {
	spans, nm := d.snapSpans()
	if d.err != nil {
		return nil
	}
	// Room to grow: the index appends to this slice as mail arrives.
	msgs := make([]entry, nm, nm+nm/8+16)
	adviseHugePages(unsafe.Pointer(unsafe.SliceData(msgs)), uintptr(cap(msgs))*unsafe.Sizeof(entry{}))
	ok := eachSpan(spans, func(sp snapSpan) bool {
		return d.chunk(sp).snapChunk(msgs[sp.at : sp.at+sp.n])
	})
	if !ok || !ascendingSeams(spans, func(i int) uint32 { return msgs[i].uid }) {
		d.fail()
		return nil
	}
	return msgs
}

// snapMsg is one message of a snapshot chunk as it is decoded: each
// call of next adds the message's Δ fields to the previous one's.
type snapMsg struct {
	uid         uint32
	modseq      uint64
	size        int64
	date, saved int64
	name, ext   string
}

// next decodes the chunk's next message into m. It is the one reader of
// the message format, for snapChunk and snapChunkLight (lazy.go) alike.
func (d *dec) next(m *snapMsg) bool {
	du := d.uv()
	if du == 0 || uint64(m.uid)+du > math.MaxUint32 {
		return false
	}
	m.uid += uint32(du)
	m.modseq += uint64(d.sv())
	m.size = int64(d.uv()) - 1
	m.date += d.sv()
	m.saved += d.sv()
	m.name = d.str()
	m.ext = d.str()
	return d.err == nil
}

// snapChunk decodes one chunk into msgs, which it must fill exactly.
func (d *dec) snapChunk(msgs []entry) bool {
	var m snapMsg
	for i := range msgs {
		if !d.next(&m) {
			return false
		}
		e := &msgs[i]
		e.uid, e.modseq, e.size, e.mtime, e.saved = m.uid, m.modseq, m.size, m.date, m.saved
		e.setName(m.name)
		e.ext = m.ext
	}
	return d.o == len(d.b)
}
