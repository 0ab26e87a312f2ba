package imap

import (
	"bytes"
	"fmt"
	"io"
	"mime"
	"strings"
	"unicode/utf8"

	"github.com/emersion/go-message/charset"
)

// Charset conversion for SEARCH and header decoding, through go-message's
// charset package (every charset golang.org/x/text knows). Text in a
// charset nobody knows is read as Windows-1252, which keeps its ASCII
// findable, and bad bytes become U+FFFD.

// toUTF8 converts text in charset to UTF-8.
func toUTF8(cs string, data []byte) string {
	cs = strings.ToLower(strings.Trim(cs, `" `))
	switch cs {
	case "", "utf-8", "utf8", "us-ascii", "ascii":
		return strings.ToValidUTF8(string(data), "\uFFFD")
	}
	r, err := charset.Reader(cs, bytes.NewReader(data))
	if err != nil {
		r, _ = charset.Reader("windows-1252", bytes.NewReader(data))
	}
	out, err := io.ReadAll(r)
	if err != nil {
		return strings.ToValidUTF8(string(data), "\uFFFD")
	}
	return strings.ToValidUTF8(string(out), "\uFFFD")
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
