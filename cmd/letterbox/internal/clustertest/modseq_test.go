package clustertest

import (
	"fmt"

	"github.com/emersion/go-imap/v2"
)

// modSeqEvent is the MODSEQ a server reported for one change (the FETCH
// answering a STORE), with CONDSTORE.
type modSeqEvent struct {
	folder string
	uid    imap.UID
	modSeq uint64
	what   string
}

// checkModSeqs is the MODSEQ part of issue 10 ("MODSEQs strictly
// increasing per folder, never going back").
//
// MODSEQs reach a client through CONDSTORE (RFC 7162): the workers SELECT
// with CONDSTORE and the snapshots FETCH MODSEQ whenever the capability
// is advertised (without it this only says that it skipped).
//
//   - events: per worker, the MODSEQs of its STOREs that changed flags, in
//     the order they were acknowledged. Within one folder they must strictly increase (a later
//     change never gets a lower or equal MODSEQ, whichever process made
//     it), and no two changes share one MODSEQ in a folder.
//   - history: snapshots in the order they were taken (per kill -9 round,
//     or the final ones of a cluster run). Per folder and instance,
//     HIGHESTMODSEQ never goes back while UIDVALIDITY stays; a message's
//     MODSEQ never goes back and never exceeds HIGHESTMODSEQ; in the last
//     round every instance shows the same HIGHESTMODSEQ and the same MODSEQ
//     per UID (one shared log).
func checkModSeqs(logf func(string, ...any), prob *problems, events [][]modSeqEvent, history [][]*snapshot) {
	cond := false
	for _, round := range history {
		for _, s := range round {
			cond = cond || s.condStore
		}
	}
	if !cond {
		logf("MODSEQ checks skipped: the server does not advertise CONDSTORE (issue 10 hook, see checkModSeqs)")
		return
	}

	// Successive changes by one client, per folder.
	owner := make(map[string]map[uint64]string) // folder → MODSEQ → change
	for _, evs := range events {
		last := make(map[string]uint64)
		for _, e := range evs {
			if e.modSeq == 0 {
				prob.add("STORE reply without MODSEQ under CONDSTORE", "%s UID %d in %s", e.what, e.uid, e.folder)
				continue
			}
			if e.modSeq <= last[e.folder] {
				prob.add("MODSEQ not increasing across successive changes", "%s UID %d in %s: %d after %d", e.what, e.uid, e.folder, e.modSeq, last[e.folder])
			}
			last[e.folder] = e.modSeq
			if owner[e.folder] == nil {
				owner[e.folder] = make(map[uint64]string)
			}
			if other, ok := owner[e.folder][e.modSeq]; ok {
				prob.add("one MODSEQ given to two changes in a folder", "%s: %s and %s UID %d: %d", e.folder, other, e.what, e.uid, e.modSeq)
			}
			owner[e.folder][e.modSeq] = fmt.Sprintf("%s UID %d", e.what, e.uid)
		}
	}

	// Over time, per instance and folder.
	type key struct{ inst, folder string }
	type seen struct {
		validity uint32
		highest  uint64
		msgs     map[imap.UID]uint64
	}
	prev := make(map[key]*seen)
	for _, round := range history {
		for _, s := range round {
			if !s.condStore {
				prob.add("instance without CONDSTORE beside one with it", "%s", s.inst)
				continue
			}
			cur := &seen{validity: s.uidValidity, highest: s.highestModSeq, msgs: make(map[imap.UID]uint64)}
			for _, m := range s.msgs {
				cur.msgs[m.uid] = m.modSeq
				if m.modSeq > s.highestModSeq {
					prob.add("message MODSEQ above HIGHESTMODSEQ", "%s %s UID %d: %d > %d", s.inst, s.folder, m.uid, m.modSeq, s.highestModSeq)
				}
			}
			k := key{s.inst, s.folder}
			if p := prev[k]; p != nil && p.validity == cur.validity {
				if cur.highest < p.highest {
					prob.add("HIGHESTMODSEQ went back", "%s %s: %d after %d", s.inst, s.folder, cur.highest, p.highest)
				}
				for uid, ms := range cur.msgs {
					if old, ok := p.msgs[uid]; ok && ms < old {
						prob.add("message MODSEQ went back", "%s %s UID %d: %d after %d", s.inst, s.folder, uid, ms, old)
					}
				}
			}
			prev[k] = cur
		}
	}

	// The last round: one log, one view.
	last := history[len(history)-1]
	first := make(map[string]*snapshot)
	for _, s := range last {
		f := first[s.folder]
		if f == nil {
			first[s.folder] = s
			continue
		}
		if f.highestModSeq != s.highestModSeq {
			prob.add("instances disagree on HIGHESTMODSEQ", "%s: %s %d, %s %d", s.folder, f.inst, f.highestModSeq, s.inst, s.highestModSeq)
		}
		fm := make(map[imap.UID]uint64)
		for _, m := range f.msgs {
			fm[m.uid] = m.modSeq
		}
		for _, m := range s.msgs {
			if ms, ok := fm[m.uid]; ok && ms != m.modSeq {
				prob.add("instances disagree on a message's MODSEQ", "%s UID %d: %s %d, %s %d", s.folder, m.uid, f.inst, ms, s.inst, m.modSeq)
			}
		}
	}
}
