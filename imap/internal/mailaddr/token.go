package mailaddr

// The RFC 5322 §3.2 lexical tokens of structured header fields.
const (
	tokAtom    = iota // atext run; also any byte that fits nowhere else
	tokQuoted         // quoted-string, unquoted
	tokComment        // comment, outer parentheses removed
	tokLiteral        // domain-literal, brackets kept
	tokSpecial        // one of < > @ , ; : .
)

type token struct {
	kind  int
	text  string
	space bool // preceded by whitespace or a comment
}

// tokenize splits a structured field value into tokens. It never fails:
// an unterminated quoted string, comment or domain literal runs to the end
// of the value, and a stray ")" or "]" is read as an atom. Quoted-pairs
// are undone in quoted strings and comments.
func tokenize(s string) []token {
	toks := make([]token, 0, 16)
	space := false
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case isSpace(c):
			space = true
			i++
			continue
		case c == '"':
			text, n := Quoted(s[i+1:])
			toks = append(toks, token{tokQuoted, text, space})
			i += 1 + n
		case c == '(':
			text, n := Comment(s[i+1:])
			toks = append(toks, token{tokComment, text, space})
			i += 1 + n
			space = true
			continue
		case c == '[':
			j := i + 1
			for j < len(s) && s[j] != ']' {
				j++
			}
			if j < len(s) {
				j++
			}
			toks = append(toks, token{tokLiteral, s[i:j], space})
			i = j
		case isSpecial(c):
			toks = append(toks, token{tokSpecial, s[i : i+1], space})
			i++
		default:
			j := i + 1
			for j < len(s) && !isSpace(s[j]) && !isSpecial(s[j]) && s[j] != '"' && s[j] != '(' && s[j] != '[' {
				j++
			}
			toks = append(toks, token{tokAtom, s[i:j], space})
			i = j
		}
		space = false
	}
	return toks
}

func isSpecial(c byte) bool {
	switch c {
	case '<', '>', '@', ',', ';', ':', '.':
		return true
	}
	return false
}

// Quoted reads the rest of a quoted-string whose opening quote is just
// before s, up to the closing quote: its text with quoted-pairs undone and
// folding removed, and n, the bytes consumed (closing quote included; all
// of s if it is unterminated).
func Quoted(s string) (text string, n int) {
	var b []byte
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			if i+1 < len(s) {
				i++
			}
			if s[i] == '\r' || s[i] == '\n' {
				continue // a quoted-pair cannot quote folding
			}
		case '"':
			return string(b), i + 1
		case '\r', '\n':
			continue // folding inside quotes is not content
		}
		b = append(b, s[i])
	}
	return string(b), len(s)
}

// Comment reads the rest of a possibly nested comment whose opening
// parenthesis is just before s: its text (inner parentheses kept,
// quoted-pairs undone) and n, the bytes consumed.
func Comment(s string) (text string, n int) {
	var b []byte
	depth := 1
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			if i+1 < len(s) {
				i++
			}
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 {
				return string(b), i + 1
			}
		}
		b = append(b, s[i])
	}
	return string(b), len(s)
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }
