package pop3

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/textproto"

	"github.com/letterbox-mail/letterbox/store"
)

// Commands of the TRANSACTION state (RFC 1939 §5, §7). QUIT's UPDATE state
// is in update.go.

// message is one entry of the session's fixed view of the maildrop.
type message struct {
	uid       uint32
	size      int64 // CRLF octets
	uidl      string
	deleted   bool // DELE
	retrieved bool // RETR: gets \Seen at QUIT
}

// snapshot copies what the session needs of INBOX at login: message numbers
// and sizes stay fixed for the whole session (RFC 1939 §4), whatever arrives
// or goes meanwhile. Opening INBOX has already made the store move new/ to
// cur/ and number the new files.
func snapshot(ctx context.Context, mbox *store.Mailbox) ([]message, error) {
	var msgs []message
	err := mbox.Read(ctx, func(v *store.View) {
		msgs = make([]message, v.Len())
		for i := range msgs {
			m := v.At(i)
			msgs[i] = message{uid: m.UID, size: m.Size, uidl: uidl(v, i, m.UID)}
		}
	})
	return msgs, err
}

// uidl returns a message's unique-id: the one Dovecot saved in the uidlist's
// P field if there is one (pop3_save_uidl, or a migration from another
// server), else Dovecot's default "%08x%08x" of UID and UIDVALIDITY.
func uidl(v *store.View, i int, uid uint32) string {
	if p, ok := v.Ext(i, 'P'); ok && validUIDL(p) {
		return p
	}
	return fmt.Sprintf("%08x%08x", uid, v.UIDValidity())
}

// validUIDL checks RFC 1939 §7: 1 to 70 characters in 0x21..0x7E.
func validUIDL(s string) bool {
	if len(s) == 0 || len(s) > 70 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// lookup finds a message by the number the client gave. A malformed number
// is a bad command; one out of range, or a deleted message, is not.
func (s *session) lookup(arg string) (int, *message, error) {
	n, ok := parseNumber(arg)
	if !ok {
		return 0, nil, errBadNumber
	}
	if n < 1 || n > len(s.msgs) {
		return 0, nil, errNoSuchMessage
	}
	m := &s.msgs[n-1]
	if m.deleted {
		return 0, nil, errDeleted
	}
	return n, m, nil
}

func (s *session) cmdSTAT(arg string) error {
	if _, err := fields(arg, 0, 0); err != nil {
		return err
	}
	n, size := s.undeleted()
	s.writef("+OK %d %d", n, size)
	return nil
}

// undeleted counts the messages not marked by DELE and their size (STAT,
// and LIST's header line).
func (s *session) undeleted() (n int, size int64) {
	for _, m := range s.msgs {
		if !m.deleted {
			n++
			size += m.size
		}
	}
	return n, size
}

func (s *session) cmdLIST(arg string) error {
	// "+OK n messages:" is Dovecot's header line; clients ignore it.
	header := func(n int) string { return fmt.Sprintf("+OK %d messages:", n) }
	return s.listing(arg, header, func(n int, m *message) string { return fmt.Sprintf("%d %d", n, m.size) })
}

func (s *session) cmdUIDL(arg string) error {
	header := func(int) string { return "+OK" }
	return s.listing(arg, header, func(n int, m *message) string { return fmt.Sprintf("%d %s", n, m.uidl) })
}

// listing is LIST and UIDL: one message on one line, or all messages not
// deleted in a multi-line reply.
func (s *session) listing(arg string, header func(count int) string, line func(n int, m *message) string) error {
	f, err := fields(arg, 0, 1)
	if err != nil {
		return err
	}
	if len(f) == 1 {
		n, m, err := s.lookup(f[0])
		if err != nil {
			return err
		}
		s.writeLine("+OK " + line(n, m))
		return nil
	}
	count, _ := s.undeleted()
	s.writeLine(header(count))
	for i := range s.msgs {
		if !s.msgs[i].deleted {
			s.writeLine(line(i+1, &s.msgs[i]))
		}
	}
	s.writeLine(".")
	return nil
}

func (s *session) cmdRETR(arg string) error {
	f, err := fields(arg, 1, 1)
	if err != nil {
		return err
	}
	_, m, err := s.lookup(f[0])
	if err != nil {
		return err
	}
	body, err := s.mbox.OpenMessage(s.ctx, m.uid)
	if err != nil {
		return err
	}
	defer body.Close()
	s.writef("+OK %d octets", m.size)
	if err := s.sendBody(body, -1); err != nil {
		return err
	}
	m.retrieved = true
	return nil
}

// cmdTOP sends the header and the first n body lines (RFC 1939 §7). It does
// not count as a retrieval: no \Seen, as in Dovecot.
func (s *session) cmdTOP(arg string) error {
	f, err := fields(arg, 2, 2)
	if err != nil {
		return err
	}
	_, m, err := s.lookup(f[0])
	if err != nil {
		return err
	}
	lines, ok := parseNumber(f[1])
	if !ok {
		return errBad("Invalid number of lines.")
	}
	body, err := s.mbox.OpenMessage(s.ctx, m.uid)
	if err != nil {
		return err
	}
	defer body.Close()
	s.writeLine("+OK")
	return s.sendBody(body, lines)
}

// sendBody sends a message as a multi-line reply, dot-stuffed by
// textproto's DotWriter. bodyLines < 0 sends all of it; otherwise the
// header, the empty line after it, and that many body lines. Once the
// "+OK" is out no "-ERR" can follow, so any failure ends the session.
func (s *session) sendBody(body io.Reader, bodyLines int) error {
	dw := textproto.NewWriter(s.bw).DotWriter()
	var err error
	if bodyLines < 0 {
		_, err = io.Copy(dw, body)
	} else {
		err = copyTop(dw, body, bodyLines)
	}
	if cerr := dw.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return &fatalError{fmt.Errorf("sending message: %w", err)}
	}
	return nil
}

