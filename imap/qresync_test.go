package imap

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/letterbox-mail/letterbox/store"
)

// QRESYNC (RFC 7162 §3.2) transcripts: SELECT (QRESYNC ...) with and
// without known UIDs and seq-match-data, from a complete expunge log and
// from one rebuilt (MODSEQs jump, expunges forgotten, every missing UID
// reported), UID FETCH (VANISHED), VANISHED updates and the HIGHESTMODSEQ
// of EXPUNGE, MOVE and CLOSE.

// qresyncSession logs in and enables QRESYNC.
func (e *testEnv) qresyncSession() *rawClient {
	e.t.Helper()
	c := e.login("alice")
	c.ok("q ENABLE QRESYNC")
	return c
}

// appendN appends n messages to alice's INBOX.
func (e *testEnv) appendN(n int) {
	e.t.Helper()
	for i := 1; i <= n; i++ {
		e.appendMsg("alice", "INBOX", msg("message "+strconv.Itoa(i)), 0)
	}
}

func TestQresyncRules(t *testing.T) {
	e := newEnv(t)
	e.appendN(2)
	e.claimRecent("alice", "INBOX")
	vars := e.state("alice", "INBOX").vars()
	c := e.login("alice")
	transcript(t, c, vars, `
		# QRESYNC must be enabled first (§3.2.3).
		C: a SELECT INBOX (QRESYNC (${V} 1))
		S: a BAD QRESYNC needs ENABLE QRESYNC first
		C: b EXAMINE INBOX (CONDSTORE)
		S: * 2 EXISTS
		S: * 0 RECENT
		S: * OK [UNSEEN 1] First unseen message
		S: * OK [UIDVALIDITY ${V}] UIDs valid
		S: * OK [UIDNEXT 3] Predicted next UID
		S: * OK [HIGHESTMODSEQ ${H}] Highest
		S: * FLAGS (\Answered \Flagged \Deleted \Seen \Draft)
		S: * OK [PERMANENTFLAGS ()] Permanent flags
		S: b OK [READ-ONLY] EXAMINE completed
		C: c UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)
		S: c BAD VANISHED needs ENABLE QRESYNC
		C: d ENABLE QRESYNC
		S: * ENABLED QRESYNC
		S: d OK ENABLE completed
		# VANISHED only with UID FETCH and CHANGEDSINCE (§3.2.6).
		C: e FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)
		S: e BAD VANISHED needs UID FETCH
		C: f UID FETCH 1:* (FLAGS) (VANISHED)
		S: f BAD VANISHED needs CHANGEDSINCE
		C: f2 UID FETCH 1:* (FLAGS) (VANISHED CHANGEDSINCE ${H} VANISHED)
		S: f2 BAD Syntax error: unknown or repeated FETCH modifier VANISHED
		# The parameter's syntax (§7); a BAD leaves the mailbox selected.
		C: g SELECT INBOX (QRESYNC (${V} 1 1:*))
		S: g BAD Syntax error: expected a number
		C: h SELECT INBOX (QRESYNC (${V} 1 1:6 (1:2 1)))
		S: h BAD Syntax error: seq-match-data: not as many sequence numbers as UIDs
		C: i SELECT INBOX (QRESYNC (${V} 1 1:6 (2,1 1,2)))
		S: i BAD Syntax error: seq-match-data must be ascending
		C: j SELECT INBOX (QRESYNC (0 1))
		S: j BAD Syntax error: expected a number above zero
		C: k SELECT INBOX (QRESYNC (${V}))
		S: k BAD Syntax error: expected a space
		C: l SELECT INBOX (QRESYNC (${V} 1) QRESYNC (${V} 1))
		S: l BAD Syntax error: QRESYNC twice
		C: m SELECT INBOX (QRESYNC (${V} 1 1:2 1:2))
		S: m BAD Syntax error: expected seq-match-data
		C: n SELECT INBOX (QRESYNC (${V} 9223372036854775808))
		S: n BAD Syntax error: number too big
		C: o FETCH 1 (MODSEQ)
		S: * 1 FETCH (MODSEQ (${M1}))
		S: o OK FETCH completed
	`)
}

