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
// line: the field's name, lower case ("" for a line that is not a field:
// no colon), and its bytes as written, continuation lines and line ends
// included. Continuation lines before the first field belong to none and
// are skipped. fn returns false to stop.
func walkFields(raw []byte, fn func(name string, field []byte) bool) {
	start, name := -1, ""
	off := 0
	for off < len(raw) {
		line := raw[off:]
		if i := bytes.IndexByte(line, '\n'); i >= 0 {
			line = line[:i+1]
		}
		if len(bytes.TrimRight(line, "\r\n")) == 0 {
			break
		}
		if line[0] != ' ' && line[0] != '\t' {
			if start >= 0 && !fn(name, raw[start:off]) {
				return
			}
			start, name = off, ""
			if n, _, ok := bytes.Cut(line, []byte(":")); ok {
				name = lowerName(string(bytes.TrimRight(n, " \t")))
			}
		}
		off += len(line)
	}
	if start >= 0 {
		fn(name, raw[start:off])
	}
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
	want := make(map[string]bool, len(names))
	for _, n := range names {
		want[lowerName(n)] = true
	}
	var out []byte
	walkFields(raw, func(name string, field []byte) bool {
		if want[name] != not {
			out = append(out, field...)
		}
		return true
	})
	return append(out, "\r\n"...)
}

// keptFieldsOf is what the header item keeps of a raw header: the fields
// named in headerFields or extra. ok is false if they are too big to keep.
func keptFieldsOf(raw []byte, extra []string) (kept []byte, ok bool) {
	walkFields(raw, func(name string, field []byte) bool {
		if name != "" && (headerFieldSet[name] || containsString(extra, name)) {
			kept = append(kept, field...)
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
