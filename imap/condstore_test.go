package imap

import (
	"strconv"
	"testing"

	"github.com/letterbox-mail/letterbox/store"
)

// CONDSTORE (RFC 7162 §3.1) transcripts. MODSEQs come from the clock, so
// the scripts take them from the store (mboxState) or bind them from the
// server's lines (${=NAME}) and the test then checks how they relate.

func TestCondstoreEnable(t *testing.T) {
	e := newEnv(t)
	e.appendMsg("alice", "INBOX", msg("one"), store.FlagSeen)
	st := e.state("alice", "INBOX")
	vars := st.vars()

	// Not before login; after it, ENABLE answers what it enabled.
	c := e.dial().greeted()
	transcript(t, c, vars, `
		C: a ENABLE CONDSTORE
		S: a BAD Log in first
		C: b LOGIN alice secret
		S~ b OK
		C: c ENABLE CONDSTORE
		S: * ENABLED CONDSTORE
		S: c OK ENABLE completed
		# SELECT now reports HIGHESTMODSEQ (§3.1.2.1).
		C: d SELECT INBOX
		S: * 1 EXISTS
		S: * 1 RECENT
		S: * OK [UIDVALIDITY ${V}] UIDs valid
		S: * OK [UIDNEXT ${N}] Predicted next UID
		S: * OK [HIGHESTMODSEQ ${H}] Highest
		S: * FLAGS (\Answered \Flagged \Deleted \Seen \Draft)
		S: * OK [PERMANENTFLAGS (\Answered \Flagged \Deleted \Seen \Draft \*)] Permanent flags
		S: d OK [READ-WRITE] SELECT completed
		# Enabled already: no second HIGHESTMODSEQ.
		C: e ENABLE CONDSTORE QRESYNC
		S: * ENABLED CONDSTORE QRESYNC
		S: e OK ENABLE completed
		# UNAUTHENTICATE forgets what was enabled.
		C: f UNAUTHENTICATE
		S: f OK UNAUTHENTICATE completed
		C: g LOGIN alice secret
		S~ g OK
		C: h EXAMINE INBOX
		S: * 1 EXISTS
		S: * 0 RECENT
		S: * OK [UIDVALIDITY ${V}] UIDs valid
		S: * OK [UIDNEXT ${N}] Predicted next UID
		S: * FLAGS (\Answered \Flagged \Deleted \Seen \Draft)
		S: * OK [PERMANENTFLAGS ()] Permanent flags
		S: h OK [READ-ONLY] EXAMINE completed
		# The first CONDSTORE-enabling command with a mailbox selected
		# reports its HIGHESTMODSEQ (§3.1), after its own answer.
		C: i ENABLE QRESYNC
		S: * ENABLED QRESYNC
		S: * OK [HIGHESTMODSEQ ${H}] Highest
		S: i OK ENABLE completed
		C: j FETCH 1 (MODSEQ)
		S: * 1 FETCH (MODSEQ (${M1}))
		S: j OK FETCH completed
	`)
}

