package store

import (
	"bytes"
	"cmp"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Numbering: dovecot-uidlist is the source of truth for UIDs (Dovecot must
// read what we write). Like Dovecot, we add lines at its end under the
// dotlock and rewrite the whole file only when lines of expunged messages
// pile up; readers follow it by size, reading only what was appended.

// readUidlistHead reads the first line of the uidlist: UIDVALIDITY, next
// UID and GUID. ok is false when there is no usable uidlist.
func (b *box) readUidlistHead() (ul *uidlist, ok bool, err error) {
	f, err := openRead(filepath.Join(b.path, uidlistName))
	if err != nil {
		if isNotExist(err) {
			return nil, false, nil
		}
		return nil, false, wrapErr("read uidlist", err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	n, err := io.ReadFull(f, buf)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, false, wrapErr("read uidlist", err)
	}
	line, _, _ := bytes.Cut(buf[:n], []byte("\n"))
	ul, _, err = parseUidlist(append(line, '\n'))
	if err != nil {
		return nil, false, nil
	}
	return ul, true, nil
}

// readUidlistAll reads the whole uidlist and remembers where it ends. nil
// with no error: there is none (or it is beyond repair and will be
// rewritten, as Dovecot does; UIDs then change, mail is kept).
func (b *box) readUidlistAll() (*uidlist, error) {
	p := filepath.Join(b.path, uidlistName)
	f, err := openRead(p)
	if err != nil {
		if isNotExist(err) {
			return nil, nil
		}
		return nil, wrapErr("read uidlist", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, wrapErr("read uidlist", err)
	}
	data := make([]byte, fi.Size())
	n, err := io.ReadFull(f, data)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, wrapErr("read uidlist", err)
	}
	data = data[:n]
	// A last line without its newline is being written (or was cut by a
	// crash): not ours to read yet.
	complete := data[:bytes.LastIndexByte(data, '\n')+1]
	ul, bad, err := parseUidlist(complete)
	if err != nil {
		b.s.log.Error("store: unreadable dovecot-uidlist, rebuilding", "mailbox", b.name, "path", p, "err", err)
		return nil, nil
	}
	if bad > 0 {
		b.s.log.Warn("store: skipped malformed dovecot-uidlist lines", "mailbox", b.name, "path", p, "lines", bad)
	}
	b.uidlistIno = fileIDOf(fi).ino
	b.uidlistOff = int64(len(complete))
	b.uidlistLines = len(ul.entries)
	head, _, _ := bytes.Cut(complete, []byte("\n"))
	b.uidlistHead = string(head) + "\n"
	return ul, nil
}

// readUidlistNew returns the lines added to the uidlist since it was last
// read (all of them if it was replaced), and whether it was replaced. The
// dotlock is held.
func (b *box) readUidlistNew() (entries []uidEntry, header *uidlist, err error) {
	p := filepath.Join(b.path, uidlistName)
	f, err := openRead(p)
	if err != nil {
		if isNotExist(err) {
			return nil, nil, nil
		}
		return nil, nil, wrapErr("read uidlist", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, wrapErr("read uidlist", err)
	}
	if fileIDOf(fi).ino != b.uidlistIno || fi.Size() < b.uidlistOff || !sameHead(f, b.uidlistHead) {
		f.Close()
		ul, err := b.readUidlistAll()
		if err != nil || ul == nil {
			return nil, nil, err
		}
		return ul.entries, ul, nil
	}
	if fi.Size() == b.uidlistOff {
		return nil, nil, nil
	}
	data := make([]byte, fi.Size()-b.uidlistOff)
	n, err := f.ReadAt(data, b.uidlistOff)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, nil, wrapErr("read uidlist", err)
	}
	data = data[:n]
	data = data[:bytes.LastIndexByte(data, '\n')+1]
	for _, line := range strings.Split(string(data), "\n") {
		if line == "" {
			continue
		}
		if e, ok := parseUidLine(line, false); ok {
			entries = append(entries, e)
		}
	}
	b.uidlistOff += int64(len(data))
	b.uidlistLines += len(entries)
	return entries, nil, nil
}

// sameHead reports whether a file starts with head: inode numbers are
// reused, so a replaced uidlist can have the inode of the one we read; its
// first line (with N and the GUID) tells them apart.
func sameHead(f *os.File, head string) bool {
	if head == "" {
		return false
	}
	buf := make([]byte, len(head))
	n, _ := f.ReadAt(buf, 0)
	return n == len(buf) && string(buf) == head
}

// learnUidlist takes in lines read from the uidlist: lines for files the
// index does not have and with a UID above every indexed one are kept as
// orphans (their files may show up yet); the header's next UID is taken.
func (b *box) learnUidlist(entries []uidEntry, header *uidlist) {
	if header != nil {
		b.adoptHeader(header)
		b.orphans = nil
	}
	last := b.lastUID()
	for _, e := range entries {
		if e.uid >= b.nextUID {
			b.nextUID = e.uid + 1
		}
		if e.uid > last {
			b.orphans = append(b.orphans, e)
		}
	}
}

// adoptHeader takes UIDVALIDITY, GUID and the next UID from a uidlist.
// Dovecot does not always rewrite N when it appends lines, so the next
// UID is the larger of N and the last UID + 1.
func (b *box) adoptHeader(ul *uidlist) {
	b.uidValidity = ul.uidValidity
	b.guid = ul.guid
	b.hdrExtra = ul.hdrExtra
	next := ul.nextUID
	if n := len(ul.entries); n > 0 && ul.entries[n-1].uid >= next {
		next = ul.entries[n-1].uid + 1
	}
	if next > b.nextUID {
		b.nextUID = next
	}
}

// takeOrphan returns and forgets the uidlist line of a file base, if an
// orphan line names it.
func (b *box) takeOrphan(base string) (uidEntry, bool) {
	for i, o := range b.orphans {
		if o.base == base {
			b.orphans = append(b.orphans[:i:i], b.orphans[i+1:]...)
			return o, true
		}
	}
	return uidEntry{}, false
}

// appendUidlist adds lines at the end of the uidlist (creating it with a
// header if there is none) and fsyncs it: a UID given to a client must
// survive a crash. The dotlock is held.
func (t *txn) appendUidlist(lines []uidEntry) error {
	b := t.b
	if len(lines) == 0 {
		return nil
	}
	t.touch(fileUidlist)
	p := filepath.Join(b.path, uidlistName)
	var buf bytes.Buffer
	f, err := openFile(p, os.O_RDWR|os.O_APPEND, 0)
	if isNotExist(err) {
		return b.rewriteUidlist(t, lines)
	}
	if err != nil {
		return wrapErr("append uidlist", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return wrapErr("append uidlist", err)
	}
	if size := fi.Size(); size > 0 && !(fileIDOf(fi).ino == b.uidlistIno && size == b.uidlistOff) {
		// A line cut short by a crash must not swallow ours (where we
		// read up to the end ourselves, it ends with a newline).
		var last [1]byte
		if _, err := f.ReadAt(last[:], size-1); err == nil && last[0] != '\n' {
			buf.WriteByte('\n')
		}
	}
	for _, e := range lines {
		writeUidLine(&buf, e)
	}
	if _, err := f.Write(buf.Bytes()); err != nil {
		// Whatever part of the lines made it stays: a line whose file
		// never arrives is harmless, and a cut line is skipped by every
		// reader (and ended by the next writer).
		return wrapErr("append uidlist", err)
	}
	if err := f.Sync(); err != nil {
		return wrapErr("append uidlist", err)
	}
	if fileIDOf(fi).ino == b.uidlistIno && fi.Size() == b.uidlistOff {
		b.uidlistOff += int64(buf.Len())
	}
	b.uidlistLines += len(lines)
	return nil
}

func writeUidLine(buf *bytes.Buffer, e uidEntry) {
	var num [10]byte
	buf.Write(strconv.AppendUint(num[:0], uint64(e.uid), 10))
	if e.ext != "" {
		buf.WriteByte(' ')
		buf.WriteString(e.ext)
	}
	buf.WriteString(" :")
	buf.WriteString(e.base)
	buf.WriteByte('\n')
}

// rewriteUidlist writes the whole uidlist from the index, with extra lines
// (for messages about to be added) and the orphan lines of files we may
// not see yet. The dotlock is held.
func (b *box) rewriteUidlist(t *txn, extra []uidEntry) error {
	t.touch(fileUidlist)
	next := b.nextUID
	for _, e := range extra {
		if e.uid >= next {
			next = e.uid + 1
		}
	}
	out := &uidlist{uidValidity: b.uidValidity, nextUID: next, guid: b.guid, hdrExtra: b.hdrExtra}
	out.entries = make([]uidEntry, 0, len(b.msgs)+len(extra)+len(b.orphans))
	for i := range b.msgs {
		e := &b.msgs[i]
		out.entries = append(out.entries, uidEntry{uid: e.uid, ext: e.ext, base: e.base()})
	}
	out.entries = append(out.entries, b.orphans...)
	out.entries = append(out.entries, extra...)
	slices.SortFunc(out.entries, func(a, b uidEntry) int { return cmp.Compare(a.uid, b.uid) })
	out.entries = slices.CompactFunc(out.entries, func(a, b uidEntry) bool { return a.uid == b.uid })
	p := filepath.Join(b.path, uidlistName)
	data := out.marshal()
	if err := writeFileAtomic(p, data, b.s.opts.FileMode); err != nil {
		return noSpace(err)
	}
	id, err := statID(p)
	if err != nil {
		return wrapErr("stat uidlist", err)
	}
	b.uidlistIno, b.uidlistOff, b.uidlistLines = id.ino, int64(len(data)), len(out.entries)
	head, _, _ := bytes.Cut(data, []byte("\n"))
	b.uidlistHead = string(head) + "\n"
	return nil
}

// maybeRewriteUidlist rewrites the uidlist once lines of expunged messages
// make up more than a third of it, as Dovecot compacts its own.
func (t *txn) maybeRewriteUidlist() {
	b := t.b
	dead := b.uidlistLines - len(b.msgs) - len(b.orphans)
	if dead < 1000 || dead*3 < b.uidlistLines {
		return
	}
	// The index must hold every line worth keeping: read what others
	// appended first.
	entries, hdr, err := b.readUidlistNew()
	if err != nil {
		return
	}
	b.learnUidlist(entries, hdr)
	if err := b.rewriteUidlist(t, nil); err != nil {
		b.s.log.Warn("store: compact dovecot-uidlist", "mailbox", b.name, "err", err)
	}
}
