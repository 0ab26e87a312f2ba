package imap

import (
	"html"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// PREVIEW (RFC 8970): the start of a message's text, for a client's
// message list. It comes from the first text/plain part, else the first
// text/html part with its markup removed; quoted lines are skipped and
// white space collapsed. RFC 8970 §2 allows at most 256 characters; like
// Dovecot we send up to 200.

const previewLen = 200

func (s *session) preview(src msgSource, info *msgInfo) (string, error) {
	part := findText(info.root, "plain")
	if part == nil {
		part = findText(info.root, "html")
	}
	if part == nil {
		return "", nil
	}
	n := min(part.end-part.bodyOff, 64<<10)
	if n <= 0 {
		return "", nil
	}
	raw, err := readRange(s.ctx, src.mbox, src.key.uid, part.bodyOff, n)
	if err != nil {
		return "", err
	}
	cte := strings.ToLower(strings.TrimSpace(stripComments(part.header("content-transfer-encoding"))))
	if cte == "base64" || cte == "quoted-printable" {
		raw = decodeCTE(cte, raw)
	}
	text := toUTF8(part.param("charset"), raw)
	if part.sub == "html" {
		text = htmlText(text)
	}
	return previewText(text), nil
}

// findText finds the first text/<sub> leaf, depth first, not looking into
// attached messages.
func findText(p *mimePart, sub string) *mimePart {
	if p.isMultipart() {
		for _, c := range p.children {
			if t := findText(c, sub); t != nil {
				return t
			}
		}
		return nil
	}
	if p.typ == "text" && p.sub == sub && !strings.HasPrefix(strings.ToLower(p.header("content-disposition")), "attachment") {
		return p
	}
	return nil
}

var (
	htmlDropRE = regexp.MustCompile(`(?is)<(script|style|head)\b.*?</(script|style|head)\s*>`)
	htmlTagRE  = regexp.MustCompile(`(?s)<[^>]*>`)
)

func htmlText(s string) string {
	s = htmlDropRE.ReplaceAllString(s, " ")
	s = htmlTagRE.ReplaceAllString(s, " ")
	return html.UnescapeString(s)
}

// previewText collapses white space, skips quoted lines and cuts.
func previewText(s string) string {
	var b strings.Builder
	space := false
	n := 0
	for _, line := range strings.Split(s, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), ">") {
			continue
		}
		for _, r := range line {
			if unicode.IsSpace(r) || unicode.IsControl(r) || r == utf8.RuneError {
				space = b.Len() > 0
				continue
			}
			if space {
				b.WriteByte(' ')
				n++
				space = false
			}
			if n >= previewLen {
				return b.String()
			}
			b.WriteRune(r)
			n++
		}
		space = b.Len() > 0
	}
	return b.String()
}
