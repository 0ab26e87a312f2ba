package store

import (
	"encoding/base64"
	"errors"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// Folder names on disk and in the subscriptions file are in the modified
// UTF-7 of RFC 3501 §5.1.3, as Dovecot writes them; IMAP uses the same
// encoding for names on the wire, and takes it from here. go-imap has a
// codec, but only in an internal package.

// mutf7 is RFC 3501's base64 alphabet: "," in place of "/".
var mutf7 = base64.NewEncoding("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,").WithPadding(base64.NoPadding)

var errBadMUTF7 = errors.New("store: invalid modified UTF-7")

// EncodeMUTF7 turns a UTF-8 string into modified UTF-7 (RFC 3501 §5.1.3).
func EncodeMUTF7(s string) string {
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
		b.WriteString(mutf7.EncodeToString(buf))
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

// DecodeMUTF7 turns modified UTF-7 into UTF-8. It refuses what no encoder
// produces (bare 8-bit bytes, control characters, unterminated or empty
// shifts, bad base64, encoded printable ASCII, broken UTF-16), so that one
// name has exactly one spelling.
func DecodeMUTF7(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e {
			return "", errBadMUTF7
		}
		if c != '&' {
			b.WriteByte(c)
			continue
		}
		end := strings.IndexByte(s[i+1:], '-')
		if end < 0 {
			return "", errBadMUTF7
		}
		enc := s[i+1 : i+1+end]
		i += end + 1
		if enc == "" {
			b.WriteByte('&')
			continue
		}
		raw, err := mutf7.DecodeString(enc)
		if err != nil || len(raw)%2 != 0 {
			return "", errBadMUTF7
		}
		u := make([]uint16, len(raw)/2)
		for j := range u {
			u[j] = uint16(raw[2*j])<<8 | uint16(raw[2*j+1])
		}
		for _, r := range utf16.Decode(u) {
			if r == utf8.RuneError || (r >= 0x20 && r <= 0x7e) {
				return "", errBadMUTF7
			}
			b.WriteRune(r)
		}
	}
	return b.String(), nil
}
