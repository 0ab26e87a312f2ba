package imap

import (
	"fmt"
	"net"
	"sort"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/letterbox-mail/letterbox/store"
)

// idleCheck is how often IDLE looks at the disk itself, for changes the
// store's inotify watch cannot see (NFS).
const idleCheck = 10 * time.Second

// selected is the state of the selected mailbox. Its *selected is the
// Origin of the session's changes in the store's feed.
type selected struct {
	box         *sharedBox
	mbox        *store.Mailbox
	name        string
	readOnly    bool
	uidValidity uint32
	tracker     *imapserver.SessionTracker
	notify      chan struct{}
	invalid     atomic.Bool
	recent      map[uint32]bool
	appendsSeen uint64
}

func (sel *selected) wake() {
	select {
	case sel.notify <- struct{}{}:
	default:
	}
}

// Select is SELECT and EXAMINE. The session's tracker is made under the
// same view as the answer, so both start from the same state.
func (s *session) Select(name string, opts *imap.SelectOptions) (*imap.SelectData, error) {
	if err := s.needUser(); err != nil {
		return nil, err
	}
	s.unselect()
	name = store.CanonicalName(name)
	sb, err := s.srv.boxes.acquire(s.ctx, s.user, name)
	if err != nil {
		return nil, s.fail("select", err)
	}
	sel := &selected{
		box:      sb,
		mbox:     sb.mbox,
		name:     name,
		readOnly: opts.ReadOnly,
		notify:   make(chan struct{}, 1),
		recent:   make(map[uint32]bool),
	}
	if !sel.readOnly {
		uids, err := sel.mbox.ClaimRecent(s.ctx)
		if err != nil {
			s.srv.boxes.release(sb)
			return nil, s.fail("select", err)
		}
		for _, u := range uids {
			sel.recent[u] = true
		}
	}
	var data imap.SelectData
	err = sel.mbox.Read(s.ctx, func(v *store.View) {
		sb.mu.Lock()
		sel.tracker = sb.tracker.NewSession()
		sb.sessions[sel] = struct{}{}
		sel.appendsSeen = sb.appends
		sb.mu.Unlock()

		sel.uidValidity = v.UIDValidity()
		kws := v.Keywords()
		data.NumMessages = uint32(v.Len())
		data.UIDValidity = v.UIDValidity()
		data.UIDNext = imap.UID(v.UIDNext())
		data.Flags = mailboxFlags(kws)
		if sel.readOnly {
			data.PermanentFlags = []imap.Flag{}
		} else {
			data.PermanentFlags = mailboxFlags(kws)
			if v.CanCreateKeywords() {
				data.PermanentFlags = append(data.PermanentFlags, imap.FlagWildcard)
			}
		}
		for i := 0; i < v.Len(); i++ {
			m := v.At(i)
			if !m.Flags.Has(store.FlagSeen) && data.FirstUnseenSeqNum == 0 {
				data.FirstUnseenSeqNum = uint32(i + 1)
			}
			if sel.recent[m.UID] || (sel.readOnly && m.Recent) {
				data.NumRecent++
			}
		}
	})
	if err != nil {
		if sel.tracker != nil {
			sb.mu.Lock()
			delete(sb.sessions, sel)
			sb.mu.Unlock()
			sel.tracker.Close()
		}
		s.srv.boxes.release(sb)
		return nil, s.fail("select", err)
	}
	s.sel = sel
	s.searchRes = nil
	return &data, nil
}

// selectedAs returns the selected mailbox if it is name (canonical).
func (s *session) selectedAs(name string) *selected {
	if s.sel != nil && s.sel.name == name {
		return s.sel
	}
	return nil
}

// Unselect is UNSELECT, CLOSE (after its expunge) and the implicit close
// of SELECT.
func (s *session) Unselect() error {
	s.unselect()
	return nil
}

func (s *session) unselect() {
	sel := s.sel
	if sel == nil {
		return
	}
	s.sel = nil
	s.searchRes = nil
	sel.box.mu.Lock()
	delete(sel.box.sessions, sel)
	sel.box.mu.Unlock()
	sel.tracker.Close()
	s.srv.boxes.release(sel.box)
}

// errGone ends a connection whose selected mailbox was deleted, renamed or
// got a new UIDVALIDITY; net.ErrClosed keeps imapserver from logging it.
var errGone = fmt.Errorf("imap: selected mailbox is gone: %w", net.ErrClosed)

// checkGone says BYE if the selected mailbox is gone: the client's
// sequence numbers and UIDs mean nothing any more.
func (s *session) checkGone(sel *selected) error {
	if sel.invalid.Load() {
		s.log.Info("imap: selected mailbox was deleted or renamed, disconnecting", "mailbox", sel.name)
		s.conn.Bye("Selected mailbox was deleted or renamed, have to disconnect")
		return errGone
	}
	return nil
}

// Poll sends what changed since the last command (imapserver calls it
// after every command). The disk is checked first.
func (s *session) Poll(w *imapserver.UpdateWriter, allowExpunge bool) error {
	sel := s.sel
	if sel == nil {
		return nil
	}
	if err := sel.mbox.Read(s.ctx, func(*store.View) {}); err != nil && !sel.invalid.Load() {
		s.log.Warn("imap: refresh", "mailbox", sel.name, "err", err)
	}
	if err := s.checkGone(sel); err != nil {
		return err
	}
	if err := sel.tracker.Poll(w, allowExpunge); err != nil {
		return err
	}
	return s.claimRecent(sel, w)
}

