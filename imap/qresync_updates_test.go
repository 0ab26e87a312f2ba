package imap

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/letterbox-mail/letterbox/store"
)

// TestQresyncUpdates: with QRESYNC, expunges are "* VANISHED uid-set"
// (runs collapsed) in every state that may report them; EXPUNGE, UID
// EXPUNGE and MOVE end with the HIGHESTMODSEQ they bring the client to,
// CLOSE with the one up to which it was told everything.
func TestQresyncUpdates(t *testing.T) {
	e := newEnv(t)
	e.appendN(10)
	e.claimRecent("alice", "INBOX")
	vars := e.state("alice", "INBOX").vars()
	q := e.qresyncSession()
	q.ok("s SELECT INBOX")
	p := e.login("alice") // neither CONDSTORE nor QRESYNC
	p.ok("s SELECT INBOX")

	// Another program expunges 2, 3 and 5 at once.
	e.expungeUIDs("alice", "INBOX", 2, 3, 5)
	transcript(t, q, vars, `
		C: a NOOP
		S: * VANISHED 2:3,5
		S: a OK NOOP completed
	`)
	transcript(t, p, vars, `
		C: a NOOP
		S: * 5 EXPUNGE
		S: * 3 EXPUNGE
		S: * 2 EXPUNGE
		S: a OK NOOP completed
	`)

	// Own EXPUNGE: VANISHED, then HIGHESTMODSEQ in the tagged OK
	// (§3.2.7); the next HIGHESTMODSEQ the session is told is the same.
	transcript(t, q, vars, `
		C: b UID STORE 6:7 +FLAGS.SILENT (\Deleted)
		S: * 3 FETCH (UID 6 MODSEQ (${=D6}))
		S: * 4 FETCH (UID 7 MODSEQ (${=D7}))
		S: b OK UID STORE completed
		C: c EXPUNGE
		S: * VANISHED 6:7
		S: c OK [HIGHESTMODSEQ ${=X1}] EXPUNGE completed
		C: d EXPUNGE
		S: d OK EXPUNGE completed
	`)
	if got := e.state("alice", "INBOX").highest; num(t, vars, "X1") != got {
		t.Errorf("EXPUNGE said HIGHESTMODSEQ %s, the store has %d", vars["X1"], got)
	}
	if vars["D6"] != vars["D7"] {
		t.Errorf("one STORE, two MODSEQs: %s %s", vars["D6"], vars["D7"])
	}
	ascending(t, vars, "D7", "X1")

	// UID EXPUNGE of one of two deleted messages (§3.2.9; RFC 4315).
	e.addFlags("alice", "INBOX", store.FlagDeleted, nil, 8, 9)
	transcript(t, q, vars, `
		C: e UID EXPUNGE 9
		S: * 3 FETCH (UID 8 FLAGS (\Deleted) MODSEQ (${=D8}))
		S: * 4 FETCH (UID 9 FLAGS (\Deleted) MODSEQ (${=D9}))
		S: * VANISHED 9
		S: e OK [HIGHESTMODSEQ ${=X2}] UID EXPUNGE completed
	`)
	ascending(t, vars, "X1", "D8", "X2")

	// MOVE: COPYUID first (RFC 6851 §4.3), VANISHED, HIGHESTMODSEQ.
	vars["AV"] = e.uidValidity("alice", "Archive")
	transcript(t, q, vars, `
		C: f UID MOVE 10 Archive
		S: * OK [COPYUID ${AV} 10 1] Moved
		S: * VANISHED 10
		S: f OK [HIGHESTMODSEQ ${=X3}] UID MOVE completed
		C: g MOVE 1 Archive
		S: * OK [COPYUID ${AV} 1 2] Moved
		S: * VANISHED 1
		S: g OK [HIGHESTMODSEQ ${=X4}] MOVE completed
	`)
	ascending(t, vars, "X2", "X3", "X4")

	// During IDLE.
	transcript(t, q, vars, `
		C: h IDLE
		S: + idling
	`)
	e.expungeUIDs("alice", "INBOX", 4)
	transcript(t, q, vars, `
		S: * VANISHED 4
		C: DONE
		S: h OK IDLE terminated
	`)

	// An expunge a FETCH may not report (RFC 3501 §7.4.1) waits; the
	// FETCH shows a MODSEQ above it, so the session is told the
	// HIGHESTMODSEQ it really has, below the expunge's (§3.2.4).
	e.appendN(2) // UIDs 11 and 12
	transcript(t, q, vars, `
		C: i NOOP
		S: * 2 EXISTS
		S: * 3 EXISTS
		S: * 2 RECENT
		S: i OK NOOP completed
	`)
	e.expungeUIDs("alice", "INBOX", 11)
	vars["E"] = strconv.FormatUint(e.state("alice", "INBOX").highest, 10)
	e.addFlags("alice", "INBOX", store.FlagSeen, nil, 12)
	transcript(t, q, vars, `
		C: j FETCH 3 (MODSEQ)
		S: * 3 FETCH (MODSEQ (${=F}) FLAGS (\Seen \Recent))
		S: * OK [HIGHESTMODSEQ ${=S}] Highest
		S: j OK FETCH completed
		C: k NOOP
		S: * VANISHED 11
		S: k OK NOOP completed
	`)
	ascending(t, vars, "X4", "S", "E", "F")
}

