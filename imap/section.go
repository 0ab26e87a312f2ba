package imap

import (
	"bytes"
	"encoding/base64"
	"io"
	"mime/quotedprintable"
	"strings"

	"github.com/emersion/go-imap/v2"
)

// section is what to send for one BODY[...] or BINARY[...] item: a range
// of the message, or bytes made in memory.
type section struct {
	data   []byte
	inMem  bool
	off, n int64
}

func memSection(b []byte) section { return section{data: b, inMem: true} }

func (sec section) size() int64 {
	if sec.inMem {
		return int64(len(sec.data))
	}
	return sec.n
}

// partial cuts out <offset.size>; an offset past the end gives nothing
// (RFC 3501 §6.4.5, RFC 9051 §6.4.5).
func (sec section) partial(p *imap.SectionPartial) section {
	if p == nil {
		return sec
	}
	total := sec.size()
	off := min(max(p.Offset, 0), total)
	n := min(max(p.Size, 0), total-off)
	if sec.inMem {
		sec.data = sec.data[off : off+n]
	} else {
		sec.off += off
		sec.n = n
	}
	return sec
}

// findPart finds a part by its IMAP part number (RFC 3501 §6.4.5): the
// parts of a multipart are numbered from 1, a part that is not multipart
// has one part, itself, and the parts of a message/rfc822 part are those of
// the message in it.
func findPart(root *mimePart, path []int) *mimePart {
	cur := root
	for i, n := range path {
		if i > 0 && cur.msg != nil {
			cur = cur.msg
		}
		switch {
		case cur.isMultipart():
			if n < 1 || n > len(cur.children) {
				return nil
			}
			cur = cur.children[n-1]
		case n != 1:
			return nil
		}
	}
	return cur
}

// bodySection locates BODY[section] in a message, loaded with what
// needOf(bs) asks.
func (s *session) bodySection(src msgSource, info *msgInfo, bs *imap.FetchItemBodySection) (section, error) {
	var part, msg *mimePart
	if len(bs.Part) == 0 {
		part, msg = info.root, info.root
	} else {
		part = findPart(info.root, bs.Part)
		if part == nil {
			return memSection(nil), nil
		}
		msg = part.msg
	}
	var sec section
	switch bs.Specifier {
	case imap.PartSpecifierNone:
		if len(bs.Part) == 0 {
			sec = section{off: 0, n: info.size}
		} else {
			sec = section{off: part.bodyOff, n: part.end - part.bodyOff}
		}
	case imap.PartSpecifierMIME:
		if len(bs.Part) == 0 {
			return memSection(nil), nil
		}
		sec = section{off: part.hdrOff, n: part.bodyOff - part.hdrOff}
	case imap.PartSpecifierText:
		if msg == nil {
			return memSection(nil), nil
		}
		end := msg.end
		if msg == info.root {
			end = info.size
		}
		sec = section{off: msg.bodyOff, n: end - msg.bodyOff}
	case imap.PartSpecifierHeader:
		if msg == nil {
			return memSection(nil), nil
		}
		sec = section{off: msg.hdrOff, n: msg.bodyOff - msg.hdrOff}
		if len(bs.HeaderFields) > 0 || len(bs.HeaderFieldsNot) > 0 {
			if msg == info.root && info.head != nil && len(bs.HeaderFields) > 0 {
				return memSection(info.head.filter(bs.HeaderFields)).partial(bs.Partial), nil
			}
			raw := info.header
			if msg != info.root || raw == nil {
				var err error
				if raw, err = readRange(s.ctx, src.mbox, src.key.uid, sec.off, sec.n); err != nil {
					return section{}, err
				}
			}
			if len(bs.HeaderFields) > 0 {
				sec = memSection(filterHeader(raw, bs.HeaderFields, false))
			} else {
				sec = memSection(filterHeader(raw, bs.HeaderFieldsNot, true))
			}
		}
	default:
		return memSection(nil), nil
	}
	if !sec.inMem && (sec.n < 0 || sec.off+sec.n > info.size) {
		sec.n = max(0, min(sec.n, info.size-sec.off))
	}
	return sec.partial(bs.Partial), nil
}

// errUnknownCTE is RFC 3516's answer to BINARY of an encoding we cannot
// decode.
var errUnknownCTE = no("UNKNOWN-CTE", "Unknown Content-Transfer-Encoding")

// binarySection is BINARY[part] (RFC 3516): the part's body with its
// Content-Transfer-Encoding undone. BINARY[] is the whole message.
func (s *session) binarySection(src msgSource, info *msgInfo, path []int, partial *imap.SectionPartial) (section, error) {
	if len(path) == 0 {
		return section{off: 0, n: info.size}.partial(partial), nil
	}
	part := findPart(info.root, path)
	if part == nil {
		return memSection(nil), nil
	}
	raw := section{off: part.bodyOff, n: part.end - part.bodyOff}
	if part.isMultipart() || part.msg != nil {
		return raw.partial(partial), nil
	}
	switch cte := strings.ToLower(strings.TrimSpace(stripComments(part.header("content-transfer-encoding")))); cte {
	case "", "7bit", "8bit", "binary":
		return raw.partial(partial), nil
	case "base64", "quoted-printable":
		data, err := readRange(s.ctx, src.mbox, src.key.uid, raw.off, raw.n)
		if err != nil {
			return section{}, err
		}
		return memSection(decodeCTE(cte, data)).partial(partial), nil
	default:
		return section{}, errUnknownCTE
	}
}

// decodeCTE undoes base64 or quoted-printable, leniently: what cannot be
// decoded is skipped (base64) or kept as it is (quoted-printable).
func decodeCTE(cte string, data []byte) []byte {
	if cte == "base64" {
		clean := make([]byte, 0, len(data))
		for _, c := range data {
			if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/' {
				clean = append(clean, c)
			}
		}
		if len(clean)%4 == 1 {
			clean = clean[:len(clean)-1]
		}
		out, _ := base64.RawStdEncoding.DecodeString(string(clean))
		return out
	}
	out, err := io.ReadAll(quotedprintable.NewReader(bytes.NewReader(data)))
	if err != nil && len(out) == 0 {
		return data
	}
	return out
}
