package mailsort

// Compare orders two strings under the i;ascii-casemap collation of
// RFC 4790 §9.2: octet by octet, after mapping a-z to A-Z. Bytes outside
// ASCII letters, including every byte of a multi-byte UTF-8 character, are
// compared as they are.
//
// RFC 5256 §7 asks for i;unicode-casemap (RFC 5051) through I18NLEVEL=1,
// which Dovecot implements; this package was specified with
// i;ascii-casemap. The two differ only on non-ASCII text, which the
// Unicode collation case-folds and decomposes ("é" and "É" are different
// here), and this file is all that would change to switch.
func Compare(a, b string) int {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		ca, cb := upper(a[i]), upper(b[i])
		if ca != cb {
			if ca < cb {
				return -1
			}
			return 1
		}
	}
	switch {
	case len(a) < len(b):
		return -1
	case len(a) > len(b):
		return 1
	}
	return 0
}

func upper(c byte) byte {
	if 'a' <= c && c <= 'z' {
		return c - ('a' - 'A')
	}
	return c
}

// foldAll folds one string field of every key (foldKey) into a single
// allocation: sorting 100,000 messages should not make 100,000 strings.
func foldAll(keys []Keys, field func(*Keys) string) []string {
	total := 0
	for i := range keys {
		total += len(field(&keys[i]))
	}
	buf := make([]byte, 0, total)
	for i := range keys {
		for _, c := range []byte(field(&keys[i])) {
			buf = append(buf, upper(c))
		}
	}
	all := string(buf)
	out := make([]string, len(keys))
	off := 0
	for i := range keys {
		n := len(field(&keys[i]))
		out[i] = all[off : off+n]
		off += n
	}
	return out
}

// foldKey maps s to a string whose plain byte order is the collation order
// of s, so that sorting large sets compares with the runtime's memcmp
// instead of a byte loop. It allocates only when s has a lower-case letter.
func foldKey(s string) string {
	i := 0
	for i < len(s) && !('a' <= s[i] && s[i] <= 'z') {
		i++
	}
	if i == len(s) {
		return s
	}
	b := []byte(s)
	for ; i < len(b); i++ {
		b[i] = upper(b[i])
	}
	return string(b)
}