// claimRecent takes \Recent for messages that arrived while selected
// read-write (RFC 3501 §2.3.2: one session sees a message as recent).
func (s *session) claimRecent(sel *selected, w *imapserver.UpdateWriter) error {
	if sel.readOnly {
		return nil
	}
	sel.box.mu.Lock()
	appends := sel.box.appends
	sel.box.mu.Unlock()
	if appends == sel.appendsSeen {
		return nil
	}
	sel.appendsSeen = appends
	uids, err := sel.mbox.ClaimRecent(s.ctx)
	if err != nil || len(uids) == 0 {
		return nil
	}
	for _, u := range uids {
		sel.recent[u] = true
	}
	return w.WriteNumRecent(uint32(len(sel.recent)))
}

// Idle sends changes as they happen, until the client says DONE.
func (s *session) Idle(w *imapserver.UpdateWriter, stop <-chan struct{}) error {
	s.idleMu.Lock()
	if s.closed {
		s.idleMu.Unlock()
		return nil
	}
	s.idling.Add(1)
	s.idleMu.Unlock()
	defer s.idling.Done()
	sel := s.sel
	if sel == nil {
		select {
		case <-stop:
		case <-s.ctx.Done():
		}
		return nil
	}
	tick := time.NewTicker(idleCheck)
	defer tick.Stop()
	for {
		if err := s.checkGone(sel); err != nil {
			return err
		}
		if err := sel.tracker.Poll(w, true); err != nil {
			return err
		}
		select {
		case <-stop:
			return nil
		case <-s.ctx.Done():
			return nil
		case <-sel.notify:
		case <-tick.C:
			sel.mbox.Read(s.ctx, func(*store.View) {})
		}
	}
}

// target is a message a command applies to, as the client numbers it.
type target struct {
	seq uint32
	msg store.Message
}

// resolve turns a sequence set or UID set of the client into messages,
// under v. Sequence numbers are the client's: messages expunged without the
// client being told are skipped, as are messages it has not been told of
// (RFC 3501 §7.4.1). "*" is the last message the client knows; "n:*" with
// n beyond it still includes it (RFC 3501 §6.4.8, §9 seq-range). "$" is the
// saved search result (RFC 5182).
func (s *session) resolve(sel *selected, v *store.View, set imap.NumSet) []target {
	n := v.Len()
	// The last message the client knows about.
	lastSeq, lastClient := 0, uint32(0)
	for i := n; i >= 1; i-- {
		if c := sel.tracker.EncodeSeqNum(uint32(i)); c != 0 {
			lastSeq, lastClient = i, c
			break
		}
	}
	var out []target
	add := func(i int) {
		if c := sel.tracker.EncodeSeqNum(uint32(i + 1)); c != 0 {
			out = append(out, target{seq: c, msg: v.At(i)})
		}
	}
	if imap.IsSearchRes(set) {
		for _, uid := range s.searchRes {
			if i := v.Seq(uid) - 1; i >= 0 {
				add(i)
			}
		}
		return sortTargets(out)
	}
	switch set := set.(type) {
	case imap.UIDSet:
		var maxUID uint32
		if lastSeq > 0 {
			maxUID = v.At(lastSeq - 1).UID
		}
		for _, r := range set {
			lo, hi := uint32(r.Start), uint32(r.Stop)
			if lo == 0 {
				lo = maxUID
			}
			if hi == 0 {
				hi = maxUID
			}
			if lo > hi {
				lo, hi = hi, lo
			}
			if hi == 0 {
				continue
			}
			for i := v.SearchUID(lo); i < n && v.At(i).UID <= hi; i++ {
				add(i)
			}
		}
	case imap.SeqSet:
		for _, r := range set {
			lo, hi := r.Start, r.Stop
			if lo == 0 {
				lo = lastClient
			}
			if hi == 0 {
				hi = lastClient
			}
			if lo > hi {
				lo, hi = hi, lo
			}
			hi = min(hi, lastClient)
			for c := lo; c >= 1 && c <= hi; c++ {
				if sv := sel.tracker.DecodeSeqNum(c); sv != 0 && int(sv) <= n {
					out = append(out, target{seq: c, msg: v.At(int(sv) - 1)})
				}
				if c == hi {
					break
				}
			}
		}
	}
	return sortTargets(out)
}

// sortTargets orders by sequence number and drops duplicates of
// overlapping ranges.
func sortTargets(ts []target) []target {
	sort.Slice(ts, func(i, j int) bool { return ts[i].seq < ts[j].seq })
	out := ts[:0]
	for i, t := range ts {
		if i > 0 && t.seq == ts[i-1].seq {
			continue
		}
		out = append(out, t)
	}
	return out
}

// targets resolves a set under a fresh view.
func (s *session) targets(sel *selected, set imap.NumSet) ([]target, error) {
	var ts []target
	err := sel.mbox.Read(s.ctx, func(v *store.View) { ts = s.resolve(sel, v, set) })
	return ts, err
}

func uidsOf(ts []target) []uint32 {
	out := make([]uint32, len(ts))
	for i, t := range ts {
		out[i] = t.msg.UID
	}
	return out
}

// flagsOf is a message's FLAGS for this session: \Recent is per session.
func (sel *selected) flagsOf(m store.Message) []imap.Flag {
	fl := imapFlags(m.Flags, m.Keywords)
	if sel.recent[m.UID] {
		fl = append(fl, flagRecent)
	}
	return fl
}
