package lmtp

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/textproto"
	"os"
)

// spoolInMemory is the largest message kept in memory; bigger ones are
// spooled to an unlinked temporary file.
const spoolInMemory = 1 << 20

// spool holds one message for as many reads as it has recipients: in
// memory up to spoolInMemory, else in a temporary file that is unlinked at
// once, so nothing is left behind whatever happens.
type spool struct {
	mem  []byte
	f    *os.File
	size int64
	eol  string // the message's line end, for the headers we prepend
}

func newSpool(r io.Reader, dir string) (*spool, error) {
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(io.LimitReader(r, spoolInMemory+1)); err != nil {
		return nil, err
	}
	sp := &spool{eol: lineEnd(buf.Bytes())}
	if buf.Len() <= spoolInMemory {
		sp.mem, sp.size = buf.Bytes(), int64(buf.Len())
		return sp, nil
	}
	f, err := os.CreateTemp(dir, "letterbox-lmtp-*")
	if err != nil {
		return nil, fmt.Errorf("lmtp: spool: %w", err)
	}
	os.Remove(f.Name())
	n, err := buf.WriteTo(f)
	if err == nil {
		var m int64
		m, err = io.Copy(f, r)
		n += m
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	sp.f, sp.size = f, n
	return sp, nil
}

// lineEnd is "\n" for a message whose first line ends in a bare LF (a
// client that does not send CRLF), else "\r\n" as SMTP has it.
func lineEnd(b []byte) string {
	if i := bytes.IndexByte(b, '\n'); i >= 0 && (i == 0 || b[i-1] != '\r') {
		return "\n"
	}
	return "\r\n"
}

func (sp *spool) reader() io.Reader {
	if sp.f != nil {
		return io.NewSectionReader(sp.f, 0, sp.size)
	}
	return bytes.NewReader(sp.mem)
}

// messageID returns the Message-ID header for the log, "" if none.
func (sp *spool) messageID() string {
	tr := textproto.NewReader(bufio.NewReader(io.LimitReader(sp.reader(), 64<<10)))
	h, _ := tr.ReadMIMEHeader() // a partial header is fine here
	id := h.Get("Message-Id")
	if len(id) > 200 {
		id = id[:200]
	}
	return id
}

func (sp *spool) Close() error {
	if sp.f != nil {
		return sp.f.Close()
	}
	return nil
}
