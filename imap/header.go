package imap

import (
	"bytes"
	"strings"
)

// Raw header fields, as HEADER.FIELDS (RFC 3501 §6.4.5), SEARCH HEADER
// (§6.4.4) and the header item of the cache see them. All three walk a
// header the same way (walkFields), so the fields the cache keeps answer
// exactly as the whole header would.

// walkFields calls fn with each field of a raw header, up to its blank
// line: the field's name as written (trailing white space trimmed; nil for
// a line that is not a field: no colon), and its bytes as written,
// continuation lines and line ends included. Names compare as
// strings.ToLower makes them (sameName). Continuation lines before the
// first field belong to none and are skipped. fn returns false to stop.
func walkFields(raw []byte, fn func(name, field []byte) bool) {
	start := -1
	var name []byte
	off := 0
	for off < len(raw) {
		end := len(raw)
		if i := bytes.IndexByte(raw[off:], '\n'); i >= 0 {
			end = off + i + 1
		}
		line := raw[off:end]
		if blankLine(line) {
			break
		}
		if line[0] != ' ' && line[0] != '\t' {
			if start >= 0 && !fn(name, raw[start:off]) {
				return
			}
			start, name = off, nil
			if i := bytes.IndexByte(line, ':'); i >= 0 {
				n := line[:i]
				for len(n) > 0 && (n[len(n)-1] == ' ' || n[len(n)-1] == '\t') {
					n = n[:len(n)-1]
				}
				name = n
			}
		}
		off = end
	}
	if start >= 0 {
		fn(name, raw[start:off])
	}
}

// blankLine reports whether a line is nothing but CR and LF.
func blankLine(l []byte) bool {
	for _, c := range l {
		if c != '\r' && c != '\n' {
			return false
		}
	}
	return true
}

// sameName reports whether strings.ToLower makes a field name and a name
// equal, without allocating for ASCII names.
func sameName(field []byte, name string) bool {
	if len(field) == len(name) {
		ascii := true
		for i := 0; i < len(field); i++ {
			a, b := field[i], name[i]
			if a >= 0x80 || b >= 0x80 {
				ascii = false
				break
			}
			if a != b && lowerASCII(a) != lowerASCII(b) {
				return false
			}
		}
		if ascii {
			return true
		}
	} else if asciiOnly(field) && asciiOnlyString(name) {
		return false
	}
	return strings.ToLower(string(field)) == strings.ToLower(name)
}

func lowerASCII(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func asciiOnly(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return false
		}
	}
	return true
}

func asciiOnlyString(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// fieldValue is a field's value: after the colon, unfolded (line ends
// removed), leading white space trimmed.
func fieldValue(field []byte) string {
	_, v, _ := bytes.Cut(field, []byte(":"))
	var b strings.Builder
	b.Grow(len(v))
	for len(v) > 0 {
		line := v
		if i := bytes.IndexByte(v, '\n'); i >= 0 {
			line = v[:i+1]
		}
		v = v[len(line):]
		b.Write(bytes.TrimRight(line, "\r\n"))
	}
	return strings.TrimLeft(b.String(), " \t")
}

// lowerName is strings.ToLower, without allocating for the usual ASCII
// names that are lower case already.
func lowerName(s string) string {
	upper := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x80 {
			return strings.ToLower(s)
		}
		upper = upper || c >= 'A' && c <= 'Z'
	}
	if !upper {
		return s
	}
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// filterHeader keeps (or, with not, drops) the named fields of a raw
// header, in their order and exactly as written, and ends it with the
// blank line (RFC 3501 §6.4.5 HEADER.FIELDS).
func filterHeader(raw []byte, names []string, not bool) []byte {
	var out []byte
	walkFields(raw, func(name, field []byte) bool {
		want := false
		if name != nil {
			for _, n := range names {
				if sameName(name, n) {
					want = true
					break
				}
			}
		}
		if want != not {
			out = append(out, field...)
		}
		return true
	})
	return append(out, "\r\n"...)
}

// keptFieldsOf is what the header item keeps of a raw header: the fields
// named in headerFields or extra (lower case), encoded (encodeField). ok
// is false if they are too big to keep.
func keptFieldsOf(raw []byte, extra []string) (kept []byte, ok bool) {
	walkFields(raw, func(name, field []byte) bool {
		if name != nil {
			l := lowerName(string(name))
			if headerFieldSet[l] || containsString(extra, l) {
				kept = encodeField(kept, l, field)
			}
		}
		return len(kept) <= maxCachedFields
	})
	if len(kept) > maxCachedFields {
		return nil, false
	}
	return kept, true
}

func containsString(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}
