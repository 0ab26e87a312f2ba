package store

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// dovecot-uidlist, version 3 (Dovecot's maildir-uidlist.c has the format):
//
//	3 V<uidvalidity> N<nextuid> G<mailbox guid>
//	<uid> [<ext>...] :<base name>
//
// Extension fields are one letter and a value: W<crlf size>, S<physical
// size>, G<message guid>, P<pop3 uidl>, … We keep every field we read and
// write it back. Version 1 ("1 <uidvalidity> <nextuid>", "<uid> <name>") is
// read too and written as version 3.

const uidlistName = "dovecot-uidlist"

type uidlist struct {
	uidValidity uint32
	nextUID     uint32
	guid        string
	hdrExtra    []string // header fields we do not interpret
	entries     []uidEntry
}

type uidEntry struct {
	uid  uint32
	ext  string // extension fields as written, space separated
	base string
}

var errBadUidlist = errors.New("store: malformed dovecot-uidlist")

// parseUidlist reads a uidlist. Lines it cannot parse are skipped (their
// files get new UIDs, which is what Dovecot does with a broken line) and
// reported in the error count; a bad header is an error.
func parseUidlist(data []byte) (*uidlist, int, error) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	if !sc.Scan() {
		return nil, 0, fmt.Errorf("%w: empty", errBadUidlist)
	}
	ul := &uidlist{}
	hdr := strings.Fields(sc.Text())
	if len(hdr) == 0 {
		return nil, 0, fmt.Errorf("%w: empty header", errBadUidlist)
	}
	version := hdr[0]
	switch version {
	case "1":
		if len(hdr) < 3 {
			return nil, 0, fmt.Errorf("%w: short v1 header", errBadUidlist)
		}
		v, err1 := strconv.ParseUint(hdr[1], 10, 32)
		n, err2 := strconv.ParseUint(hdr[2], 10, 32)
		if err1 != nil || err2 != nil {
			return nil, 0, fmt.Errorf("%w: bad v1 header", errBadUidlist)
		}
		ul.uidValidity, ul.nextUID = uint32(v), uint32(n)
	case "3":
		for _, f := range hdr[1:] {
			if len(f) < 2 {
				ul.hdrExtra = append(ul.hdrExtra, f)
				continue
			}
			switch f[0] {
			case 'V':
				v, err := strconv.ParseUint(f[1:], 10, 32)
				if err != nil {
					return nil, 0, fmt.Errorf("%w: bad UIDVALIDITY", errBadUidlist)
				}
				ul.uidValidity = uint32(v)
			case 'N':
				n, err := strconv.ParseUint(f[1:], 10, 32)
				if err != nil {
					return nil, 0, fmt.Errorf("%w: bad next UID", errBadUidlist)
				}
				ul.nextUID = uint32(n)
			case 'G':
				ul.guid = f[1:]
			default:
				ul.hdrExtra = append(ul.hdrExtra, f)
			}
		}
	default:
		return nil, 0, fmt.Errorf("%w: unknown version %q", errBadUidlist, version)
	}
	if ul.uidValidity == 0 {
		return nil, 0, fmt.Errorf("%w: no UIDVALIDITY", errBadUidlist)
	}
	bad := 0
	var last uint32
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		e, ok := parseUidLine(line, version == "1")
		if !ok || e.uid <= last {
			// UIDs only grow; a line out of order is as broken as a
			// line that does not parse.
			bad++
			continue
		}
		last = e.uid
		ul.entries = append(ul.entries, e)
	}
	if err := sc.Err(); err != nil {
		return nil, bad, fmt.Errorf("%w: %w", errBadUidlist, err)
	}
	return ul, bad, nil
}

func parseUidLine(line string, v1 bool) (uidEntry, bool) {
	sp := strings.IndexByte(line, ' ')
	if sp <= 0 {
		return uidEntry{}, false
	}
	uid, err := strconv.ParseUint(line[:sp], 10, 32)
	if err != nil || uid == 0 {
		return uidEntry{}, false
	}
	rest := line[sp+1:]
	var e uidEntry
	e.uid = uint32(uid)
	if v1 {
		e.base, _ = splitName(strings.TrimSpace(rest))
		return e, validBase(e.base)
	}
	// The name follows the first " :" (or a leading ":"); extension values
	// have no spaces.
	var ext, name string
	if strings.HasPrefix(rest, ":") {
		name = rest[1:]
	} else {
		i := strings.Index(rest, " :")
		if i < 0 {
			return uidEntry{}, false
		}
		ext, name = rest[:i], rest[i+2:]
	}
	e.ext = ext
	e.base, _ = splitName(name)
	if !validBase(e.base) {
		return uidEntry{}, false
	}
	return e, true
}

// validBase refuses names that cannot be a file in cur/.
func validBase(base string) bool {
	return base != "" && base != "." && base != ".." && !strings.ContainsAny(base, "/\x00")
}

// extField returns the value of one extension field ('W', 'P', …).
func extField(ext string, key byte) (string, bool) {
	for ext != "" {
		var f string
		f, ext, _ = strings.Cut(ext, " ")
		if len(f) > 0 && f[0] == key {
			return f[1:], true
		}
	}
	return "", false
}

// setExtField replaces or adds one extension field.
func setExtField(ext string, key byte, value string) string {
	fields := strings.Fields(ext)
	for i, f := range fields {
		if f[0] == key {
			fields[i] = string(key) + value
			return strings.Join(fields, " ")
		}
	}
	return strings.Join(append(fields, string(key)+value), " ")
}

// marshal writes the uidlist in version 3.
func (ul *uidlist) marshal() []byte {
	var b bytes.Buffer
	b.Grow(64 + len(ul.entries)*64)
	fmt.Fprintf(&b, "3 V%d N%d G%s", ul.uidValidity, ul.nextUID, ul.guid)
	for _, f := range ul.hdrExtra {
		b.WriteByte(' ')
		b.WriteString(f)
	}
	b.WriteByte('\n')
	var num [10]byte
	for _, e := range ul.entries {
		b.Write(strconv.AppendUint(num[:0], uint64(e.uid), 10))
		if e.ext != "" {
			b.WriteByte(' ')
			b.WriteString(e.ext)
		}
		b.WriteString(" :")
		b.WriteString(e.base)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// newGUID returns a mailbox GUID: 32 hex digits, as Dovecot's.
func newGUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
