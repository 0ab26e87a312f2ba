package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// source is what copying needs of one message, taken under the source's
// lock and used after it is released.
type source struct {
	uid      uint32
	path     string
	base     string
	flags    Flag
	keywords []string
	size     int64
}

// Copy copies messages into dst, keeping their flags, keywords and internal
// date, and returns the source UIDs copied with the UIDs they got in dst
// (for COPYUID). Messages that vanished meanwhile are left out. Files are
// hard-linked where the file system allows, as Dovecot does.
func (m *Mailbox) Copy(ctx context.Context, uids []uint32, dst *Mailbox) (srcUIDs, dstUIDs []uint32, err error) {
	return m.copy(ctx, uids, dst, nil)
}

// Move is Copy followed by an expunge of the copied messages from m. A crash
// in between leaves the message in both folders, never in neither.
func (m *Mailbox) Move(ctx context.Context, uids []uint32, dst *Mailbox, origin any) (srcUIDs, dstUIDs []uint32, err error) {
	srcUIDs, dstUIDs, err = m.copy(ctx, uids, dst, origin)
	if err != nil || len(srcUIDs) == 0 {
		return srcUIDs, dstUIDs, err
	}
	if _, err := m.Expunge(ctx, ExpungeOptions{UIDs: srcUIDs, Origin: origin}); err != nil {
		return srcUIDs, dstUIDs, fmt.Errorf("store: move: copied, but not removed from the source: %w", err)
	}
	return srcUIDs, dstUIDs, nil
}

func (m *Mailbox) copy(ctx context.Context, uids []uint32, dst *Mailbox, origin any) ([]uint32, []uint32, error) {
	srcs, err := m.sources(ctx, uids)
	if err != nil {
		return nil, nil, err
	}
	var ps []pending
	var srcUIDs []uint32
	if h := m.b.s.hooks.beforeStage; h != nil {
		h()
	}
	for _, src := range srcs {
		if err := ctx.Err(); err != nil {
			removePending(ps)
			return nil, nil, err
		}
		p, err := m.b.s.stage(src, dst.b.path)
		if isNotExist(err) {
			// Renamed by a flag change meanwhile (or expunged): look
			// where the index says it is now.
			p, err = m.restage(ctx, src, dst.b.path)
		}
		if isNotExist(err) || errors.Is(err, ErrNoSuchMessage) {
			continue // expunged meanwhile
		}
		if err != nil {
			removePending(ps)
			return nil, nil, err
		}
		ps = append(ps, p)
		srcUIDs = append(srcUIDs, src.uid)
	}
	if len(ps) == 0 {
		return nil, nil, nil
	}
	dstUIDs, err := dst.b.commitFiles(ctx, ps, origin)
	if err != nil {
		return nil, nil, err
	}
	return srcUIDs[:len(dstUIDs)], dstUIDs, nil
}

// restage stages a source whose file was not where the index said: after
// a sync (the log, then a listing of the folder if need be) it is where
// the index says now, or it is gone.
func (m *Mailbox) restage(ctx context.Context, src source, dstDir string) (pending, error) {
	for attempt := 0; attempt < 2; attempt++ {
		var err error
		if attempt == 0 {
			err = m.b.refresh(ctx)
		} else {
			err = m.b.forceScan(ctx)
		}
		if err != nil {
			return pending{}, err
		}
		fresh, err := m.sources(ctx, []uint32{src.uid})
		if err != nil {
			return pending{}, err
		}
		if len(fresh) == 0 {
			return pending{}, ErrNoSuchMessage
		}
		p, err := m.b.s.stage(fresh[0], dstDir)
		if !isNotExist(err) {
			return p, err
		}
	}
	return pending{}, ErrNoSuchMessage
}

// sources collects the messages to copy, in UID order.
func (m *Mailbox) sources(ctx context.Context, uids []uint32) ([]source, error) {
	var out []source
	err := m.Read(ctx, func(v *View) {
		b := v.b
		for _, uid := range uids {
			i := b.find(uid)
			if i < 0 {
				continue
			}
			e := &b.msgs[i]
			out = append(out, source{
				uid: uid, path: b.filePath(e), base: e.base(),
				flags: e.flags, keywords: b.keywordNames(e.kw), size: e.size,
			})
		}
	})
	return out, err
}

// stage puts a copy of a message into dstDir/tmp: a hard link if possible,
// else a byte copy with the same mtime.
func (s *Store) stage(src source, dstDir string) (pending, error) {
	fi, err := os.Stat(src.path)
	if err != nil {
		return pending{}, err
	}
	base := withSizes(s.ids.next(), fi.Size(), src.size)
	tmp := filepath.Join(dstDir, "tmp", base)
	p := pending{tmpPath: tmp, base: base, flags: src.flags, keywords: src.keywords, size: src.size, mtime: fi.ModTime().UnixNano()}
	if err := os.Link(src.path, tmp); err == nil {
		return p, nil
	} else if isNotExist(err) {
		return pending{}, err
	}
	// Another file system, or links not allowed: copy the bytes.
	if err := copyFile(src.path, tmp, fi.ModTime(), s.opts.FileMode); err != nil {
		return pending{}, err
	}
	return p, nil
}

func copyFile(from, to string, mtime time.Time, mode os.FileMode) error {
	in, err := openRead(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := openFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return wrapErr("copy", err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		os.Remove(to)
		return wrapErr("copy", err)
	}
	if err := out.Sync(); err != nil {
		out.Close()
		os.Remove(to)
		return wrapErr("copy", err)
	}
	if err := out.Close(); err != nil {
		os.Remove(to)
		return wrapErr("copy", err)
	}
	if err := os.Chtimes(to, mtime, mtime); err != nil {
		os.Remove(to)
		return wrapErr("copy", err)
	}
	return nil
}
