package imap

import (
	"encoding/base64"
	"errors"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/letterbox-mail/letterbox/store"
)

// Mailbox names on the wire: modified UTF-7 (RFC 3501 §5.1.3) until the
// client enables UTF-8 (RFC 6855 §3, RFC 9051 §5.1), then UTF-8 with "&"
// an ordinary character. The store's names are UTF-8.

var mutf7Enc = base64.NewEncoding("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,").WithPadding(base64.NoPadding)

var errBadName = errors.New("imap: mailbox name is not valid modified UTF-7")

// encodeMUTF7 turns UTF-8 into modified UTF-7.
func encodeMUTF7(s string) string {
	var b strings.Builder
	var pending []rune
	flush := func() {
		if len(pending) == 0 {
			return
		}
		u := utf16.Encode(pending)
		buf := make([]byte, 0, 2*len(u))
		for _, c := range u {
			buf = append(buf, byte(c>>8), byte(c))
		}
		b.WriteByte('&')
		b.WriteString(mutf7Enc.EncodeToString(buf))
		b.WriteByte('-')
		pending = pending[:0]
	}
	for _, r := range s {
		if r >= 0x20 && r <= 0x7e {
			flush()
			if r == '&' {
				b.WriteString("&-")
			} else {
				b.WriteRune(r)
			}
			continue
		}
		pending = append(pending, r)
	}
	flush()
	return b.String()
}

// decodeMUTF7 turns modified UTF-7 into UTF-8. It refuses what RFC 3501
// §5.1.3 does not allow: control bytes, a shift that does not end, bad
// base64, printable ASCII encoded, broken UTF-16. 8-bit text is taken as
// it is if it is valid UTF-8: clients that assume IMAP4rev2 without
// enabling it (go-imap's imapclient among them) send names so.
func decodeMUTF7(s string) (string, error) {
	if !utf8.ValidString(s) {
		return "", errBadName
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == 0x7f {
			return "", errBadName
		}
		if c != '&' {
			b.WriteByte(c)
			continue
		}
		j := strings.IndexByte(s[i+1:], '-')
		if j < 0 {
			return "", errBadName
		}
		enc := s[i+1 : i+1+j]
		i += j + 1
		if enc == "" {
			b.WriteByte('&')
			continue
		}
		raw, err := mutf7Enc.DecodeString(enc)
		if err != nil || len(raw)%2 != 0 {
			return "", errBadName
		}
		u := make([]uint16, len(raw)/2)
		for k := range u {
			u[k] = uint16(raw[2*k])<<8 | uint16(raw[2*k+1])
		}
		for _, r := range utf16.Decode(u) {
			if r == utf8.RuneError || (r >= 0x20 && r <= 0x7e) {
				return "", errBadName
			}
			b.WriteRune(r)
		}
	}
	return b.String(), nil
}

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
		name = encodeMUTF7(name)
	}
	o.str(name)
}
