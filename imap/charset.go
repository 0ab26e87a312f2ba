package imap

import (
	"bytes"
	"fmt"
	"io"
	"mime"
	"strings"
	"unicode/utf8"
)

// Charset conversion for SEARCH, with the standard library only: UTF-8 and
// US-ASCII, ISO-8859-1, ISO-8859-15 and Windows-1252, the charsets of
// nearly all Western mail. Text in another charset is searched as if it
// were Windows-1252, which keeps its ASCII findable.

var cp1252High = [32]rune{
	'€', 0x81, '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', 0x8d, 'Ž', 0x8f,
	0x90, '‘', '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', 0x9d, 'ž', 'Ÿ',
}

var latin9 = map[byte]rune{0xa4: '€', 0xa6: 'Š', 0xa8: 'š', 0xb4: 'Ž', 0xb8: 'ž', 0xbc: 'Œ', 0xbd: 'œ', 0xbe: 'Ÿ'}

// toUTF8 converts text in charset to UTF-8.
func toUTF8(charset string, data []byte) string {
	cs := strings.ToLower(strings.Trim(charset, `" `))
	switch cs {
	case "", "utf-8", "utf8", "us-ascii", "ascii":
		if utf8.Valid(data) {
			return string(data)
		}
		return strings.ToValidUTF8(string(data), "\uFFFD")
	}
	var b strings.Builder
	b.Grow(len(data))
	for _, c := range data {
		switch {
		case c < 0x80:
			b.WriteByte(c)
		case cs == "iso-8859-15" || cs == "latin-9" || cs == "latin9":
			if r, ok := latin9[c]; ok {
				b.WriteRune(r)
			} else {
				b.WriteRune(rune(c))
			}
		case c < 0xa0 && cs != "iso-8859-1" && cs != "latin1" && cs != "latin-1":
			b.WriteRune(cp1252High[c-0x80])
		default:
			b.WriteRune(rune(c))
		}
	}
	return b.String()
}

var wordDecoder = &mime.WordDecoder{
	CharsetReader: func(charset string, input io.Reader) (io.Reader, error) {
		data, err := io.ReadAll(input)
		if err != nil {
			return nil, fmt.Errorf("charset %s: %w", charset, err)
		}
		return bytes.NewReader([]byte(toUTF8(charset, data))), nil
	},
}

// decodeHeader undoes RFC 2047 encoded-words; raw 8-bit text is taken as
// UTF-8.
func decodeHeader(v string) string {
	if d, err := wordDecoder.DecodeHeader(v); err == nil {
		v = d
	}
	if !utf8.ValidString(v) {
		v = toUTF8("windows-1252", []byte(v))
	}
	return v
}