// TestCondstoreEnablingCommands: each CONDSTORE-enabling command of RFC
// 7162 §3.1 enables it; the first with a mailbox selected reports its
// HIGHESTMODSEQ; from then on another session's flag change comes with
// UID and MODSEQ (§3.2.4).
func TestCondstoreEnablingCommands(t *testing.T) {
	e := newEnv(t)
	e.appendMsg("alice", "INBOX", msg("one"), store.FlagSeen)
	e.appendMsg("alice", "INBOX", msg("two"), 0)
	e.claimRecent("alice", "INBOX")
	for _, tc := range []struct {
		name, cmd, reply string
	}{
		{"select", "", ""},
		{"status", `x STATUS INBOX (HIGHESTMODSEQ)`, `* STATUS INBOX (HIGHESTMODSEQ ${H})`},
		{"fetch", `x FETCH 1 (MODSEQ)`, `* 1 FETCH (MODSEQ (${M1}))`},
		{"changedsince", `x FETCH 1:* (FLAGS) (CHANGEDSINCE ${M1})`, `* 2 FETCH (FLAGS () MODSEQ (${M2}))`},
		{"search", `x SEARCH MODSEQ ${M2}`, `* SEARCH 2 (MODSEQ ${M2})`},
		{"store", `x STORE 1 (UNCHANGEDSINCE 0) +FLAGS.SILENT (\Seen)`, ``},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := e.state("alice", "INBOX")
			vars := st.vars()
			c := e.login("alice")
			if tc.cmd == "" {
				transcript(t, c, vars, `
					C: s SELECT INBOX (CONDSTORE)
					S: * 2 EXISTS
					S: * 0 RECENT
					S~ * OK [UNSEEN 2]
					S~ * OK [UIDVALIDITY
					S~ * OK [UIDNEXT
					S: * OK [HIGHESTMODSEQ ${H}] Highest
					S~ * FLAGS
					S~ * OK [PERMANENTFLAGS
					S: s OK [READ-WRITE] SELECT completed
				`)
			} else {
				c.send("s SELECT INBOX")
				c.until("s")
				script := `
					C: ` + tc.cmd + `
					S: * OK [HIGHESTMODSEQ ${H}] Highest
				`
				if tc.reply != "" {
					script += "S: " + tc.reply + "\n"
				}
				if tc.name == "store" {
					script += "S: x OK [MODIFIED 1] STORE completed\n"
				} else {
					script += "S~ x OK\n"
				}
				transcript(t, c, vars, script)
			}
			e.addFlags("alice", "INBOX", store.FlagFlagged, nil, 2)
			transcript(t, c, vars, `
				C: n NOOP
				S: * 2 FETCH (UID 2 FLAGS (\Flagged) MODSEQ (${=F}))
				S: n OK NOOP completed
			`)
			if num(t, vars, "F") <= st.highest {
				t.Errorf("MODSEQ of the change %s not above the HIGHESTMODSEQ before it %d", vars["F"], st.highest)
			}
			e.setFlags("alice", "INBOX", store.FlagsRemove, store.FlagFlagged, nil, 2)
		})
	}
	// Without an enabling command nothing changes.
	c := e.login("alice")
	c.send("s SELECT INBOX")
	c.until("s")
	e.addFlags("alice", "INBOX", store.FlagFlagged, nil, 2)
	transcript(t, c, nil, `
		C: n NOOP
		S: * 2 FETCH (UID 2 FLAGS (\Flagged))
		S: n OK NOOP completed
		C: f FETCH 2 (FLAGS)
		S: * 2 FETCH (FLAGS (\Flagged))
		S: f OK FETCH completed
	`)
}

func TestCondstoreFetch(t *testing.T) {
	e := newEnv(t)
	threeOfFour(e)
	st := e.state("alice", "INBOX")
	vars := st.vars()
	c := e.login("alice")
	c.ok("a ENABLE CONDSTORE")
	c.ok("s SELECT INBOX")
	transcript(t, c, vars, `
		C: a FETCH 1:3 (UID MODSEQ)
		S: * 1 FETCH (UID 2 MODSEQ (${M2}))
		S: * 2 FETCH (UID 3 MODSEQ (${M3}))
		S: * 3 FETCH (UID 4 MODSEQ (${M4}))
		S: a OK FETCH completed
		# CHANGEDSINCE: only what changed after, with MODSEQ (§3.1.4.1).
		C: b FETCH 1:* (FLAGS) (CHANGEDSINCE ${M2})
		S: * 2 FETCH (FLAGS () MODSEQ (${M3}))
		S: * 3 FETCH (FLAGS () MODSEQ (${M4}))
		S: b OK FETCH completed
		C: c UID FETCH 1:* (FLAGS) (CHANGEDSINCE ${M3})
		S: * 3 FETCH (UID 4 FLAGS () MODSEQ (${M4}))
		S: c OK UID FETCH completed
		C: d UID FETCH 1:* (FLAGS) (CHANGEDSINCE ${H})
		S: d OK UID FETCH completed
		C: e FETCH 2 (MODSEQ FLAGS) (CHANGEDSINCE 0)
		S: * 2 FETCH (MODSEQ (${M3}) FLAGS ())
		S: e OK FETCH completed
		# Setting \Seen is a change: the response says UID and MODSEQ
		# (§3.2.4), and no update follows for it.
		C: f FETCH 1 (BODY[TEXT])
		S: * 1 FETCH (UID 2 BODY[TEXT] {13}\r\nbody of two\r\n FLAGS (\Seen) MODSEQ (${=S2}))
		S: f OK FETCH completed
		C: g UID FETCH 3 (FLAGS BODY[TEXT])
		S: * 2 FETCH (UID 3 FLAGS (\Seen) BODY[TEXT] {15}\r\nbody of three\r\n MODSEQ (${=S3}))
		S: g OK UID FETCH completed
		C: h NOOP
		S: h OK NOOP completed
	`)
	ascending(t, vars, "H", "S2", "S3")

	// Another session's change is queued; a FETCH that shows the
	// message's MODSEQ shows its FLAGS too, and the older update is not
	// sent after it: MODSEQs only grow per message.
	e.addFlags("alice", "INBOX", store.FlagFlagged, nil, 4)
	transcript(t, c, vars, `
		C: i FETCH 3 (MODSEQ)
		S: * 3 FETCH (MODSEQ (${=F4}) FLAGS (\Flagged))
		S: i OK FETCH completed
		C: j NOOP
		S: j OK NOOP completed
	`)
	ascending(t, vars, "S3", "F4")

	// A session without CONDSTORE gets none of it.
	p := e.login("alice")
	p.ok("s SELECT INBOX")
	e.setFlags("alice", "INBOX", store.FlagsRemove, store.FlagSeen, nil, 2)
	transcript(t, p, vars, `
		C: a FETCH 1 (BODY[TEXT])
		S: * 1 FETCH (BODY[TEXT] {13}\r\nbody of two\r\n FLAGS (\Seen))
		S: a OK FETCH completed
	`)
	transcript(t, c, vars, `
		C: k NOOP
		S: * 1 FETCH (UID 2 FLAGS () MODSEQ (${=R2}))
		S: * 1 FETCH (UID 2 FLAGS (\Seen) MODSEQ (${=T2}))
		S: k OK NOOP completed
	`)
	ascending(t, vars, "S2", "R2", "T2")
}

