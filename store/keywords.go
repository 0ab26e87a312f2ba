package store

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// dovecot-keywords numbers a folder's keywords: "<n> <name>" per line. The
// number is the letter 'a'+n in file names, so a folder has at most 26.
// Names stay in the file when no message uses them any more.

const keywordsName = "dovecot-keywords"

const maxKeywords = 26

// parseKeywords returns the keyword table; a slot without a name is "".
func parseKeywords(data []byte) []string {
	var kws []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		num, name, ok := strings.Cut(sc.Text(), " ")
		if !ok || name == "" {
			continue
		}
		n, err := strconv.Atoi(num)
		if err != nil || n < 0 || n >= maxKeywords {
			continue
		}
		for len(kws) <= n {
			kws = append(kws, "")
		}
		kws[n] = name
	}
	return kws
}

func marshalKeywords(kws []string) []byte {
	var b bytes.Buffer
	for i, k := range kws {
		if k != "" {
			fmt.Fprintf(&b, "%d %s\n", i, k)
		}
	}
	return b.Bytes()
}

// validKeyword reports whether a keyword can be stored: an IMAP atom, not a
// system flag, not too long.
func validKeyword(k string) bool {
	if k == "" || len(k) > 128 || k[0] == '\\' {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`(){%*"\]`, c) >= 0 {
			return false
		}
	}
	return true
}

// keywordIndex finds a keyword, case-insensitively as IMAP compares flags.
func keywordIndex(kws []string, k string) int {
	for i, x := range kws {
		if x != "" && strings.EqualFold(x, k) {
			return i
		}
	}
	return -1
}
