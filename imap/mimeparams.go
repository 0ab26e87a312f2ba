package imap

import "strings"

// Header values of MIME: Content-Type and Content-Disposition with their
// parameters (RFC 2045, RFC 2183, RFC 2231), and RFC 822 comments.

// contentType sets typ, sub and params from Content-Type, with the RFC 2045
// §5.2 default (text/plain; charset=us-ascii), or message/rfc822 in a
// multipart/digest (RFC 2046 §5.1.5).
func (p *mimePart) contentType(inDigest bool) {
	v := p.header("content-type")
	if v != "" {
		typ, sub, params, ok := parseContentType(v)
		if ok {
			p.typ, p.sub, p.params = typ, sub, params
			return
		}
	}
	if inDigest {
		p.typ, p.sub = "message", "rfc822"
		return
	}
	p.typ, p.sub = "text", "plain"
	p.params = []param{{"charset", "us-ascii"}}
}

// parseContentType parses "type/subtype; params".
func parseContentType(v string) (typ, sub string, params []param, ok bool) {
	v = stripComments(v)
	mt, rest, _ := strings.Cut(v, ";")
	typ, sub, found := strings.Cut(strings.TrimSpace(mt), "/")
	typ, sub = strings.ToLower(strings.TrimSpace(typ)), strings.ToLower(strings.TrimSpace(sub))
	if !found || !isToken(typ) || !isToken(sub) {
		return "", "", nil, false
	}
	return typ, sub, parseParams(rest), true
}

// parseDisposition parses "inline; filename=...".
func parseDisposition(v string) (string, []param) {
	v = stripComments(v)
	d, rest, _ := strings.Cut(v, ";")
	d = strings.TrimSpace(d)
	if d == "" {
		return "", nil
	}
	return d, parseParams(rest)
}

// parseParams parses "; k=v; k*0*=...; k*1*=..." the way Dovecot does:
// continuations are joined into one parameter named "k" (or "k*" when
// extended), the value left as it is, neither charset-converted nor
// percent-decoded (RFC 2231 §3, §4).
func parseParams(s string) []param {
	var out []param
	joined := map[string]int{}
	for s != "" {
		s = strings.TrimLeft(s, "; \t\r\n")
		if s == "" {
			break
		}
		eq := strings.IndexAny(s, "=;")
		if eq < 0 || s[eq] == ';' {
			if eq < 0 {
				break
			}
			s = s[eq:]
			continue
		}
		key := strings.ToLower(strings.TrimSpace(s[:eq]))
		s = strings.TrimLeft(s[eq+1:], " \t")
		var val string
		if strings.HasPrefix(s, `"`) {
			var b strings.Builder
			i := 1
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				b.WriteByte(s[i])
			}
			val = b.String()
			s = s[min(i+1, len(s)):]
			if j := strings.IndexByte(s, ';'); j >= 0 {
				s = s[j:]
			} else {
				s = ""
			}
		} else {
			j := strings.IndexByte(s, ';')
			if j < 0 {
				j = len(s)
			}
			val = strings.TrimSpace(s[:j])
			s = s[j:]
		}
		if key == "" {
			continue
		}
		// RFC 2231 continuation: name*0, name*1*, ...
		if star := strings.IndexByte(key, '*'); star > 0 {
			base, rest := key[:star], key[star+1:]
			ext := strings.HasSuffix(rest, "*")
			num := strings.TrimSuffix(rest, "*")
			if num != "" && isDigits(num) {
				name := base
				if ext || (num != "0" && joinedExt(out, joined, base)) {
					name = base + "*"
				}
				if i, ok := joined[base]; ok {
					out[i].value += val
					if ext && !strings.HasSuffix(out[i].key, "*") {
						out[i].key += "*"
					}
					continue
				}
				joined[base] = len(out)
				out = append(out, param{name, val})
				continue
			}
		}
		out = append(out, param{key, val})
	}
	return out
}

func joinedExt(out []param, joined map[string]int, base string) bool {
	i, ok := joined[base]
	return ok && strings.HasSuffix(out[i].key, "*")
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`()<>@,;:\"/[]?=`, c) >= 0 {
			return false
		}
	}
	return true
}

// stripComments removes RFC 822 comments outside quoted strings.
func stripComments(s string) string {
	if !strings.Contains(s, "(") {
		return s
	}
	var b strings.Builder
	depth, quoted := 0, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quoted:
			b.WriteByte(c)
			if c == '\\' && i+1 < len(s) {
				i++
				b.WriteByte(s[i])
			} else if c == '"' {
				quoted = false
			}
		case c == '(':
			depth++
		case c == ')' && depth > 0:
			depth--
		case depth > 0:
			if c == '\\' {
				i++
			}
		case c == '"':
			quoted = true
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
