package imap

import (
	"fmt"
	"strconv"
	"strings"
)

// A small parser of IMAP responses, to compare ours with Dovecot's
// recorded ones value by value: a quoted string and a literal with the same
// content are the same string.

type tok struct {
	kind byte // 'a' atom, 's' string, 'n' NIL, 'l' list
	s    string
	l    []tok
}

func (t tok) String() string {
	switch t.kind {
	case 'n':
		return "NIL"
	case 's':
		return strconv.Quote(t.s)
	case 'l':
		var parts []string
		for _, c := range t.l {
			parts = append(parts, c.String())
		}
		return "(" + strings.Join(parts, " ") + ")"
	}
	return t.s
}

// splitResponses splits a recorded session into responses, keeping
// literals ("{n}\r\n" + n bytes) inside the response they belong to.
func splitResponses(text string) []string {
	var out []string
	var cur strings.Builder
	for len(text) > 0 {
		i := strings.Index(text, "\r\n")
		if i < 0 {
			cur.WriteString(text)
			break
		}
		line := text[:i]
		text = text[i+2:]
		cur.WriteString(line)
		if m := literalRE.FindStringSubmatch(line); m != nil {
			n, _ := strconv.Atoi(m[1])
			cur.WriteString("\r\n")
			cur.WriteString(text[:n])
			text = text[n:]
			continue
		}
		out = append(out, cur.String())
		cur.Reset()
	}
	if cur.Len() > 0 {
		out = append(out, cur.String())
	}
	return out
}

type tokParser struct {
	s string
	i int
}

// parseTokens parses a response (or the part of it after a prefix).
func parseTokens(s string) ([]tok, error) {
	p := &tokParser{s: s}
	var out []tok
	for {
		p.skipSpace()
		if p.i >= len(p.s) {
			return out, nil
		}
		t, err := p.value()
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
}

func (p *tokParser) skipSpace() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\r' || p.s[p.i] == '\n') {
		p.i++
	}
}

func (p *tokParser) value() (tok, error) {
	if p.i >= len(p.s) {
		return tok{}, fmt.Errorf("unexpected end")
	}
	switch c := p.s[p.i]; {
	case c == '(':
		p.i++
		var l []tok
		for {
			p.skipSpace()
			if p.i >= len(p.s) {
				return tok{}, fmt.Errorf("unbalanced (")
			}
			if p.s[p.i] == ')' {
				p.i++
				return tok{kind: 'l', l: l}, nil
			}
			v, err := p.value()
			if err != nil {
				return tok{}, err
			}
			l = append(l, v)
		}
	case c == '"':
		var b strings.Builder
		p.i++
		for p.i < len(p.s) && p.s[p.i] != '"' {
			if p.s[p.i] == '\\' {
				p.i++
			}
			b.WriteByte(p.s[p.i])
			p.i++
		}
		p.i++
		return tok{kind: 's', s: b.String()}, nil
	case c == '{' || (c == '~' && p.i+1 < len(p.s) && p.s[p.i+1] == '{'):
		if c == '~' {
			p.i++
		}
		j := strings.IndexByte(p.s[p.i:], '}')
		n, err := strconv.Atoi(p.s[p.i+1 : p.i+j])
		if err != nil {
			return tok{}, err
		}
		p.i += j + 3 // "}\r\n"
		s := p.s[p.i : p.i+n]
		p.i += n
		return tok{kind: 's', s: s}, nil
	default:
		start := p.i
		depth := 0
		for p.i < len(p.s) {
			ch := p.s[p.i]
			if ch == '[' {
				depth++
			} else if ch == ']' {
				depth--
			} else if depth == 0 && (ch == ' ' || ch == '(' || ch == ')' || ch == '\r') {
				break
			}
			p.i++
		}
		a := p.s[start:p.i]
		if a == "NIL" {
			return tok{kind: 'n'}, nil
		}
		return tok{kind: 'a', s: a}, nil
	}
}

// fetchItems parses "* n FETCH (k v k v ...)" into its items.
func fetchItems(resp string) (map[string]tok, error) {
	i := strings.Index(resp, " FETCH ")
	if i < 0 {
		return nil, fmt.Errorf("not a FETCH response: %q", resp)
	}
	toks, err := parseTokens(resp[i+len(" FETCH "):])
	if err != nil {
		return nil, err
	}
	if len(toks) != 1 || toks[0].kind != 'l' {
		return nil, fmt.Errorf("bad FETCH response: %q", resp)
	}
	items := make(map[string]tok)
	l := toks[0].l
	for j := 0; j+1 < len(l); j += 2 {
		items[strings.ToUpper(l[j].s)] = l[j+1]
	}
	return items, nil
}
