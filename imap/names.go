package imap

import (
	"errors"
	"strings"
	"unicode/utf8"

	"github.com/letterbox-mail/letterbox/store"
)

// Mailbox names on the wire: modified UTF-7 (RFC 3501 §5.1.3) until the
// client enables UTF-8 (RFC 6855 §3, RFC 9051 §5.1), then UTF-8 with "&"
// an ordinary character. The store's names are UTF-8.

// decodeMUTF7 turns a name from the client into UTF-8: modified UTF-7
// (store.DecodeMUTF7), or, for a name with 8-bit text and no shift, that
// text if it is valid UTF-8: clients that assume IMAP4rev2 without
// enabling it (go-imap's imapclient among them) send names so.
func decodeMUTF7(s string) (string, error) {
	if !strings.ContainsRune(s, '&') && utf8.ValidString(s) {
		for i := 0; i < len(s); i++ {
			if c := s[i]; c < 0x20 || c == 0x7f {
				return "", errBadName
			}
		}
		return s, nil
	}
	n, err := store.DecodeMUTF7(s)
	if err != nil {
		return "", errBadName
	}
	return n, nil
}

var errBadName = errors.New("imap: mailbox name is not valid modified UTF-7")

// decodeName turns a mailbox name from the client into the store's form.
// A name that is not valid in the current encoding gets NO (it names no
// mailbox), never BAD: it is a well-formed string.
func (s *session) decodeName(raw string) (string, error) {
	var name string
	if s.utf8Names() {
		if !utf8.ValidString(raw) {
			return "", no("CANNOT", "Mailbox name is not valid UTF-8")
		}
		name = raw
	} else {
		n, err := decodeMUTF7(raw)
		if err != nil {
			return "", no("CANNOT", "Mailbox name is not valid modified UTF-7")
		}
		name = n
	}
	return store.CanonicalName(name), nil
}

// mailbox reads a mailbox name argument and decodes it.
func (s *session) mailbox(p *parser) (string, error) {
	return s.decodeName(p.astring())
}

// writeName writes a mailbox name: INBOX as an atom, others as strings.
func (s *session) writeName(name string) {
	o := &s.c.out
	if store.IsInbox(name) {
		o.atom("INBOX")
		return
	}
	if !s.utf8Names() {
		name = store.EncodeMUTF7(name)
	}
	o.str(name)
}