func TestCondstoreStore(t *testing.T) {
	e := newEnv(t)
	threeOfFour(e)
	st := e.state("alice", "INBOX")
	vars := st.vars()
	c := e.login("alice")
	c.ok("a ENABLE CONDSTORE")
	c.ok("s SELECT INBOX")
	transcript(t, c, vars, `
		# Unchanged since: done, FETCH with UID and MODSEQ.
		C: a STORE 1 (UNCHANGEDSINCE ${M2}) +FLAGS (\Flagged)
		S: * 1 FETCH (UID 2 FLAGS (\Flagged) MODSEQ (${=A2}))
		S: a OK STORE completed
		# Message 1 changed since M3; message 2 did not. MODIFIED has
		# sequence numbers for STORE; FLAGS of the set as they are.
		C: b STORE 1:2 (UNCHANGEDSINCE ${M3}) +FLAGS (\Answered)
		S: * 1 FETCH (UID 2 FLAGS (\Flagged) MODSEQ (${A2}))
		S: * 2 FETCH (UID 3 FLAGS (\Answered) MODSEQ (${=B3}))
		S: b OK [MODIFIED 1] STORE completed
		# UIDs for UID STORE; .SILENT still says the MODSEQ of what it
		# changed (§3.1.3).
		C: c UID STORE 2:4 (UNCHANGEDSINCE ${M4}) +FLAGS.SILENT (\Deleted)
		S: * 3 FETCH (UID 4 MODSEQ (${=C4}))
		S: c OK [MODIFIED 2:3] UID STORE completed
		# UNCHANGEDSINCE 0 fails for every message.
		C: d STORE 1,3 (UNCHANGEDSINCE 0) FLAGS.SILENT ()
		S: d OK [MODIFIED 1,3] STORE completed
		# Nothing to change: no new MODSEQ, nothing said.
		C: e STORE 3 (UNCHANGEDSINCE ${C4}) +FLAGS.SILENT (\Deleted)
		S: e OK STORE completed
		# A plain STORE has UID and MODSEQ too once CONDSTORE is on.
		C: f STORE 1 -FLAGS (\Flagged)
		S: * 1 FETCH (UID 2 FLAGS () MODSEQ (${=F2}))
		S: f OK STORE completed
		C: g FETCH 1:3 (MODSEQ)
		S: * 1 FETCH (MODSEQ (${F2}))
		S: * 2 FETCH (MODSEQ (${B3}))
		S: * 3 FETCH (MODSEQ (${C4}))
		S: g OK FETCH completed
	`)
	ascending(t, vars, "H", "A2", "B3", "C4", "F2")

	// Another session changes message 2 under us: the test fails, and
	// .SILENT shows the flags it did not know (RFC 3501 §6.4.6).
	e.addFlags("alice", "INBOX", store.FlagDraft, nil, 3)
	transcript(t, c, vars, `
		C: h STORE 2 (UNCHANGEDSINCE ${B3}) +FLAGS.SILENT (\Seen)
		S: * 2 FETCH (UID 3 FLAGS (\Answered \Draft) MODSEQ (${=D3}))
		S: h OK [MODIFIED 2] STORE completed
		C: i NOOP
		S: i OK NOOP completed
	`)
	ascending(t, vars, "F2", "D3")

	// A plain session sees the flags without MODSEQ, and may not use
	// UNCHANGEDSINCE on a mailbox it examined.
	p := e.login("alice")
	p.ok("s SELECT INBOX")
	transcript(t, p, vars, `
		C: a STORE 1 +FLAGS (\Seen)
		S: * 1 FETCH (FLAGS (\Seen))
		S: a OK STORE completed
		C: b UID STORE 2 +FLAGS (\Seen)
		S: * 1 FETCH (UID 2 FLAGS (\Seen))
		S: b OK UID STORE completed
		C: c EXAMINE INBOX
		S: * OK [CLOSED] Previous mailbox is now closed
		S: * 3 EXISTS
		S: * 0 RECENT
		S: * OK [UNSEEN 2] First unseen message
		S: * OK [UIDVALIDITY ${V}] UIDs valid
		S: * OK [UIDNEXT ${N}] Predicted next UID
		S: * FLAGS (\Answered \Flagged \Deleted \Seen \Draft)
		S: * OK [PERMANENTFLAGS ()] Permanent flags
		S: c OK [READ-ONLY] EXAMINE completed
		C: d STORE 1 (UNCHANGEDSINCE ${H}) +FLAGS (\Seen)
		S: * OK [HIGHESTMODSEQ ${=E}] Highest
		S: d NO Mailbox is read-only (opened with EXAMINE)
		C: e STORE 1 (UNCHANGEDSINCE 1 UNCHANGEDSINCE 2) +FLAGS (\Seen)
		S: e BAD Syntax error: unknown or repeated STORE modifier UNCHANGEDSINCE
	`)
	if got, want := num(t, vars, "E"), e.state("alice", "INBOX").highest; got != want {
		t.Errorf("HIGHESTMODSEQ %d after EXAMINE, the store's %d", got, want)
	}
}

