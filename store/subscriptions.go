package store

import (
	"bufio"
	"bytes"
	"strings"
)

// The subscriptions file, as Dovecot 2.3 writes it: "V\t2\n\n", then one
// mailbox per line, hierarchy levels separated by TAB, each level in
// modified UTF-7. Version 1 files (no header) hold one name per line with
// "." between levels, Maildir++'s separator.

const subscriptionsName = "subscriptions"

func parseSubscriptions(data []byte) []string {
	var names []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	v2 := false
	first := true
	for sc.Scan() {
		line := sc.Text()
		if first {
			first = false
			if line == "V\t2" {
				v2 = true
				continue
			}
		}
		if line == "" {
			continue
		}
		sep := "."
		if v2 {
			sep = "\t"
		}
		levels := strings.Split(line, sep)
		ok := true
		for i, l := range levels {
			d, err := DecodeMUTF7(l)
			if err != nil || l == "" {
				ok = false
				break
			}
			levels[i] = d
		}
		if !ok {
			continue
		}
		names = append(names, CanonicalName(strings.Join(levels, string(Separator))))
	}
	return names
}

func marshalSubscriptions(names []string) []byte {
	var b bytes.Buffer
	b.WriteString("V\t2\n\n")
	for _, n := range names {
		levels := strings.Split(n, string(Separator))
		for i, l := range levels {
			levels[i] = EncodeMUTF7(l)
		}
		b.WriteString(strings.Join(levels, "\t"))
		b.WriteByte('\n')
	}
	return b.Bytes()
}
