package store

import (
	"fmt"
	"os"
	"strings"
)

// DumpLog renders a letterbox-log for test failure messages.
func DumpLog(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	var b strings.Builder
	h, err := parseLogHeader(data)
	if err != nil {
		return "bad header"
	}
	fmt.Fprintf(&b, "header %+v\n", h)
	off := logHeaderSize
	for off < len(data) {
		body, n, ok, bad := nextRecord(data[off:])
		if !ok {
			fmt.Fprintf(&b, "end at %d (bad=%v)\n", off, bad)
			break
		}
		if body[0] == recSnapshot {
			s, _ := decodeSnapshot(body)
			fmt.Fprintf(&b, "snapshot modseq=%d next=%d msgs=%d:", s.modseq, s.nextUID, len(s.msgs))
			for _, m := range s.msgs {
				fmt.Fprintf(&b, " %d", m.uid)
			}
			b.WriteString("\n")
		} else {
			c, _ := decodeCommit(body)
			fmt.Fprintf(&b, "commit modseq=%d next=%d ops:", c.modseq, c.nextUID)
			for _, op := range c.ops {
				fmt.Fprintf(&b, " %d:%d", op.kind, op.uid)
			}
			b.WriteString("\n")
		}
		off += n
	}
	return b.String()
}