func TestQresyncSelect(t *testing.T) {
	e := newEnv(t)
	e.appendN(6)
	e.claimRecent("alice", "INBOX")
	before := e.state("alice", "INBOX")
	vars := before.vars()
	vars["H0"] = vars["H"]
	// After H0: two expunges, two flag changes, one expunge.
	e.expungeUIDs("alice", "INBOX", 3, 4)
	e.addFlags("alice", "INBOX", store.FlagSeen, nil, 2)
	e.addFlags("alice", "INBOX", 0, []string{"$Label"}, 5)
	e.expungeUIDs("alice", "INBOX", 6)
	after := e.state("alice", "INBOX")
	for k, v := range after.vars() {
		vars[k] = v
	}
	c := e.qresyncSession()
	transcript(t, c, vars, `
		# Everything since H0: VANISHED (EARLIER), then the changed
		# messages with UID, FLAGS and MODSEQ (§3.2.5.1).
		C: a SELECT INBOX (QRESYNC (${V} ${H0}))
		S: * 3 EXISTS
		S: * 0 RECENT
		S: * OK [UNSEEN 1] First unseen message
		S: * OK [UIDVALIDITY ${V}] UIDs valid
		S: * OK [UIDNEXT 7] Predicted next UID
		S: * OK [HIGHESTMODSEQ ${H}] Highest
		S: * FLAGS (\Answered \Flagged \Deleted \Seen \Draft $Label)
		S: * OK [PERMANENTFLAGS (\Answered \Flagged \Deleted \Seen \Draft $Label \*)] Permanent flags
		S: * VANISHED (EARLIER) 3:4,6
		S: * 2 FETCH (UID 2 FLAGS (\Seen) MODSEQ (${M2}))
		S: * 3 FETCH (UID 5 FLAGS ($Label) MODSEQ (${M5}))
		S: a OK [READ-WRITE] SELECT completed
		# Known UIDs: only those are reported.
		C: b SELECT INBOX (QRESYNC (${V} ${H0} 1:3,5))
		S: * OK [CLOSED] Previous mailbox is now closed
		S: * 3 EXISTS
		S: * 0 RECENT
		S: * OK [UNSEEN 1] First unseen message
		S: * OK [UIDVALIDITY ${V}] UIDs valid
		S: * OK [UIDNEXT 7] Predicted next UID
		S: * OK [HIGHESTMODSEQ ${H}] Highest
		S: * FLAGS (\Answered \Flagged \Deleted \Seen \Draft $Label)
		S: * OK [PERMANENTFLAGS (\Answered \Flagged \Deleted \Seen \Draft $Label \*)] Permanent flags
		S: * VANISHED (EARLIER) 3
		S: * 2 FETCH (UID 2 FLAGS (\Seen) MODSEQ (${M2}))
		S: * 3 FETCH (UID 5 FLAGS ($Label) MODSEQ (${M5}))
		S: b OK [READ-WRITE] SELECT completed
		# From the MODSEQ of the change of UID 2: what came after it.
		C: c EXAMINE INBOX (QRESYNC (${V} ${M2}))
		S: * OK [CLOSED] Previous mailbox is now closed
		S: * 3 EXISTS
		S: * 0 RECENT
		S: * OK [UNSEEN 1] First unseen message
		S: * OK [UIDVALIDITY ${V}] UIDs valid
		S: * OK [UIDNEXT 7] Predicted next UID
		S: * OK [HIGHESTMODSEQ ${H}] Highest
		S: * FLAGS (\Answered \Flagged \Deleted \Seen \Draft $Label)
		S: * OK [PERMANENTFLAGS ()] Permanent flags
		S: * VANISHED (EARLIER) 6
		S: * 3 FETCH (UID 5 FLAGS ($Label) MODSEQ (${M5}))
		S: c OK [READ-ONLY] EXAMINE completed
		# Up to date: nothing more.
		C: d SELECT INBOX (QRESYNC (${V} ${H} 1:6 (1:3 1:3)))
		S: * OK [CLOSED] Previous mailbox is now closed
		S: * 3 EXISTS
		S: * 0 RECENT
		S: * OK [UNSEEN 1] First unseen message
		S: * OK [UIDVALIDITY ${V}] UIDs valid
		S: * OK [UIDNEXT 7] Predicted next UID
		S: * OK [HIGHESTMODSEQ ${H}] Highest
		S: * FLAGS (\Answered \Flagged \Deleted \Seen \Draft $Label)
		S: * OK [PERMANENTFLAGS (\Answered \Flagged \Deleted \Seen \Draft $Label \*)] Permanent flags
		S: d OK [READ-WRITE] SELECT completed
		# Another UIDVALIDITY: the rest is ignored, a plain SELECT with
		# HIGHESTMODSEQ.
		C: e SELECT INBOX (QRESYNC (1 ${H0} 1:6))
		S: * OK [CLOSED] Previous mailbox is now closed
		S: * 3 EXISTS
		S: * 0 RECENT
		S: * OK [UNSEEN 1] First unseen message
		S: * OK [UIDVALIDITY ${V}] UIDs valid
		S: * OK [UIDNEXT 7] Predicted next UID
		S: * OK [HIGHESTMODSEQ ${H}] Highest
		S: * FLAGS (\Answered \Flagged \Deleted \Seen \Draft $Label)
		S: * OK [PERMANENTFLAGS (\Answered \Flagged \Deleted \Seen \Draft $Label \*)] Permanent flags
		S: e OK [READ-WRITE] SELECT completed
		# The complete log answers exactly; seq-match-data is not needed.
		C: f SELECT INBOX (QRESYNC (${V} ${H0} 1:6 (1,6 1,6)))
		S: * OK [CLOSED] Previous mailbox is now closed
		S: * 3 EXISTS
		S: * 0 RECENT
		S: * OK [UNSEEN 1] First unseen message
		S: * OK [UIDVALIDITY ${V}] UIDs valid
		S: * OK [UIDNEXT 7] Predicted next UID
		S: * OK [HIGHESTMODSEQ ${H}] Highest
		S: * FLAGS (\Answered \Flagged \Deleted \Seen \Draft $Label)
		S: * OK [PERMANENTFLAGS (\Answered \Flagged \Deleted \Seen \Draft $Label \*)] Permanent flags
		S: * VANISHED (EARLIER) 3:4,6
		S: * 2 FETCH (UID 2 FLAGS (\Seen) MODSEQ (${M2}))
		S: * 3 FETCH (UID 5 FLAGS ($Label) MODSEQ (${M5}))
		S: f OK [READ-WRITE] SELECT completed
	`)
	ascending(t, vars, "H0", "M2", "M5", "H")
}

