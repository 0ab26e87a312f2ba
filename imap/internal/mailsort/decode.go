package mailsort

import (
	"bytes"
	"io"
	"mime"
	"strings"
	"unicode/utf8"

	"github.com/emersion/go-message/charset"
)

// wordDecoder decodes RFC 2047 encoded-words through go-message's charset
// tables. A charset nobody knows must not lose the rest of the field (the
// standard decoder gives up on the whole value on the first conversion
// error), so its text is read as Windows-1252, which keeps ASCII intact.
var wordDecoder = &mime.WordDecoder{CharsetReader: charsetReader}

func charsetReader(name string, input io.Reader) (io.Reader, error) {
	r, err := charset.Reader(name, input)
	if err != nil {
		return charset.Reader("windows-1252", input)
	}
	return r, nil
}

// decodeText turns a raw header field value into the UTF-8 text RFC 5256
// §2.1 step (1) and RFC 5957 §3 compare: encoded-words decoded, folding
// and tabs turned into spaces, runs of spaces collapsed. Raw 8-bit text
// that is not UTF-8 is taken as Windows-1252 (the usual legacy charset of
// unlabelled headers), and whatever still is not UTF-8 becomes U+FFFD, so
// keys are always valid UTF-8.
func decodeText(raw string) string {
	if !utf8.ValidString(raw) {
		raw = latin1ish(raw)
	}
	s := raw
	if strings.Contains(raw, "=?") {
		if d, err := wordDecoder.DecodeHeader(raw); err == nil {
			s = d
		}
	}
	return collapseSpace(strings.ToValidUTF8(s, "\uFFFD"))
}

// latin1ish converts Windows-1252 bytes to UTF-8.
func latin1ish(s string) string {
	r, err := charset.Reader("windows-1252", strings.NewReader(s))
	if err == nil {
		if b, err := io.ReadAll(r); err == nil {
			return string(b)
		}
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// collapseSpace maps TAB, CR and LF to SP and runs of SP to one, per
// RFC 5256 §2.1 step (1). It returns s itself when nothing changes, which
// is the common case.
func collapseSpace(s string) string {
	clean := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\t' || c == '\r' || c == '\n' || (c == ' ' && i+1 < len(s) && isSpace(s[i+1])) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b bytes.Buffer
	b.Grow(len(s))
	prevSpace := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isSpace(c) {
			if !prevSpace {
				b.WriteByte(' ')
			}
			prevSpace = true
			continue
		}
		prevSpace = false
		b.WriteByte(c)
	}
	return b.String()
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }
