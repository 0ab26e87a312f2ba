package mailsort

import "strings"

// BaseSubject returns the base subject of RFC 5256 §2.1 for a raw Subject
// field value (encoded-words and folding allowed), and whether extracting
// it removed a reply or forward marker: a subj-refwd ("Re:", "Fwd:",
// "Fw[list]:"), a "(fwd)" trailer or a "[fwd: ...]" wrapper. THREAD=
// REFERENCES needs that flag (RFC 5256 §3, "reply or forward").
//
// The result is UTF-8 and keeps its case; comparisons fold it (Compare).
// ABNF literals are case-insensitive (RFC 5234 §2.3), so "RE:", "FWD:" and
// "(FWD)" count as well.
func BaseSubject(raw string) (base string, replyOrFwd bool) {
	s := decodeText(raw) // step (1)
	for {
		// Step (2): strip every subj-trailer ("(fwd)" / WSP) at the end.
		for {
			if t := strings.TrimRight(s, " "); len(t) != len(s) {
				s = t
			} else if n := len(s) - len("(fwd)"); n >= 0 && strings.EqualFold(s[n:], "(fwd)") {
				s = s[:n]
				replyOrFwd = true
			} else {
				break
			}
		}
		// Steps (3) to (5): leaders, then a blob if something is left
		// after it, until neither applies.
		for {
			if s != "" && s[0] == ' ' {
				s = s[1:]
			} else if n := refwdLeaderLen(s); n > 0 {
				s = s[n:]
				replyOrFwd = true
			} else if n := blobLen(s); n > 0 && strings.Trim(s[n:], " ") != "" {
				s = s[n:]
			} else {
				break
			}
		}
		// Step (6): unwrap "[fwd: ... ]" and start over from step (2).
		const hdr = "[fwd:"
		if len(s) > len(hdr) && strings.EqualFold(s[:len(hdr)], hdr) && s[len(s)-1] == ']' {
			s = s[len(hdr) : len(s)-1]
			replyOrFwd = true
			continue
		}
		return s, replyOrFwd
	}
}

// refwdLeaderLen is the length of the subj-leader form
// *subj-blob subj-refwd at the start of s, or 0 (RFC 5256 §5):
//
//	subj-refwd = ("re" / ("fw" ["d"])) *WSP [subj-blob] ":"
//
// Blobs are taken greedily: a subj-refwd starts with a letter, never "[",
// so giving back a blob can never let one match.
func refwdLeaderLen(s string) int {
	i := 0
	for {
		n := blobLen(s[i:])
		if n == 0 {
			break
		}
		i += n
	}
	switch {
	case hasFoldPrefix(s[i:], "re"):
		i += 2
	case hasFoldPrefix(s[i:], "fwd"):
		i += 3
	case hasFoldPrefix(s[i:], "fw"):
		i += 2
	default:
		return 0
	}
	for i < len(s) && s[i] == ' ' {
		i++
	}
	i += blobLen(s[i:])
	if i < len(s) && s[i] == ':' {
		return i + 1
	}
	return 0
}

// blobLen is the length of a subj-blob ("[" *BLOBCHAR "]" *WSP) at the
// start of s, or 0. BLOBCHAR is any octet but NUL, "[" and "]".
func blobLen(s string) int {
	if s == "" || s[0] != '[' {
		return 0
	}
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case ']':
			i++
			for i < len(s) && s[i] == ' ' {
				i++
			}
			return i
		case '[', 0:
			return 0
		}
	}
	return 0
}

func hasFoldPrefix(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}
