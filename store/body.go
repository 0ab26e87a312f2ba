package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"
)

// Body is a message's content as it goes on the wire: every bare LF of the
// file becomes CRLF, and exactly Size bytes are read, Size being known
// before the first byte (an IMAP literal announces it).
type Body struct {
	// Size is the number of bytes Read returns in all.
	Size int64

	f    *os.File
	r    io.Reader
	conv *crlfReader // from pool; nil after Close
	pool *sync.Pool
}

// Read implements io.Reader.
func (b *Body) Read(p []byte) (int, error) { return b.r.Read(p) }

// Close closes the file.
func (b *Body) Close() error {
	if b.conv != nil {
		b.conv.src = nil
		b.pool.Put(b.conv)
		b.conv = nil
		b.r = eofReader{}
	}
	return b.f.Close()
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }

// OpenMessage opens a message for reading. If another process renamed the
// file (a flag change), the folder is synced and the open tried again.
func (m *Mailbox) OpenMessage(ctx context.Context, uid uint32) (*Body, error) {
	b := m.b
	for attempt := 0; ; attempt++ {
		b.rlock()
		i := b.find(uid)
		var path string
		var size int64
		if i >= 0 {
			path, size = b.filePath(&b.msgs[i]), b.msgs[i].size
		}
		b.mu.RUnlock()
		if i < 0 {
			return nil, ErrNoSuchMessage
		}
		f, err := openRead(path)
		if err == nil {
			if size < 0 {
				size = 0
			}
			conv := b.s.crlfPool.Get().(*crlfReader)
			conv.reset(f)
			body := &Body{Size: size, f: f, conv: conv, pool: &b.s.crlfPool}
			body.r = &exactReader{r: conv, left: size, onShort: func(got, want int64) {
				b.s.log.Warn("store: message file changed size", "mailbox", b.name, "uid", uid, "got", got, "want", want)
			}}
			return body, nil
		}
		if !errors.Is(err, fs.ErrNotExist) || attempt > 0 {
			return nil, fmt.Errorf("store: open message %d: %w", uid, err)
		}
		// Renamed by another process: the log (or, for a program that
		// does not write it, a listing) says where it went.
		if attempt == 0 {
			err = b.refresh(ctx)
			b.rlock()
			same := b.find(uid) >= 0 && b.filePath(&b.msgs[b.find(uid)]) == path
			b.mu.RUnlock()
			if err == nil && same {
				err = b.forceScan(ctx)
			}
		}
		if err != nil {
			return nil, err
		}
	}
}

// crlfReader turns bare LFs into CRLF.
type crlfReader struct {
	src    io.Reader
	in     []byte
	out    []byte
	pend   []byte
	prevCR bool
	err    error
}

func newCRLFReader(r io.Reader) *crlfReader {
	return &crlfReader{src: r, in: make([]byte, 32*1024), out: make([]byte, 0, 40*1024)}
}

func (c *crlfReader) reset(r io.Reader) {
	c.src, c.pend, c.prevCR, c.err = r, nil, false, nil
}

func (c *crlfReader) Read(p []byte) (int, error) {
	for len(c.pend) == 0 {
		if c.err != nil {
			return 0, c.err
		}
		n, err := c.src.Read(c.in)
		c.err = err
		chunk := c.in[:n]
		c.out = c.out[:0]
		for len(chunk) > 0 {
			i := bytes.IndexByte(chunk, '\n')
			if i < 0 {
				c.out = append(c.out, chunk...)
				c.prevCR = chunk[len(chunk)-1] == '\r'
				break
			}
			bare := (i == 0 && !c.prevCR) || (i > 0 && chunk[i-1] != '\r')
			c.out = append(c.out, chunk[:i]...)
			if bare {
				c.out = append(c.out, '\r')
			}
			c.out = append(c.out, '\n')
			c.prevCR = false
			chunk = chunk[i+1:]
		}
		c.pend = c.out
	}
	n := copy(p, c.pend)
	c.pend = c.pend[n:]
	return n, nil
}

// exactReader returns exactly left bytes: it cuts a file that grew and pads
// one that shrank with spaces, so a literal announced with the indexed size
// is never broken. Maildir files do not change, so this is for damage done
// by hand.
type exactReader struct {
	r       io.Reader
	left    int64
	got     int64
	short   bool
	onShort func(got, want int64)
}

func (e *exactReader) Read(p []byte) (int, error) {
	if e.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > e.left {
		p = p[:e.left]
	}
	if e.short {
		for i := range p {
			p[i] = ' '
		}
		e.left -= int64(len(p))
		return len(p), nil
	}
	n, err := e.r.Read(p)
	e.left -= int64(n)
	e.got += int64(n)
	if err == io.EOF && e.left > 0 {
		e.short = true
		if e.onShort != nil {
			e.onShort(e.got, e.got+e.left)
		}
		err = nil
	}
	if e.left == 0 {
		return n, io.EOF
	}
	return n, err
}