func TestCondstoreSearch(t *testing.T) {
	e := newEnv(t)
	threeOfFour(e)
	e.addFlags("alice", "INBOX", store.FlagDraft, nil, 3)
	st := e.state("alice", "INBOX")
	vars := st.vars()
	vars["H1"] = strconv.FormatUint(st.highest+1, 10)
	c := e.login("alice")
	c.ok("s SELECT INBOX")
	transcript(t, c, vars, `
		# MODSEQ matches messages changed at or after it (§3.1.5), and
		# the answer has the highest MODSEQ of those it returns (§3.1.6).
		C: a SEARCH MODSEQ ${M4}
		S: * OK [HIGHESTMODSEQ ${H}] Highest
		S: * SEARCH 2 3 (MODSEQ ${M3})
		S: a OK SEARCH completed
		C: b UID SEARCH MODSEQ "/flags/\\draft" all ${M3}
		S: * SEARCH 3 (MODSEQ ${M3})
		S: b OK UID SEARCH completed
		C: c SEARCH MODSEQ ${H1}
		S: * SEARCH
		S: c OK SEARCH completed
		C: d SEARCH NOT MODSEQ ${M3}
		S: * SEARCH 1 3 (MODSEQ ${M4})
		S: d OK SEARCH completed
		C: e SEARCH OR MODSEQ ${M3} UID 2 MODSEQ 0
		S: * SEARCH 1 2 (MODSEQ ${M3})
		S: e OK SEARCH completed
		C: f SEARCH 1:3
		S: * SEARCH 1 2 3
		S: f OK SEARCH completed
		# ESEARCH: MODSEQ of what ALL or COUNT covers, else of MIN and MAX
		# (§3.1.10).
		C: g SEARCH RETURN (MIN MAX COUNT ALL) MODSEQ 0
		S: * ESEARCH (TAG "g") ALL 1:3 MIN 1 MAX 3 COUNT 3 MODSEQ ${M3}
		S: g OK SEARCH completed
		C: h SEARCH RETURN (MIN) MODSEQ 0
		S: * ESEARCH (TAG "h") MIN 1 MODSEQ ${M2}
		S: h OK SEARCH completed
		C: i UID SEARCH RETURN (MAX) MODSEQ "/flags/$label" priv 0
		S: * ESEARCH (TAG "i") UID MAX 4 MODSEQ ${M4}
		S: i OK UID SEARCH completed
		C: j SEARCH RETURN (COUNT) MODSEQ ${H1}
		S: * ESEARCH (TAG "j") COUNT 0
		S: j OK SEARCH completed
		C: k SEARCH RETURN (SAVE) MODSEQ 0
		S: k OK SEARCH completed
		C: l SEARCH RETURN (PARTIAL 2:3) MODSEQ 0
		S: * ESEARCH (TAG "l") PARTIAL (2:3 2:3) MODSEQ ${M3}
		S: l OK SEARCH completed
		C: m SEARCH MODSEQ "/flags/\\draft" bogus 1
		S: m BAD Syntax error: MODSEQ entry type must be priv, shared or all
		C: n SEARCH MODSEQ "draft" all 1
		S: n BAD Syntax error: MODSEQ entry name must be /flags/<flag>
		C: o SEARCH MODSEQ 9223372036854775808
		S: o BAD Syntax error: number too big
	`)

	// IMAP4rev2 answers ESEARCH.
	r := e.login("alice")
	r.ok("a ENABLE IMAP4rev2 CONDSTORE")
	r.ok("s SELECT INBOX")
	transcript(t, r, vars, `
		C: a UID SEARCH MODSEQ ${M3}
		S: * ESEARCH (TAG "a") UID ALL 3 MODSEQ ${M3}
		S: a OK UID SEARCH completed
	`)
}

func TestCondstoreStatus(t *testing.T) {
	e := newEnv(t)
	threeOfFour(e)
	st := e.state("alice", "INBOX")
	vars := st.vars()
	vars["A"] = strconv.FormatUint(e.state("alice", "Archive").highest, 10)
	c := e.login("alice")
	transcript(t, c, vars, `
		C: a STATUS INBOX (MESSAGES HIGHESTMODSEQ)
		S: * STATUS INBOX (MESSAGES 3 HIGHESTMODSEQ ${H})
		S: a OK STATUS completed
		C: b LIST "" "Archive" RETURN (STATUS (HIGHESTMODSEQ UIDNEXT))
		S: * LIST (\HasNoChildren \Archive) "/" "Archive"
		S: * STATUS "Archive" (UIDNEXT 1 HIGHESTMODSEQ ${A})
		S: b OK LIST completed
	`)
	// STATUS (HIGHESTMODSEQ) enabled CONDSTORE: SELECT reports it.
	transcript(t, c, vars, `
		C: s SELECT INBOX
		S: * 3 EXISTS
		S: * 0 RECENT
		S: * OK [UNSEEN 1] First unseen message
		S: * OK [UIDVALIDITY ${V}] UIDs valid
		S: * OK [UIDNEXT ${N}] Predicted next UID
		S: * OK [HIGHESTMODSEQ ${H}] Highest
		S: * FLAGS (\Answered \Flagged \Deleted \Seen \Draft)
		S: * OK [PERMANENTFLAGS (\Answered \Flagged \Deleted \Seen \Draft \*)] Permanent flags
		S: s OK [READ-WRITE] SELECT completed
	`)
}
