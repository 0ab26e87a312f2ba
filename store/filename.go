package store

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// A message file is "<base>:2,<info>" in cur/ (or just "<base>" in new/).
// The base is the message's identity across renames and folders; Dovecot's
// bases carry ",S=<physical size>,W=<CRLF size>". The info letters are
// flags: upper case are Maildir flags, lower case keywords a..z (a = 0 in
// dovecot-keywords).

// splitName returns the base and the info letters of a file name. A name
// without ":2," has no flags.
func splitName(name string) (base, info string) {
	i := strings.IndexByte(name, ':')
	if i < 0 {
		return name, ""
	}
	base = name[:i]
	rest := name[i+1:]
	if strings.HasPrefix(rest, "2,") {
		return base, rest[2:]
	}
	// An experimental ":1," or something else: keep the base, no flags.
	return base, ""
}

// parseInfo turns info letters into flags and a keyword bit set. Anything
// outside A-Z and a-z is dropped; Dovecot ignores it the same way.
func parseInfo(info string) (Flag, uint32) {
	var f Flag
	var kw uint32
	for i := 0; i < len(info); i++ {
		c := info[i]
		switch {
		case c >= 'A' && c <= 'Z':
			f |= 1 << (c - 'A')
		case c >= 'a' && c <= 'z':
			kw |= 1 << (c - 'a')
		}
	}
	return f, kw
}

// formatInfo is the inverse of parseInfo, letters in ASCII order as Dovecot
// writes them ("FSd", "RS").
func formatInfo(f Flag, kw uint32) string {
	var b [52]byte
	n := 0
	for i := 0; i < 26; i++ {
		if f&(1<<i) != 0 {
			b[n] = byte('A' + i)
			n++
		}
	}
	for i := 0; i < 26; i++ {
		if kw&(1<<i) != 0 {
			b[n] = byte('a' + i)
			n++
		}
	}
	return string(b[:n])
}

// curName is the name of a message in cur/.
func curName(base string, f Flag, kw uint32) string {
	return base + ":2," + formatInfo(f, kw)
}

// baseSize returns the value of a ",<key>=<n>" field of a base name.
func baseSize(base string, key byte) (int64, bool) {
	for i := 0; i+3 < len(base); i++ {
		if base[i] != ',' || base[i+1] != key || base[i+2] != '=' {
			continue
		}
		j := i + 3
		k := j
		for k < len(base) && base[k] >= '0' && base[k] <= '9' {
			k++
		}
		if k == j {
			return 0, false
		}
		n, err := strconv.ParseInt(base[j:k], 10, 64)
		if err != nil {
			return 0, false
		}
		return n, true
	}
	return 0, false
}

// baseTime returns the leading Unix time of a base name and the rest, used
// to put files found on disk in arrival order.
func baseTime(base string) (int64, string) {
	i := strings.IndexByte(base, '.')
	if i <= 0 {
		return 0, base
	}
	t, err := strconv.ParseInt(base[:i], 10, 64)
	if err != nil {
		return 0, base
	}
	return t, base[i+1:]
}

// nameSource hands out unique base names in Dovecot's form:
// <secs>.M<usec>P<pid>_<n>.<host>. The counter makes names unique within the
// process even within one microsecond; pid and host across processes.
type nameSource struct {
	host string
	pid  int
	now  func() time.Time

	mu sync.Mutex
	n  uint64
}

func newNameSource(host string, now func() time.Time) *nameSource {
	// "/" and ":" would break the file name; Maildir says to encode them.
	host = strings.NewReplacer("/", `\057`, ":", `\072`, ",", `\054`).Replace(host)
	// Two Stores in one process share a pid; a random start keeps their
	// counters apart.
	var seed [4]byte
	_, _ = rand.Read(seed[:])
	return &nameSource{host: host, pid: os.Getpid(), now: now, n: uint64(binary.BigEndian.Uint32(seed[:]))}
}

// next returns a new base name without sizes.
func (s *nameSource) next() string {
	s.mu.Lock()
	s.n++
	n := s.n
	s.mu.Unlock()
	t := s.now()
	return fmt.Sprintf("%d.M%dP%d_%d.%s", t.Unix(), t.Nanosecond()/1000, s.pid, n, s.host)
}

// withSizes appends Dovecot's size fields to a base name.
func withSizes(base string, physical, crlf int64) string {
	return fmt.Sprintf("%s,S=%d,W=%d", base, physical, crlf)
}