// TestQresyncClose: CLOSE expunges without a word; with QRESYNC its OK
// has a HIGHESTMODSEQ (§3.2.8), the highest up to which the session was
// told everything, so that resynchronizing from it misses nothing.
func TestQresyncClose(t *testing.T) {
	e := newEnv(t)
	e.appendN(4)
	e.claimRecent("alice", "INBOX")
	vars := e.state("alice", "INBOX").vars()
	q := e.qresyncSession()
	transcript(t, q, vars, `
		C: a SELECT INBOX
		S~ * 4 EXISTS
		S~ * 0 RECENT
		S~ * OK [UNSEEN 1]
		S~ * OK [UIDVALIDITY
		S~ * OK [UIDNEXT
		S: * OK [HIGHESTMODSEQ ${H}] Highest
		S~ * FLAGS
		S~ * OK [PERMANENTFLAGS
		S~ a OK
		C: b STORE 1 +FLAGS.SILENT (\Deleted)
		S: * 1 FETCH (UID 1 MODSEQ (${=D1}))
		S: b OK STORE completed
		C: c CLOSE
		S: c OK [HIGHESTMODSEQ ${=C1}] CLOSE completed
		C: d CLOSE
		S: d BAD No mailbox selected
		C: e SELECT INBOX
		S~ * 3 EXISTS
		S~ * 0 RECENT
		S~ * OK [UNSEEN 1]
		S~ * OK [UIDVALIDITY
		S~ * OK [UIDNEXT
		S: * OK [HIGHESTMODSEQ ${C1}] Highest
		S~ * FLAGS
		S~ * OK [PERMANENTFLAGS
		S~ e OK
		C: f CLOSE
		S: f OK CLOSE completed
	`)
	ascending(t, vars, "H", "D1", "C1")

	// Another program changes UID 3 while the session does not look; the
	// CLOSE that expunges UID 2 reports the HIGHESTMODSEQ before that
	// change, and the resynchronization from it brings the change.
	q.ok("g SELECT INBOX")
	q.ok(`h STORE 1 +FLAGS.SILENT (\Deleted)`)
	e.addFlags("alice", "INBOX", store.FlagFlagged, nil, 3)
	vars["F3"] = strconv.FormatUint(e.state("alice", "INBOX").highest, 10)
	transcript(t, q, vars, `
		C: i CLOSE
		S: i OK [HIGHESTMODSEQ ${=C2}] CLOSE completed
		C: j SELECT INBOX (QRESYNC (${V} ${C2} 1:4))
		S: * 2 EXISTS
		S: * 0 RECENT
		S: * OK [UNSEEN 1] First unseen message
		S: * OK [UIDVALIDITY ${V}] UIDs valid
		S: * OK [UIDNEXT 5] Predicted next UID
		S: * OK [HIGHESTMODSEQ ${=H2}] Highest
		S: * FLAGS (\Answered \Flagged \Deleted \Seen \Draft)
		S: * OK [PERMANENTFLAGS (\Answered \Flagged \Deleted \Seen \Draft \*)] Permanent flags
		S: * VANISHED (EARLIER) 2
		S: * 1 FETCH (UID 3 FLAGS (\Flagged) MODSEQ (${F3}))
		S: j OK [READ-WRITE] SELECT completed
		C: k UNSELECT
		S: k OK UNSELECT completed
	`)
	ascending(t, vars, "C1", "C2", "F3", "H2")
}

// TestQresyncUIDValidityChanged: a new UIDVALIDITY under a selected
// mailbox (the store's Invalidated) ends the session rather than shrink
// its view; a resynchronization with the old UIDVALIDITY is a plain
// SELECT of the new mailbox (§3.2.5.1).
func TestQresyncUIDValidityChanged(t *testing.T) {
	e := newEnv(t)
	e.appendN(2)
	e.claimRecent("alice", "INBOX")
	vars := e.state("alice", "INBOX").vars()
	q := e.qresyncSession()
	q.ok("s SELECT INBOX")
	root := e.user("alice").Root()
	uidlist := filepath.Join(root, "dovecot-uidlist")
	data := string(readFile(t, uidlist))
	newV := strconv.Itoa(int(num(t, vars, "V") + 1000))
	data = strings.Replace(data, " V"+vars["V"]+" ", " V"+newV+" ", 1)
	if err := os.WriteFile(uidlist, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(root, "letterbox-log")); err != nil {
		t.Fatal(err)
	}
	transcript(t, q, vars, `
		C: a NOOP
		S: * BYE Selected mailbox was deleted, renamed or renumbered, have to disconnect
	`)
	q.closed()
	after := e.state("alice", "INBOX")
	if strconv.Itoa(int(after.uidValidity)) != newV {
		t.Fatalf("UIDVALIDITY %d, want %s", after.uidValidity, newV)
	}
	vars["V2"], vars["H2"] = newV, strconv.FormatUint(after.highest, 10)
	transcript(t, e.qresyncSession(), vars, `
		C: b SELECT INBOX (QRESYNC (${V} 1 1:2))
		S: * 2 EXISTS
		S: * 0 RECENT
		S: * OK [UNSEEN 1] First unseen message
		S: * OK [UIDVALIDITY ${V2}] UIDs valid
		S: * OK [UIDNEXT 3] Predicted next UID
		S: * OK [HIGHESTMODSEQ ${H2}] Highest
		S: * FLAGS (\Answered \Flagged \Deleted \Seen \Draft)
		S: * OK [PERMANENTFLAGS (\Answered \Flagged \Deleted \Seen \Draft \*)] Permanent flags
		S: b OK [READ-WRITE] SELECT completed
	`)
}