// TestQresyncRebuiltLog: the change log deleted and rebuilt from the
// Maildir. Every message gets one new MODSEQ above all earlier ones, and
// the expunges before it are forgotten: a client resynchronizing from
// before is told every UID it may know that is not in the mailbox
// (§3.2.5.1), limited by its known UIDs and by seq-match-data (§3.2.5.2).
func TestQresyncRebuiltLog(t *testing.T) {
	e := newEnv(t)
	e.appendN(8)
	e.claimRecent("alice", "INBOX")
	e.expungeUIDs("alice", "INBOX", 2)
	before := e.state("alice", "INBOX")
	vars := before.vars()
	vars["H0"] = vars["H"]
	// The client knows 1,3,4,5,6,7,8 as 1 to 7 at H0. Then:
	e.expungeUIDs("alice", "INBOX", 7)
	e.addFlags("alice", "INBOX", store.FlagFlagged, nil, 4)
	complete := e.state("alice", "INBOX")
	// The log goes; the next look at the folder rebuilds it.
	if err := os.Remove(filepath.Join(e.user("alice").Root(), "letterbox-log")); err != nil {
		t.Fatal(err)
	}
	after := e.state("alice", "INBOX")
	for k, v := range after.vars() {
		vars[k] = v
	}
	if after.highest <= complete.highest {
		t.Fatalf("HIGHESTMODSEQ %d after the rebuild, %d before", after.highest, complete.highest)
	}
	for _, u := range after.uids {
		if after.modSeq[u] != after.highest || after.flags[u] != complete.flags[u] {
			t.Errorf("UID %d after the rebuild: MODSEQ %d flags %s, want %d %s", u, after.modSeq[u], after.flags[u], after.highest, complete.flags[u])
		}
	}
	c := e.qresyncSession()
	head := `
		S: * 6 EXISTS
		S: * 0 RECENT
		S: * OK [UNSEEN 1] First unseen message
		S: * OK [UIDVALIDITY ${V}] UIDs valid
		S: * OK [UIDNEXT 9] Predicted next UID
		S: * OK [HIGHESTMODSEQ ${H}] Highest
		S: * FLAGS (\Answered \Flagged \Deleted \Seen \Draft)
		S: * OK [PERMANENTFLAGS (\Answered \Flagged \Deleted \Seen \Draft \*)] Permanent flags
	`
	fetches := `
		S: * 1 FETCH (UID 1 FLAGS () MODSEQ (${H}))
		S: * 2 FETCH (UID 3 FLAGS () MODSEQ (${H}))
		S: * 3 FETCH (UID 4 FLAGS (\Flagged) MODSEQ (${H}))
		S: * 4 FETCH (UID 5 FLAGS () MODSEQ (${H}))
		S: * 5 FETCH (UID 6 FLAGS () MODSEQ (${H}))
		S: * 6 FETCH (UID 8 FLAGS () MODSEQ (${H}))
	`
	closed := "S: * OK [CLOSED] Previous mailbox is now closed\n"
	transcript(t, c, vars, `
		# Without known UIDs: every UID below UIDNEXT not in the mailbox,
		# 2 (gone before H0) included; every message changed.
		C: a SELECT INBOX (QRESYNC (${V} ${H0}))
	`+head+`
		S: * VANISHED (EARLIER) 2,7
	`+fetches+`
		S: a OK [READ-WRITE] SELECT completed
		# With the UIDs it knows: only those.
		C: b SELECT INBOX (QRESYNC (${V} ${H0} 1,3:8))
	`+closed+head+`
		S: * VANISHED (EARLIER) 7
	`+fetches+`
		S: b OK [READ-WRITE] SELECT completed
		# A sloppy known-UIDs range, and seq-match-data saying that
		# sequence numbers 1 to 3 were UIDs 1, 3 and 4: they still are,
		# so nothing up to 4 vanished.
		C: c SELECT INBOX (QRESYNC (${V} ${H0} 1:8 (1:3 1,3:4)))
	`+closed+head+`
		S: * VANISHED (EARLIER) 7
	`+fetches+`
		S: c OK [READ-WRITE] SELECT completed
		# A pair that no longer matches (sequence number 6 was UID 7)
		# proves nothing beyond the last one that does.
		C: d SELECT INBOX (QRESYNC (${V} ${H0} 1:8 (1,6 1,7)))
	`+closed+head+`
		S: * VANISHED (EARLIER) 2,7
	`+fetches+`
		S: d OK [READ-WRITE] SELECT completed
		# UID FETCH (VANISHED) falls back the same way.
		C: e UID FETCH 1:* (FLAGS) (CHANGEDSINCE ${H0} VANISHED)
		S: * VANISHED (EARLIER) 2,7
	`+fetches+`
		S: e OK UID FETCH completed
		C: f UID FETCH 5:* (FLAGS) (CHANGEDSINCE ${H0} VANISHED)
		S: * VANISHED (EARLIER) 7
		S: * 4 FETCH (UID 5 FLAGS () MODSEQ (${H}))
		S: * 5 FETCH (UID 6 FLAGS () MODSEQ (${H}))
		S: * 6 FETCH (UID 8 FLAGS () MODSEQ (${H}))
		S: f OK UID FETCH completed
		C: f2 UID FETCH 1:* (FLAGS) (CHANGEDSINCE ${H} VANISHED)
		S: f2 OK UID FETCH completed
		# From the new HIGHESTMODSEQ on, the log is exact again.
		C: g SELECT INBOX (QRESYNC (${V} ${H}))
	`+closed+head+`
		S: g OK [READ-WRITE] SELECT completed
	`)
	ascending(t, vars, "H0", "H")
}