// copyTop copies the header, the empty line that ends it, and n more lines.
// Lines longer than the buffer are copied in pieces, so the default 4 KiB
// buffer will do: clients send TOP for every message to scan headers, and
// a bigger one would be garbage per message. (store.Body already reads
// the file in big chunks.)
func copyTop(w io.Writer, r io.Reader, n int) error {
	br := bufio.NewReader(r)
	inHeader, atLineStart := true, true
	for inHeader || n > 0 {
		chunk, err := br.ReadSlice('\n')
		if len(chunk) > 0 {
			if _, werr := w.Write(chunk); werr != nil {
				return werr
			}
			complete := chunk[len(chunk)-1] == '\n'
			if complete {
				if inHeader {
					// The empty line ends the header.
					if atLineStart && (len(chunk) == 1 || len(chunk) == 2 && chunk[0] == '\r') {
						inHeader = false
					}
				} else {
					n--
				}
			}
			atLineStart = complete
		}
		switch {
		case err == io.EOF:
			return nil
		case err != nil && err != bufio.ErrBufferFull:
			return err
		}
	}
	return nil
}

func (s *session) cmdDELE(arg string) error {
	f, err := fields(arg, 1, 1)
	if err != nil {
		return err
	}
	_, m, err := s.lookup(f[0])
	if err != nil {
		return err
	}
	m.deleted = true
	s.writeLine("+OK Marked to be deleted.")
	return nil
}

// cmdRSET unmarks every deleted message and, as Dovecot does, forgets which
// were retrieved, so they do not get \Seen at QUIT.
func (s *session) cmdRSET(arg string) error {
	if _, err := fields(arg, 0, 0); err != nil {
		return err
	}
	for i := range s.msgs {
		s.msgs[i].deleted = false
		s.msgs[i].retrieved = false
	}
	s.writeLine("+OK")
	return nil
}

func (s *session) cmdNOOP(arg string) error {
	if _, err := fields(arg, 0, 0); err != nil {
		return err
	}
	s.writeLine("+OK")
	return nil
}

// endTransaction closes the mailbox and drops the lock, without expunging.
func (s *session) endTransaction() {
	if s.mbox != nil {
		s.mbox.Close()
		s.mbox = nil
	}
	if s.unlock != nil {
		s.unlock()
		s.unlock = nil
	}
}