func TestQresyncUIDFetchVanished(t *testing.T) {
	e := newEnv(t)
	e.appendN(6)
	e.claimRecent("alice", "INBOX")
	vars := e.state("alice", "INBOX").vars()
	vars["H0"] = vars["H"]
	e.expungeUIDs("alice", "INBOX", 3, 4)
	e.addFlags("alice", "INBOX", store.FlagAnswered, nil, 5)
	e.expungeUIDs("alice", "INBOX", 6)
	c := e.qresyncSession()
	c.ok("s SELECT INBOX")
	for k, v := range e.state("alice", "INBOX").vars() {
		vars[k] = v
	}
	transcript(t, c, vars, `
		# "*" reaches the highest UID ever given: UID 6, expunged last,
		# is reported although the highest UID now is 5.
		C: a UID FETCH 1:* (FLAGS) (CHANGEDSINCE ${H0} VANISHED)
		S: * VANISHED (EARLIER) 3:4,6
		S: * 3 FETCH (UID 5 FLAGS (\Answered) MODSEQ (${M5}))
		S: a OK UID FETCH completed
		C: b UID FETCH 2:4 (FLAGS) (CHANGEDSINCE ${H0} VANISHED)
		S: * VANISHED (EARLIER) 3:4
		S: b OK UID FETCH completed
		C: c UID FETCH 1:* (FLAGS) (CHANGEDSINCE ${H} VANISHED)
		S: c OK UID FETCH completed
		C: d UID SEARCH RETURN (SAVE) UID 4:6
		S: d OK UID SEARCH completed
		C: e UID FETCH $ (UID) (CHANGEDSINCE ${H0} VANISHED)
		S: * 3 FETCH (UID 5 MODSEQ (${M5}))
		S: e OK UID FETCH completed
	`)
	// Another session expunges UID 2: not EARLIER for this session, which
	// still has it; the VANISHED after the command says it.
	e.expungeUIDs("alice", "INBOX", 2)
	transcript(t, c, vars, `
		C: f UID FETCH 1:* (FLAGS) (CHANGEDSINCE ${H} VANISHED)
		S: * VANISHED 2
		S: f OK UID FETCH completed
	`)
}
